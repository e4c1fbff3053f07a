-- asset: bar_gaps
-- group: bars
-- description: Every run of missing base candles per symbol: gap_start (first missing candle), gap_end (the open time of the next candle that exists or the partition end, exclusive), missing_count. Gaps are facts: nothing is filled. A run that crosses midnight is listed once per daily partition, clipped to it.
-- time_column: gap_start
-- order_by: symbol, gap_start
-- kinds: duckdb, sql
WITH expected AS (
    SELECT s.symbol, g.ts
    FROM (SELECT unnest($symbols) AS symbol) AS s
    CROSS JOIN (
        SELECT unnest(generate_series($window_start, $window_end - $base_interval, $base_interval)) AS ts
    ) AS g
),
missing AS (
    SELECT e.symbol, e.ts
    FROM expected AS e
    ANTI JOIN (
        SELECT symbol, ts FROM {{ ref('raw_candles') }} WHERE ts >= $window_start AND ts < $window_end
    ) AS r USING (symbol, ts)
),
runs AS (
    SELECT symbol, ts,
        ts - row_number() OVER (PARTITION BY symbol ORDER BY ts) * $base_interval AS run_key
    FROM missing
)
SELECT symbol, min(ts) AS gap_start, max(ts) + $base_interval AS gap_end, CAST(count(*) AS INTEGER) AS missing_count
FROM runs
GROUP BY symbol, run_key
ORDER BY symbol, gap_start
