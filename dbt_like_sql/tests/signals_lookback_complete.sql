-- check: signals_lookback_complete
-- asset: signals
-- day_of: partition_key
-- severity: WARN
-- description: Every day of the window was built with its whole lookback there: every features_{feature_interval} and bars_{feature_interval} day from partitions.start_date (the origin the stateful rules and open round trips are computed from), each complete itself. A day built without them has no signals and no round trips, and is refreshed when they land; until then this warns, naming the missing days.
SELECT partition_key, missing_count, missing, lookback
FROM lookback_status
WHERE asset = $asset AND NOT complete
  AND partition_key >= strftime($window_start, '%Y-%m-%d') AND partition_key < strftime($window_end, '%Y-%m-%d')
ORDER BY partition_key
