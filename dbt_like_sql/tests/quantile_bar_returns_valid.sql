-- check: quantile_bar_returns_valid
-- asset: quantile_bar_returns
-- day_of: ts
-- severity: ERROR
-- description: Every bucketed bar has each of its quantiles (within 1..research.quantiles) once, each with at least one symbol and a finite mean return (with few symbols a bucket can be empty: qcut's edges may fall between two values, and alphalens has no row for it either), and the demeaned bucket means weighted by their sizes sum to zero (within 1e-9 of the largest), as demeaning by the bar's cross-sectional mean requires.
WITH per_bar AS (
    SELECT ts, signal_name, horizon, count(*) AS buckets, count(DISTINCT quantile) AS distinct_buckets,
           min(quantile) AS lo, max(quantile) AS hi, min(n_assets) AS smallest,
           bool_and(isfinite(mean_return)) AS finite,
           abs(sum(mean_return * n_assets)) AS weighted_sum, max(abs(mean_return)) AS largest
    FROM {{ ref('quantile_bar_returns') }}
    WHERE ts >= $window_start AND ts < $window_end
    GROUP BY ALL
)
SELECT * FROM per_bar
WHERE buckets <> distinct_buckets OR lo < 1 OR hi > $quantiles
   OR smallest < 1 OR NOT finite OR weighted_sum > 1e-9 * greatest(1, largest * buckets)
