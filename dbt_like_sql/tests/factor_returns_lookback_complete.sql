-- check: factor_returns_lookback_complete
-- asset: factor_returns
-- day_of: partition_key
-- severity: WARN
-- description: Every day of the window was built with its lookback there: the day's bars_{feature_interval} and the next day's (the last bar's next-bar return reads the next day's first bar). A day built before the next day landed lacks its last bars' regressions and is refreshed when it lands; until then this warns, naming the missing days.
SELECT partition_key, missing_count, missing, lookback
FROM lookback_status
WHERE asset = $asset AND NOT complete
  AND partition_key >= strftime($window_start, '%Y-%m-%d') AND partition_key < strftime($window_end, '%Y-%m-%d')
ORDER BY partition_key
