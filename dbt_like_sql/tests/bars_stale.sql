-- check: bars_{interval}_stale
-- asset: bars_{interval}
-- for_each: bar_intervals
-- severity: WARN
-- description: Each configured symbol's last bar in the window ends no more than max_staleness_minutes before the window's end (a feed that stopped mid-day shows here).
SELECT s.symbol, max(b.ts) AS last_bar, $window_end AS window_end
FROM (SELECT unnest($symbols) AS symbol) AS s
LEFT JOIN {{ ref('bars_{interval}') }} AS b
    ON b.symbol = s.symbol AND b.ts >= $window_start AND b.ts < $window_end
GROUP BY s.symbol
HAVING max(b.ts) IS NULL
    OR max(b.ts) + $interval < $window_end - to_minutes(CAST($max_staleness_minutes AS BIGINT))
