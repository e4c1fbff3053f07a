-- check: backtest_pnl_consistent
-- asset: backtest_pnl
-- severity: ERROR
-- description: Per bar, net = gross - cost (to 1e-12), cost and turnover are >= 0 and gross exposure stays within 1 (equal risk budget across symbols), each bound to 1e-9 absolute (floating-point sums of weights land a few ulps past a bound; that is rounding, not a defect), and every value is finite.
SELECT *
FROM {{ ref('backtest_pnl') }}
WHERE ts >= $window_start AND ts < $window_end
  AND NOT (
        isfinite(gross_return) AND isfinite(net_return) AND isfinite(cost)
    AND abs(net_return - (gross_return - cost)) <= 1e-12
    AND cost >= -1e-9 AND turnover >= -1e-9 AND gross_exposure <= 1 + 1e-9
  )
