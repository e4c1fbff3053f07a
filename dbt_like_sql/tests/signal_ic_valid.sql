-- check: signal_ic_valid
-- asset: signal_ic
-- day_of: ts
-- severity: ERROR
-- description: One row per bar, signal and configured horizon; IC and rank IC finite and within [-1, 1] (1e-9 allowed for floating-point rounding of a correlation), and at least 3 symbols behind every IC.
SELECT i.ts, i.signal_name, i.horizon, i.ic, i.rank_ic, i.n_assets,
       CASE WHEN i.n_assets < 3 THEN 'fewer than 3 symbols'
            WHEN NOT list_contains($horizons, i.horizon) THEN 'horizon not configured'
            WHEN count(*) OVER (PARTITION BY i.ts, i.signal_name, i.horizon) > 1 THEN 'duplicate key'
            ELSE 'IC not finite or outside [-1, 1]' END AS problem
FROM {{ ref('signal_ic') }} AS i
WHERE i.ts >= $window_start AND i.ts < $window_end
QUALIFY i.n_assets < 3 OR NOT list_contains($horizons, i.horizon)
     OR count(*) OVER (PARTITION BY i.ts, i.signal_name, i.horizon) > 1
     OR NOT (isfinite(i.ic) AND isfinite(i.rank_ic))
     OR abs(i.ic) > 1 + 1e-9 OR abs(i.rank_ic) > 1 + 1e-9
