-- check: pca_residuals_valid
-- asset: pca_residuals
-- day_of: ts
-- severity: ERROR
-- description: Residual returns finite, and at every bar exactly the n_assets symbols the day's PCA was fitted on (pca_factors.n_assets), no bar without its component returns.
WITH counts AS (
    SELECT ts, count(*) AS n, bool_and(isfinite(residual_return)) AS finite
    FROM {{ ref('pca_residuals') }}
    WHERE ts >= $window_start AND ts < $window_end
    GROUP BY ts
)
SELECT c.ts, c.n, c.finite, (SELECT max(p.n_assets) FROM {{ ref('pca_factors') }} AS p WHERE p.ts = c.ts) AS n_assets
FROM counts AS c
WHERE NOT c.finite
   OR c.n IS DISTINCT FROM (SELECT max(p.n_assets) FROM {{ ref('pca_factors') }} AS p WHERE p.ts = c.ts)
