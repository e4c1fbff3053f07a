-- check: signal_calibration_lookback_complete
-- asset: signal_calibration
-- day_of: partition_key
-- severity: WARN
-- description: Every tested day was built with its fold's whole lookback there: the bars, signals and factors of its training window, the covariance history before it and the fold's earlier test days, each complete itself. A day built without them has no calibration rows and is refreshed when they land; until then this warns, naming the missing days.
SELECT partition_key, missing_count, missing, lookback
FROM lookback_status
WHERE asset = $asset AND NOT complete
  AND partition_key >= strftime($window_start, '%Y-%m-%d') AND partition_key < strftime($window_end, '%Y-%m-%d')
ORDER BY partition_key
