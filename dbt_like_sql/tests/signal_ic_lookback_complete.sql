-- check: signal_ic_lookback_complete
-- asset: signal_ic
-- day_of: partition_key
-- severity: WARN
-- description: Every day of the window was validated with the bars max(research.horizons) bars after it there, and with its own and the previous day's signals and factors complete: until the days ahead land, the day's last bars have no forward return; the automation refreshes the day when they arrive. Until then this warns, naming the missing days.
SELECT partition_key, missing_count, missing, lookback
FROM lookback_status
WHERE asset = $asset AND NOT complete
  AND partition_key >= strftime($window_start, '%Y-%m-%d') AND partition_key < strftime($window_end, '%Y-%m-%d')
ORDER BY partition_key
