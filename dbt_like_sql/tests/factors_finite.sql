-- check: factors_finite
-- asset: factors
-- day_of: ts
-- severity: ERROR
-- description: Every factor value is a finite number (never NULL, NaN or infinite): a factor that cannot be computed at a bar has no row there.
SELECT symbol, ts, factor_name, value
FROM {{ ref('factors') }}
WHERE ts >= $window_start AND ts < $window_end
  AND (value IS NULL OR NOT isfinite(value))
