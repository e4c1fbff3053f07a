-- check: features_{interval}_unique_key
-- asset: features_{interval}
-- day_of: ts
-- severity: ERROR
-- for_each: bar_intervals
-- description: One row per (symbol, ts) in the window, on the {interval} bar grid.
SELECT symbol, ts, count(*) AS n
FROM {{ ref('features_{interval}') }}
WHERE ts >= $window_start AND ts < $window_end
GROUP BY symbol, ts
HAVING count(*) > 1 OR time_bucket($interval, ts) <> ts
