-- check: factors_lookback_complete
-- asset: factors
-- day_of: partition_key
-- severity: WARN
-- description: Every day of the window was built with its whole lookback there: the bars_{feature_interval} days that the longest factor window (+2 bars) reaches back to. A day built without them has no factor rows where that history is missing and is refreshed when the days land; until then this warns, naming the missing days.
SELECT partition_key, missing_count, missing, lookback
FROM lookback_status
WHERE asset = $asset AND NOT complete
  AND partition_key >= strftime($window_start, '%Y-%m-%d') AND partition_key < strftime($window_end, '%Y-%m-%d')
ORDER BY partition_key
