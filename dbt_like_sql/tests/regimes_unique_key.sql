-- check: regimes_unique_key
-- asset: regimes
-- day_of: ts
-- severity: ERROR
-- description: One row per ts in the window, on the {feature_interval} bar grid.
SELECT ts, count(*) AS n
FROM {{ ref('regimes') }}
WHERE ts >= $window_start AND ts < $window_end
GROUP BY ts
HAVING count(*) > 1 OR time_bucket('{feature_interval}'::INTERVAL, ts) <> ts
