-- check: bars_{interval}_completeness
-- asset: bars_{interval}
-- for_each: bar_intervals
-- severity: WARN
-- description: Each configured symbol's bars in the window hold at least min_completeness of the base candles a full window would (missing bars count as empty). Gaps are facts: this warns, it does not block.
WITH per_symbol AS (
    SELECT s.symbol, coalesce(sum(b.n_source), 0) AS candles
    FROM (SELECT unnest($symbols) AS symbol) AS s
    LEFT JOIN {{ ref('bars_{interval}') }} AS b
        ON b.symbol = s.symbol AND b.ts >= $window_start AND b.ts < $window_end
    GROUP BY s.symbol
)
SELECT symbol, candles,
    (epoch($window_end) - epoch($window_start)) // ($interval_minutes * 60) * $n_expected AS expected,
    candles / ((epoch($window_end) - epoch($window_start)) // ($interval_minutes * 60) * $n_expected) AS completeness
FROM per_symbol
WHERE candles < $min_completeness * (epoch($window_end) - epoch($window_start)) // ($interval_minutes * 60) * $n_expected
