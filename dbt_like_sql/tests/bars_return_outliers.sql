-- check: bars_{interval}_return_outliers
-- asset: bars_{interval}
-- day_of: day
-- sample_order: abs(robust_z) DESC
-- for_each: bar_intervals
-- severity: WARN
-- description: No log return in the window lies beyond return_z_max robust z-scores, z = (r - median) / (1.4826 x MAD), with median and MAD per symbol over the window plus its roll_vol_window-bar lookback, and only where that reference holds at least 20 returns. A warning: fat tails are real in crypto, so a human looks before data is dropped.
WITH returns AS (
    SELECT symbol, ts, log_return
    FROM {{ ref('bars_{interval}') }}
    WHERE ts >= $lookback_start AND ts < $window_end AND log_return IS NOT NULL
),
-- A return is in the reference of its own day and of each later day whose lookback reaches it
-- (roll_vol_window bars back from that day's start): one pass, no join against the days.
reference AS (
    SELECT * FROM (
        SELECT symbol, ts, log_return,
            unnest(generate_series(date_trunc('day', ts), date_trunc('day', ts + $roll_vol_window * $interval),
                                   INTERVAL 1 DAY)) AS day
        FROM returns
    )
    WHERE day >= $window_start AND day < $window_end
),
centre AS (
    SELECT day, symbol, median(log_return) AS med FROM reference GROUP BY day, symbol HAVING count(*) >= 20
),
spread AS (
    SELECT r.day, r.symbol, c.med, median(abs(r.log_return - c.med)) AS mad
    FROM reference AS r JOIN centre AS c USING (day, symbol)
    GROUP BY r.day, r.symbol, c.med
)
SELECT s.day, w.symbol, w.ts, w.log_return, (w.log_return - s.med) / (1.4826 * s.mad) AS robust_z
FROM returns AS w
JOIN spread AS s ON s.symbol = w.symbol AND s.day = date_trunc('day', w.ts)
WHERE w.ts >= $window_start AND s.mad > 0 AND abs(w.log_return - s.med) / (1.4826 * s.mad) > $return_z_max
ORDER BY abs(robust_z) DESC
