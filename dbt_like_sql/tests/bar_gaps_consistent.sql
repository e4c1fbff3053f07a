-- check: bar_gaps_consistent
-- asset: bar_gaps
-- severity: ERROR
-- description: Every gap is a real, exact run of missing candles: it lies in the window, gap_end - gap_start = missing_count base intervals, no stored candle falls inside it, and gaps plus stored candles account for every expected candle of every symbol.
WITH gaps AS (
    SELECT * FROM {{ ref('bar_gaps') }} WHERE gap_start >= $window_start AND gap_start < $window_end
),
bad_gaps AS (
    SELECT g.symbol, g.gap_start, g.gap_end, g.missing_count, 'malformed or overlaps a candle' AS problem
    FROM gaps AS g
    WHERE g.gap_end > $window_end OR g.missing_count < 1
       OR g.gap_end - g.gap_start <> g.missing_count * $base_interval
       OR EXISTS (SELECT 1 FROM {{ ref('raw_candles') }} AS r
                  WHERE r.symbol = g.symbol AND r.ts >= g.gap_start AND r.ts < g.gap_end)
),
accounted AS (
    SELECT s.symbol,
        (SELECT count(*) FROM {{ ref('raw_candles') }} AS r
         WHERE r.symbol = s.symbol AND r.ts >= $window_start AND r.ts < $window_end)
        + (SELECT coalesce(sum(missing_count), 0) FROM gaps AS g WHERE g.symbol = s.symbol) AS total
    FROM (SELECT unnest($symbols) AS symbol) AS s
)
SELECT symbol, gap_start, gap_end, missing_count, problem FROM bad_gaps
UNION ALL
SELECT symbol, NULL, NULL, CAST(total AS INTEGER), 'candles + gaps do not cover the window'
FROM accounted
WHERE total <> (epoch($window_end) - epoch($window_start)) // ($base_minutes * 60)
