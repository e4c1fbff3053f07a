-- check: bars_{interval}_lookback_complete
-- asset: bars_{interval}
-- day_of: partition_key
-- for_each: bar_intervals
-- severity: WARN
-- description: Every day of the window was built with its whole lookback there: the raw_candles days its returns, cum_return and roll_vol read (roll_vol_window bars back, never before partitions.start_date). A day built without them holds NULL where those values need them and is refreshed when they land; until then this warns, naming the missing days.
SELECT partition_key, missing_count, missing, lookback
FROM lookback_status
WHERE asset = $asset AND NOT complete
  AND partition_key >= strftime($window_start, '%Y-%m-%d') AND partition_key < strftime($window_end, '%Y-%m-%d')
ORDER BY partition_key
