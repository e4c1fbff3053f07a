-- check: bars_{interval}_stale
-- asset: bars_{interval}
-- day_of: day
-- for_each: bar_intervals
-- severity: WARN
-- description: Each configured symbol's last bar in the window ends no more than max_staleness_minutes before the window's end (a feed that stopped mid-day shows here).
WITH days AS (
    SELECT unnest(generate_series($window_start, $window_end - INTERVAL 1 DAY, INTERVAL 1 DAY)) AS day
),
last_bars AS (
    SELECT symbol, date_trunc('day', ts) AS day, max(ts) AS last_bar
    FROM {{ ref('bars_{interval}') }}
    WHERE ts >= $window_start AND ts < $window_end
    GROUP BY ALL
)
SELECT d.day, s.symbol, l.last_bar, d.day + INTERVAL 1 DAY AS window_end
FROM days AS d
CROSS JOIN (SELECT unnest($symbols) AS symbol) AS s
LEFT JOIN last_bars AS l ON l.symbol = s.symbol AND l.day = d.day
WHERE l.last_bar IS NULL
   OR l.last_bar + $interval < d.day + INTERVAL 1 DAY - to_minutes(CAST($max_staleness_minutes AS BIGINT))
