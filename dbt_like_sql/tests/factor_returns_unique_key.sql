-- check: factor_returns_unique_key
-- asset: factor_returns
-- day_of: ts
-- severity: ERROR
-- description: One row per (ts, factor) in the window, on the {feature_interval} bar grid.
SELECT ts, factor, count(*) AS n
FROM {{ ref('factor_returns') }}
WHERE ts >= $window_start AND ts < $window_end
GROUP BY ts, factor
HAVING count(*) > 1 OR time_bucket('{feature_interval}'::INTERVAL, ts) <> ts
