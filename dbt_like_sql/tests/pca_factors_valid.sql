-- check: pca_factors_valid
-- asset: pca_factors
-- day_of: ts
-- severity: ERROR
-- description: Component returns finite; explained-variance ratios in [0, 1], non-increasing in the component and summing to <= 1 per bar (1e-9 absolute allowed for rounding); components numbered 1..k without a hole; n_assets and window_bars the same on every row of a bar, n_assets above k; no row on a day whose lookback was recorded incomplete.
WITH bars AS (
    SELECT ts, count(*) AS k, max(component) AS top, min(component) AS bottom, sum(explained_variance_ratio) AS total,
           min(n_assets) AS n_min, max(n_assets) AS n_max, min(window_bars) AS w_min, max(window_bars) AS w_max
    FROM {{ ref('pca_factors') }}
    WHERE ts >= $window_start AND ts < $window_end
    GROUP BY ts
)
SELECT p.ts, p.component, p.factor_return, p.explained_variance_ratio, b.total, p.n_assets
FROM {{ ref('pca_factors') }} AS p JOIN bars AS b USING (ts)
WHERE NOT coalesce(isfinite(p.factor_return), false)
   OR NOT coalesce(p.explained_variance_ratio BETWEEN -1e-9 AND 1 + 1e-9, false)
   OR b.total > 1 + 1e-9 OR b.bottom <> 1 OR b.top <> b.k
   OR b.n_min <> b.n_max OR b.w_min <> b.w_max OR p.n_assets <= b.k
   OR p.explained_variance_ratio > 1e-9 + coalesce((
        SELECT q.explained_variance_ratio FROM {{ ref('pca_factors') }} AS q
        WHERE q.ts = p.ts AND q.component = p.component - 1), 1)
   OR EXISTS (SELECT 1 FROM lookback_status AS s WHERE s.asset = $asset AND NOT s.complete
              AND s.partition_key = strftime(CAST(p.ts AS DATE), '%Y-%m-%d'))
