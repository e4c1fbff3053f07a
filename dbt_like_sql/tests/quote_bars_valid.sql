-- check: quote_bars_{interval}_valid
-- asset: quote_bars_{interval}
-- for_each: bar_intervals
-- severity: ERROR
-- description: Quote bars have positive prices with low <= open, close <= high, and count exactly the snapshots polled in the window. Exact, with no tolerance: bar prices are copies of polled values (first, max, min, last).
SELECT 'bar' AS problem, symbol, ts, n_quotes
FROM {{ ref('quote_bars_{interval}') }}
WHERE ts >= $window_start AND ts < $window_end
  AND NOT (low > 0 AND low <= least(open, close) AND high >= greatest(open, close) AND n_degraded <= n_quotes)
UNION ALL
SELECT 'totals', q.symbol, NULL, q.n
FROM (SELECT symbol, count(*) AS n FROM {{ ref('spot_quotes') }} WHERE ts >= $window_start AND ts < $window_end GROUP BY symbol) AS q
FULL OUTER JOIN (SELECT symbol, sum(n_quotes) AS n FROM {{ ref('quote_bars_{interval}') }}
                 WHERE ts >= $window_start AND ts < $window_end GROUP BY symbol) AS b USING (symbol)
WHERE q.n IS DISTINCT FROM b.n
