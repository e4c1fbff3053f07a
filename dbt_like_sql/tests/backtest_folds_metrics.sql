-- check: backtest_folds_metrics
-- asset: backtest_folds
-- severity: ERROR
-- description: Each fold in the window is recorded once; an OK fold has a selected signal, finite total return, 0 <= max drawdown <= 1 (to 1e-9 absolute: a drawdown is 1 - equity / peak in floating point, and a few ulps past a bound is rounding, not a defect), a Sharpe that is finite or NULL, and bars traded.
WITH days AS (
    SELECT unnest(generate_series($window_start, $window_end - INTERVAL 1 DAY, INTERVAL 1 DAY)) AS test_start
)
SELECT d.test_start, f.status, f.selected_signal, f.total_return, f.max_drawdown, f.sharpe, f.n_bars
FROM days AS d
LEFT JOIN {{ ref('backtest_folds') }} AS f USING (test_start)
WHERE f.fold IS NULL
   OR (f.status = 'OK' AND (
          f.selected_signal IS NULL OR NOT isfinite(f.total_return)
       OR NOT (f.max_drawdown BETWEEN -1e-9 AND 1 + 1e-9)
       OR (f.sharpe IS NOT NULL AND NOT isfinite(f.sharpe))
       OR f.n_bars < 1))
