-- check: bars_{interval}_return_outliers
-- asset: bars_{interval}
-- for_each: bar_intervals
-- severity: WARN
-- description: No log return in the window lies beyond return_z_max robust z-scores, z = (r - median) / (1.4826 x MAD), with median and MAD per symbol over the window plus its roll_vol_window-bar lookback, and only where that reference holds at least 20 returns. A warning: fat tails are real in crypto, so a human looks before data is dropped.
WITH reference AS (
    SELECT symbol, ts, log_return
    FROM {{ ref('bars_{interval}') }}
    WHERE ts >= $lookback_start AND ts < $window_end AND log_return IS NOT NULL
),
window_returns AS (
    SELECT * FROM reference WHERE ts >= $window_start
),
centre AS (
    SELECT symbol, median(log_return) AS med FROM reference GROUP BY symbol HAVING count(*) >= 20
),
spread AS (
    SELECT r.symbol, c.med, median(abs(r.log_return - c.med)) AS mad
    FROM reference AS r JOIN centre AS c USING (symbol)
    GROUP BY r.symbol, c.med
)
SELECT w.symbol, w.ts, w.log_return, (w.log_return - s.med) / (1.4826 * s.mad) AS robust_z
FROM window_returns AS w
JOIN spread AS s USING (symbol)
WHERE s.mad > 0 AND abs(w.log_return - s.med) / (1.4826 * s.mad) > $return_z_max
ORDER BY abs(robust_z) DESC
