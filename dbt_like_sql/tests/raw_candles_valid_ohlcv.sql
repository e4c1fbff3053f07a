-- check: raw_candles_valid_ohlcv
-- asset: raw_candles
-- day_of: ts
-- severity: ERROR
-- description: Every stored candle has finite positive prices, low <= open, close <= high, volume >= 0, and a timestamp on the base-interval grid.
SELECT symbol, ts, open, high, low, close, volume
FROM {{ ref('raw_candles') }}
WHERE ts >= $window_start AND ts < $window_end
  AND NOT (
        isfinite(open) AND isfinite(high) AND isfinite(low) AND isfinite(close) AND isfinite(volume)
    AND open > 0 AND high > 0 AND low > 0 AND close > 0 AND volume >= 0
    AND high >= greatest(open, close) AND low <= least(open, close)
    AND epoch(ts) % ($base_minutes * 60) = 0
  )
