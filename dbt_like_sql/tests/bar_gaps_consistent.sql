-- check: bar_gaps_consistent
-- asset: bar_gaps
-- day_of: day
-- severity: ERROR
-- description: Every gap is a real, exact run of missing candles: it lies in the window, gap_end - gap_start = missing_count base intervals, no stored candle falls inside it, and gaps plus stored candles account for every expected candle of every symbol.
WITH days AS (
    SELECT unnest(generate_series($window_start, $window_end - INTERVAL 1 DAY, INTERVAL 1 DAY)) AS day
),
gaps AS (
    SELECT *, date_trunc('day', gap_start) AS day
    FROM {{ ref('bar_gaps') }} WHERE gap_start >= $window_start AND gap_start < $window_end
),
bad_gaps AS (
    SELECT g.day, g.symbol, g.gap_start, g.gap_end, g.missing_count, 'malformed or overlaps a candle' AS problem
    FROM gaps AS g
    WHERE g.gap_end > g.day + INTERVAL 1 DAY OR g.missing_count < 1
       OR g.gap_end - g.gap_start <> g.missing_count * $base_interval
       OR EXISTS (SELECT 1 FROM {{ ref('raw_candles') }} AS r
                  WHERE r.symbol = g.symbol AND r.ts >= g.gap_start AND r.ts < g.gap_end)
),
candles AS (
    SELECT symbol, date_trunc('day', ts) AS day, count(*) AS n
    FROM {{ ref('raw_candles') }} WHERE ts >= $window_start AND ts < $window_end
    GROUP BY ALL
),
missing AS (
    SELECT symbol, day, sum(missing_count) AS n FROM gaps GROUP BY ALL
),
accounted AS (
    SELECT d.day, s.symbol, coalesce(c.n, 0) + coalesce(m.n, 0) AS total
    FROM days AS d
    CROSS JOIN (SELECT unnest($symbols) AS symbol) AS s
    LEFT JOIN candles AS c ON c.symbol = s.symbol AND c.day = d.day
    LEFT JOIN missing AS m ON m.symbol = s.symbol AND m.day = d.day
)
SELECT day, symbol, gap_start, gap_end, missing_count, problem FROM bad_gaps
UNION ALL
SELECT day, symbol, NULL, NULL, CAST(total AS INTEGER), 'candles + gaps do not cover the window'
FROM accounted
WHERE total <> (epoch(day + INTERVAL 1 DAY) - epoch(day)) // ($base_minutes * 60)
