-- check: pca_residuals_history_exists
-- asset: pca_residuals
-- day_of: day
-- severity: ERROR
-- description: No PCA value at a bar whose trailing inputs do not exist: every symbol with a residual on day D has a bars_{feature_interval} log return at each of the window_bars bars before D's first bar (the window the day's PCA was fitted on), and a log return at the bar itself.
WITH residual_days AS (
    SELECT DISTINCT CAST(CAST(r.ts AS DATE) AS TIMESTAMP) AS day, r.symbol, p.window_bars
    FROM {{ ref('pca_residuals') }} AS r
    JOIN {{ ref('pca_factors') }} AS p ON p.ts = r.ts AND p.component = 1
    WHERE r.ts >= $window_start AND r.ts < $window_end
), window_bars AS (
    SELECT d.day, d.symbol, d.window_bars, count(b.log_return) AS present
    FROM residual_days AS d
    LEFT JOIN {{ ref('bars_{feature_interval}') }} AS b
      ON b.symbol = d.symbol AND b.ts >= d.day - d.window_bars * '{feature_interval}'::INTERVAL AND b.ts < d.day
    GROUP BY ALL
)
SELECT day, symbol, window_bars, present, NULL AS ts FROM window_bars WHERE present < window_bars
UNION ALL
SELECT CAST(CAST(r.ts AS DATE) AS TIMESTAMP), r.symbol, NULL, NULL, r.ts
FROM {{ ref('pca_residuals') }} AS r
LEFT JOIN {{ ref('bars_{feature_interval}') }} AS b ON b.symbol = r.symbol AND b.ts = r.ts
WHERE r.ts >= $window_start AND r.ts < $window_end AND b.log_return IS NULL
