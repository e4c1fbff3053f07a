-- check: backtest_pnl_consistent
-- asset: backtest_pnl
-- day_of: ts
-- severity: ERROR
-- description: Per bar and cost mode, net = gross - cost (to 1e-12), cost and turnover are >= 0 (to 1e-9 absolute: floating-point sums land a few ulps past a bound; that is rounding, not a defect), clean bars cost nothing, every value is finite, and each bar is one strategy's of its fold.
SELECT *
FROM {{ ref('backtest_pnl') }}
WHERE ts >= $window_start AND ts < $window_end
  AND NOT (
        isfinite(gross_return) AND isfinite(net_return) AND isfinite(cost) AND isfinite(turnover)
    AND isfinite(gross_exposure) AND isfinite(benchmark_equal_weight)
    AND (benchmark_market IS NULL OR isfinite(benchmark_market))
    AND abs(net_return - (gross_return - cost)) <= 1e-12
    AND cost >= -1e-9 AND turnover >= -1e-9 AND capped >= 0
    AND (cost_mode = 'realistic' OR cost = 0)
  )
