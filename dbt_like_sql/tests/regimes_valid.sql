-- check: regimes_valid
-- asset: regimes
-- day_of: ts
-- severity: ERROR
-- description: Labels in their sets (vol_regime and dispersion_regime low/normal/high, beta_state up|down + _high_corr|_low_corr) and set only where their value is (vol_regime needs market_vol, dispersion_regime dispersion, beta_state avg_corr and market_trend, whose sign it must carry); market_vol and dispersion finite and >= 0, market_trend finite and > -1, avg_corr in [-1, 1] (1e-9 absolute allowed); no value at all on a day whose lookback was recorded incomplete.
SELECT ts, market_vol, vol_regime, dispersion, dispersion_regime, market_trend, avg_corr, beta_state
FROM {{ ref('regimes') }} AS g
WHERE ts >= $window_start AND ts < $window_end
  AND (NOT coalesce(vol_regime IN ('low', 'normal', 'high'), true)
       OR NOT coalesce(dispersion_regime IN ('low', 'normal', 'high'), true)
       OR NOT coalesce(beta_state IN ('up_high_corr', 'up_low_corr', 'down_high_corr', 'down_low_corr'), true)
       OR (vol_regime IS NOT NULL AND market_vol IS NULL)
       OR (dispersion_regime IS NOT NULL AND dispersion IS NULL)
       OR (beta_state IS NOT NULL AND (avg_corr IS NULL OR market_trend IS NULL
                                       OR starts_with(beta_state, 'up_') <> (market_trend > 0)))
       OR NOT coalesce(isfinite(market_vol) AND market_vol >= 0, true)
       OR NOT coalesce(isfinite(dispersion) AND dispersion >= 0, true)
       OR NOT coalesce(isfinite(market_trend) AND market_trend > -1, true)
       OR NOT coalesce(avg_corr BETWEEN -1 - 1e-9 AND 1 + 1e-9, true)
       OR (EXISTS (SELECT 1 FROM lookback_status AS s WHERE s.asset = $asset AND NOT s.complete
                   AND s.partition_key = strftime(CAST(g.ts AS DATE), '%Y-%m-%d'))
           AND coalesce(market_vol, dispersion, market_trend, avg_corr) IS NOT NULL))
