-- check: raw_candles_completeness
-- asset: raw_candles
-- day_of: day
-- severity: WARN
-- description: Each symbol has at least 95% of the base candles a UTC day should hold. Gaps are facts, not errors: this warns, it does not block.
SELECT symbol, CAST(ts AS DATE) AS day, count(*) AS candles, 1440 // $base_minutes AS expected
FROM {{ ref('raw_candles') }}
WHERE ts >= $window_start AND ts < $window_end
GROUP BY ALL
HAVING count(*) < 0.95 * (1440 // $base_minutes)
