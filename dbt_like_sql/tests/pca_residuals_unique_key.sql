-- check: pca_residuals_unique_key
-- asset: pca_residuals
-- day_of: ts
-- severity: ERROR
-- description: One row per (ts, symbol) in the window, on the {feature_interval} bar grid.
SELECT ts, symbol, count(*) AS n
FROM {{ ref('pca_residuals') }}
WHERE ts >= $window_start AND ts < $window_end
GROUP BY ts, symbol
HAVING count(*) > 1 OR time_bucket('{feature_interval}'::INTERVAL, ts) <> ts
