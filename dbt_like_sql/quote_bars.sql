-- asset: quote_bars_{interval}
-- group: bars
-- description: Price bars of {interval} built from polled spot snapshots (spot_quotes), left-labelled [ts, ts + {interval}) in UTC by poll tick: open and close are the first and last snapshot prices, high and low their extremes. Snapshots carry no traded amount, so these bars have no volume; n_quotes counts snapshots and n_degraded those served from last-known-good (fetch_status DEGRADED). A bar with no snapshot is absent.
-- for_each: bar_intervals
-- kinds: duckdb, sql
SELECT
    symbol,
    time_bucket($interval, ts) AS ts,
    arg_min(price, ts) AS open,
    max(price) AS high,
    min(price) AS low,
    arg_max(price, ts) AS close,
    CAST(count(*) AS INTEGER) AS n_quotes,
    CAST(count(*) FILTER (fetch_status = 'DEGRADED') AS INTEGER) AS n_degraded,
    string_agg(DISTINCT provider, ',' ORDER BY provider) AS provider_mix
FROM {{ ref('spot_quotes') }}
WHERE ts >= $window_start AND ts < $window_end
GROUP BY symbol, time_bucket($interval, ts)
