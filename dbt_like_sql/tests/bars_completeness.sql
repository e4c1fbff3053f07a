-- check: bars_{interval}_completeness
-- asset: bars_{interval}
-- day_of: day
-- for_each: bar_intervals
-- severity: WARN
-- description: Each configured symbol's bars in the window hold at least min_completeness of the base candles a full window would (missing bars count as empty). Gaps are facts: this warns, it does not block.
WITH days AS (
    SELECT unnest(generate_series($window_start, $window_end - INTERVAL 1 DAY, INTERVAL 1 DAY)) AS day
),
candles AS (
    SELECT symbol, date_trunc('day', ts) AS day, sum(n_source) AS candles
    FROM {{ ref('bars_{interval}') }}
    WHERE ts >= $window_start AND ts < $window_end
    GROUP BY ALL
),
per_symbol AS (
    SELECT d.day, d.day + INTERVAL 1 DAY AS day_end, s.symbol, coalesce(c.candles, 0) AS candles
    FROM days AS d
    CROSS JOIN (SELECT unnest($symbols) AS symbol) AS s
    LEFT JOIN candles AS c ON c.symbol = s.symbol AND c.day = d.day
)
SELECT day, symbol, candles,
    (epoch(day_end) - epoch(day)) // ($interval_minutes * 60) * $n_expected AS expected,
    candles / ((epoch(day_end) - epoch(day)) // ($interval_minutes * 60) * $n_expected) AS completeness
FROM per_symbol
WHERE candles < $min_completeness * (epoch(day_end) - epoch(day)) // ($interval_minutes * 60) * $n_expected
