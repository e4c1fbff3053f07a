-- check: signal_ic_pooled_valid
-- asset: signal_ic_pooled
-- day_of: day
-- severity: ERROR
-- description: One row per day, signal and horizon; the pooled IC and rank IC NULL (undefined: fewer than 3 pairs or a constant side) or finite within [-1, 1] (1e-9 for rounding); a non-negative pair count.
SELECT p.day, p.signal_name, p.horizon, p.ic, p.rank_ic, p.n_obs
FROM {{ ref('signal_ic_pooled') }} AS p
WHERE p.day >= $window_start AND p.day < $window_end
QUALIFY count(*) OVER (PARTITION BY p.day, p.signal_name, p.horizon) > 1 OR p.n_obs < 0
     OR NOT (coalesce(p.ic, 0) BETWEEN -1 - 1e-9 AND 1 + 1e-9)
     OR NOT (coalesce(p.rank_ic, 0) BETWEEN -1 - 1e-9 AND 1 + 1e-9)
