-- check: factor_returns_valid
-- asset: factor_returns
-- day_of: ts
-- severity: ERROR
-- description: Every factor return and R^2 is finite; R^2 lies in [0, 1] (1e-9 absolute allowed: an in-sample R^2 with intercept is in [0, 1] exactly, floating point can land an ulp outside) and is one value per bar; every regressed bar has its intercept row and n_assets >= k + 2 (k factors = the bar's rows minus the intercept), the same on every row of the bar.
WITH bars AS (
    SELECT ts, count(*) AS n_rows, min(n_assets) AS n_min, max(n_assets) AS n_max,
           min(r2) AS r2_min, max(r2) AS r2_max, count(*) FILTER (factor = 'intercept') AS intercepts
    FROM {{ ref('factor_returns') }}
    WHERE ts >= $window_start AND ts < $window_end
    GROUP BY ts
)
SELECT f.ts, f.factor, f."return", f.n_assets, f.r2, b.n_rows
FROM {{ ref('factor_returns') }} AS f JOIN bars AS b USING (ts)
WHERE NOT coalesce(isfinite(f."return"), false)
   OR NOT coalesce(isfinite(f.r2), false)
   OR f.r2 NOT BETWEEN -1e-9 AND 1 + 1e-9
   OR b.r2_min <> b.r2_max OR b.n_min <> b.n_max OR b.intercepts <> 1
   OR f.n_assets < b.n_rows + 1
