-- check: pca_factors_unique_key
-- asset: pca_factors
-- day_of: ts
-- severity: ERROR
-- description: One row per (ts, component) in the window, on the {feature_interval} bar grid.
SELECT ts, component, count(*) AS n
FROM {{ ref('pca_factors') }}
WHERE ts >= $window_start AND ts < $window_end
GROUP BY ts, component
HAVING count(*) > 1 OR time_bucket('{feature_interval}'::INTERVAL, ts) <> ts
