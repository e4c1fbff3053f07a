-- check: bars_{interval}_valid_ohlc
-- asset: bars_{interval}
-- day_of: ts
-- for_each: bar_intervals
-- severity: ERROR
-- description: Finite positive OHLC, low <= open, close <= high, volume >= 0, 1 <= n_source <= n_expected, and bar labels on the {interval} grid. Exact, with no tolerance: a bar's prices are copies of source candle values (first, max, min, last) and its volume a sum of non-negative values, so rounding cannot put them out of range.
SELECT symbol, ts, open, high, low, close, volume, n_source, n_expected
FROM {{ ref('bars_{interval}') }}
WHERE ts >= $window_start AND ts < $window_end
  AND NOT (
        isfinite(open) AND isfinite(high) AND isfinite(low) AND isfinite(close)
    AND low > 0 AND high >= greatest(open, close) AND low <= least(open, close)
    AND volume >= 0 AND n_source BETWEEN 1 AND n_expected
    AND epoch(ts) % ($interval_minutes * 60) = 0
  )
