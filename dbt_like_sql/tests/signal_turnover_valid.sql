-- check: signal_turnover_valid
-- asset: signal_turnover
-- day_of: ts
-- severity: ERROR
-- description: One row per bar and signal; rank autocorrelation NULL or within [-1, 1] (1e-9 for rounding); top and bottom quantile turnover NULL or a share in [0, 1].
SELECT t.ts, t.signal_name, t.rank_autocorr, t.turnover_top, t.turnover_bottom
FROM {{ ref('signal_turnover') }} AS t
WHERE t.ts >= $window_start AND t.ts < $window_end
QUALIFY count(*) OVER (PARTITION BY t.ts, t.signal_name) > 1
     OR NOT (coalesce(t.rank_autocorr, 0) BETWEEN -1 - 1e-9 AND 1 + 1e-9)
     OR NOT (coalesce(t.turnover_top, 0) BETWEEN 0 AND 1) OR NOT (coalesce(t.turnover_bottom, 0) BETWEEN 0 AND 1)
