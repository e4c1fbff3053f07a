-- check: features_{interval}_finite
-- asset: features_{interval}
-- day_of: ts
-- severity: ERROR
-- for_each: bar_intervals
-- description: Every feature value is either NULL (before its warm-up, or undefined) or finite; oscillators (RSI, MFI, stochastic, ADX, +DI/-DI, also when joined from a higher interval) lie in [0, 100]; volatilities, ATR, dollar volume and Amihud are >= 0; correlations lie in [-1, 1]. Each bound allows 1e-9 absolute: TA-Lib's formulas in floating point land a few ulps past a bound on real data (on ZEC/BTC 5m, stoch_k_14_3_3 is 100.00000000000001 at 2018-01-25 04:40, and TA-Lib's own STOCH gives 100.0000000000001 at 2018-01-11 17:30), which is rounding, not a defect; 1e-9 is far above such noise (an ulp of 100 is 1.4e-14) and far below any real violation (100.001 or -1e-6 fail). Works for any catalogue: the row is unpivoted to (feature, value).
WITH long AS (
    UNPIVOT (
        SELECT * FROM {{ ref('features_{interval}') }} WHERE ts >= $window_start AND ts < $window_end
    )
    ON COLUMNS(lambda c: c NOT IN ('symbol', 'ts') AND NOT ends_with(c, '_outlier'))
    INTO NAME feature VALUE value
)
SELECT symbol, ts, feature, value
FROM long
WHERE NOT isfinite(value)
   OR (regexp_matches(feature, '^(htf_[0-9]+[mhd]_)?(rsi|mfi|stoch_k|stoch_d|adx|plus_di|minus_di)_[0-9_]+$')
       AND NOT value BETWEEN -1e-9 AND 100 + 1e-9)
   OR (regexp_matches(feature, '^(htf_[0-9]+[mhd]_)?(vol_[a-z]+|atr|dollar_volume|amihud)_[0-9]+$') AND value < -1e-9)
   OR (regexp_matches(feature, '^(htf_[0-9]+[mhd]_)?corr_[0-9]+$') AND NOT value BETWEEN -1 - 1e-9 AND 1 + 1e-9)
