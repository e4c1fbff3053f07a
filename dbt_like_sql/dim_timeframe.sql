-- asset: dim_timeframe
-- group: bars
-- description: The timeframes the platform knows: name, length in seconds and minutes, the polars/pandas offset alias, the calendar alignment of bar labels on the 24/7 UTC calendar, and whether it is the base interval or a configured bar interval. Everything downstream refers to these names.
-- partitioned: none
-- order_by: seconds
-- kinds: duckdb, sql
SELECT
    name, seconds, seconds // 60 AS minutes, polars_alias, pandas_alias, alignment,
    seconds = $base_minutes * 60 AS is_base,
    list_contains($bar_intervals, name) AS is_bar_interval
FROM (VALUES
    ('1m', 60, '1m', '1min', 'UTC minute'),
    ('5m', 300, '5m', '5min', 'UTC, multiples of 5 minutes from 00:00'),
    ('15m', 900, '15m', '15min', 'UTC, multiples of 15 minutes from 00:00'),
    ('30m', 1800, '30m', '30min', 'UTC, multiples of 30 minutes from 00:00'),
    ('1h', 3600, '1h', '1h', 'UTC hour'),
    ('4h', 14400, '4h', '4h', 'UTC, 00:00 04:00 08:00 12:00 16:00 20:00'),
    ('1d', 86400, '1d', '1D', 'UTC day from 00:00'),
    ('1w', 604800, '1w', 'W-MON', 'Monday 00:00 UTC; pandas: closed and label left')
) AS t(name, seconds, polars_alias, pandas_alias, alignment)
ORDER BY seconds
