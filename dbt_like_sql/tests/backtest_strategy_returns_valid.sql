-- check: backtest_strategy_returns_valid
-- asset: backtest_strategy_returns
-- severity: ERROR
-- description: Every strategy's out-of-sample bar is finite with turnover >= 0 (to 1e-9); in clean costs net equals gross; every bar of a cost mode has the same strategies (the trials' returns matrix has no holes).
WITH bars AS (
    SELECT ts, cost_mode, count(*) AS n
    FROM {{ ref('backtest_strategy_returns') }}
    WHERE ts >= $window_start AND ts < $window_end
    GROUP BY ALL
)
SELECT r.ts, r.cost_mode, r.strategy, r.gross_return, r.net_return, b.n
FROM {{ ref('backtest_strategy_returns') }} AS r
JOIN bars AS b USING (ts, cost_mode)
WHERE r.ts >= $window_start AND r.ts < $window_end
  AND (NOT (isfinite(r.gross_return) AND isfinite(r.net_return) AND isfinite(r.turnover))
       OR r.turnover < -1e-9
       OR (r.cost_mode = 'clean' AND r.net_return <> r.gross_return)
       OR b.n <> (SELECT max(n) FROM bars))
