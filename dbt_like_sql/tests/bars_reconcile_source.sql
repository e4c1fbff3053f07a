-- check: bars_{interval}_reconcile_source
-- asset: bars_{interval}
-- day_of: ts
-- for_each: bar_intervals
-- severity: ERROR
-- description: Each bar reconciles with its source candles: same candle count, volume sum (to 1e-9 relative), high and low extremes, first open and last close.
WITH source AS (
    SELECT symbol, time_bucket($interval, ts) AS ts,
           count(*) AS n, sum(volume) AS volume, max(high) AS high, min(low) AS low,
           arg_min(open, ts) AS open, arg_max(close, ts) AS close
    FROM {{ ref('raw_candles') }}
    WHERE ts >= $window_start AND ts < $window_end
    GROUP BY ALL
)
SELECT coalesce(s.symbol, b.symbol) AS symbol, coalesce(s.ts, b.ts) AS ts,
       s.n AS source_candles, b.n_source, s.volume AS source_volume, b.volume AS bar_volume
FROM source AS s
FULL OUTER JOIN (
    SELECT * FROM {{ ref('bars_{interval}') }} WHERE ts >= $window_start AND ts < $window_end
) AS b USING (symbol, ts)
WHERE s.symbol IS NULL OR b.symbol IS NULL
   OR s.n <> b.n_source OR s.high <> b.high OR s.low <> b.low
   OR s.open <> b.open OR s.close <> b.close
   OR abs(s.volume - b.volume) > 1e-9 * greatest(abs(s.volume), 1)
