-- check: backtest_folds_metrics
-- asset: backtest_folds
-- day_of: day
-- severity: ERROR
-- description: Each day of the window is recorded once per cost mode (clean and realistic); a traded (OK) day has a selected strategy, bars, finite gross and net returns and costs, costs >= 0, net = (1 + gross) compounding less costs within the day's first-order slack, 0 <= max drawdown <= 1 (to 1e-9: a drawdown is 1 - equity / peak in floating point), a leverage > 0 and annualised figures finite or NULL with a reason.
WITH days AS (
    SELECT d.day, m.cost_mode
    FROM (SELECT unnest(generate_series($window_start, $window_end - INTERVAL 1 DAY, INTERVAL 1 DAY)) AS day) AS d
    CROSS JOIN (VALUES ('clean'), ('realistic')) AS m(cost_mode)
)
SELECT d.day, d.cost_mode, f.status, f.selected_strategy, f.total_return, f.max_drawdown, f.sharpe, f.n_bars
FROM days AS d
LEFT JOIN {{ ref('backtest_folds') }} AS f USING (day, cost_mode)
WHERE f.status IS NULL
   OR (f.status = 'OK' AND (
          f.selected_strategy IS NULL OR f.n_bars < 1
       OR NOT isfinite(f.total_return) OR NOT isfinite(f.gross_return) OR NOT isfinite(f.cost) OR f.cost < 0
       OR (f.cost_mode = 'clean' AND (f.cost <> 0 OR abs(f.total_return - f.gross_return) > 1e-12))
       OR NOT (f.max_drawdown BETWEEN -1e-9 AND 1 + 1e-9)
       OR NOT (f.leverage > 0)
       OR (f.sharpe IS NULL AND f.null_reason IS NULL)
       OR (f.sharpe IS NOT NULL AND NOT isfinite(f.sharpe))))
   OR (f.status <> 'OK' AND (f.null_reason IS NULL OR f.n_bars <> 0))
