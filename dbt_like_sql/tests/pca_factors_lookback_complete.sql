-- check: pca_factors_lookback_complete
-- asset: pca_factors
-- day_of: partition_key
-- severity: WARN
-- description: Every day of the window was built with its lookback there: the bars_{feature_interval} days the trailing PCA window reaches into. A day built without them has no PCA rows and is refreshed when they land; until then this warns, naming the missing days.
SELECT partition_key, missing_count, missing, lookback
FROM lookback_status
WHERE asset = $asset AND NOT complete
  AND partition_key >= strftime($window_start, '%Y-%m-%d') AND partition_key < strftime($window_end, '%Y-%m-%d')
ORDER BY partition_key
