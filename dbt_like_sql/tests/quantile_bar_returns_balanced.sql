-- check: quantile_bar_returns_balanced
-- asset: quantile_bar_returns
-- day_of: ts
-- severity: WARN
-- description: Factor quantiles are equal-count buckets: within a bar their sizes differ by at most one symbol. Ties in a factor's values at a bucket edge unbalance them; this warns, naming the bars (a rule's discrete positions are not bucketed when edges tie).
SELECT ts, signal_name, horizon, min(n_assets) AS smallest, max(n_assets) AS largest
FROM {{ ref('quantile_bar_returns') }}
WHERE ts >= $window_start AND ts < $window_end AND kind = 'factor'
GROUP BY ALL
HAVING max(n_assets) - min(n_assets) > 1
