-- check: features_{interval}_lookback_complete
-- asset: features_{interval}
-- day_of: partition_key
-- for_each: bar_intervals
-- severity: WARN
-- description: Every day of the window was built with its whole lookback there: every bars_{interval} day from partitions.start_date (the origin every feature is computed from) and the previous day of each higher interval's features, complete themselves. A day built without them holds NULL features and is refreshed when they land; until then this warns, naming the missing days.
SELECT partition_key, missing_count, missing, lookback
FROM lookback_status
WHERE asset = $asset AND NOT complete
  AND partition_key >= strftime($window_start, '%Y-%m-%d') AND partition_key < strftime($window_end, '%Y-%m-%d')
ORDER BY partition_key
