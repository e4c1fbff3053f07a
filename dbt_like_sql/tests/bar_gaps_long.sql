-- check: bar_gaps_long
-- asset: bar_gaps
-- day_of: gap_start
-- sample_order: minutes DESC
-- severity: WARN
-- description: No run of missing candles is longer than max_gap_minutes.
SELECT symbol, gap_start, gap_end, missing_count, missing_count * $base_minutes AS minutes
FROM {{ ref('bar_gaps') }}
WHERE gap_start >= $window_start AND gap_start < $window_end
  AND missing_count * $base_minutes > $max_gap_minutes
ORDER BY minutes DESC
