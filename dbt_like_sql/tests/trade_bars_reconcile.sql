-- check: trade_bars_{interval}_reconcile
-- asset: trade_bars_{interval}
-- for_each: bar_intervals
-- requires: trades
-- severity: ERROR
-- description: Trade bars have positive prices with low <= open, close <= high and low <= vwap <= high, and their trade count and volume equal those of the trades in the window.
SELECT 'bar' AS problem, symbol, ts, n_trades, volume
FROM {{ ref('trade_bars_{interval}') }}
WHERE ts >= $window_start AND ts < $window_end
  AND NOT (low > 0 AND low <= least(open, close) AND high >= greatest(open, close)
           AND vwap BETWEEN low * (1 - 1e-12) AND high * (1 + 1e-12) AND n_trades >= 1)
UNION ALL
SELECT 'totals', t.symbol, NULL, t.n, t.volume
FROM (SELECT symbol, count(*) AS n, sum(amount) AS volume FROM {{ ref('raw_trades') }}
      WHERE ts >= $window_start AND ts < $window_end GROUP BY symbol) AS t
FULL OUTER JOIN (SELECT symbol, sum(n_trades) AS n, sum(volume) AS volume FROM {{ ref('trade_bars_{interval}') }}
      WHERE ts >= $window_start AND ts < $window_end GROUP BY symbol) AS b USING (symbol)
WHERE t.n IS DISTINCT FROM b.n OR abs(t.volume - b.volume) > 1e-9 * greatest(abs(t.volume), 1)
