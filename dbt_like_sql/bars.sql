-- asset: bars_{interval}
-- group: bars
-- description: OHLCV bars of {interval} from raw_candles, left-labelled [ts, ts + {interval}) in UTC. n_source counts the source candles in the bar and n_expected how many there should be; a missing bar is absent, never filled. volume and quote_volume are sums in candle time order (exact to the bit, run after run). log_return = ln(close / close of the previous bar on the grid, ts - {interval}), NULL when that bar is missing (never across a gap). cum_return = close / close of the last bar before the bar's UTC day (ts = day 00:00 - {interval}) - 1: the simple return since the day began, NULL when that bar is missing. roll_vol = sample std of the last roll_vol_window log returns (bars ts - roll_vol_window x {interval} .. ts all present, else NULL) x sqrt(bars per 365-day year), an annualised fraction. provider_mix lists the providers of the bar's candles (comma-separated, alphabetical, with 'other' last for a provider not in the registry). Every value reads at most roll_vol_window bars before the bar, so it never depends on which earlier partitions happened to exist: when those raw_candles days are not there yet the values that need them are NULL, the partition records itself incomplete (lookback_status, metadata) and is refreshed when they land.
-- for_each: bar_intervals
-- lookback: raw_candles
-- kinds: duckdb, sql
WITH source AS (
    SELECT symbol, ts, open, high, low, close, volume, quote_volume, provider
    FROM {{ ref('raw_candles') }}
    WHERE ts >= $lookback_start AND ts < $window_end
),
bars AS (
    SELECT
        symbol,
        time_bucket($interval, ts) AS ts,
        arg_min(open, ts) AS open,
        max(high) AS high,
        min(low) AS low,
        arg_max(close, ts) AS close,
        -- summed in time order: DuckDB's parallel sum() of DOUBLEs rounds differently run to run
        sum(volume ORDER BY ts) AS volume,
        sum(quote_volume ORDER BY ts) AS quote_volume,
        CAST(count(*) AS INTEGER) AS n_source,
        -- one bit per provider in $providers: exact and far cheaper than string_agg(DISTINCT)
        bit_or(1::UBIGINT << (coalesce(list_position($providers, provider), len($providers)) - 1)) AS provider_bits
    FROM source
    GROUP BY symbol, time_bucket($interval, ts)
),
-- Windows run over (symbol, ts, close) only: sorting the narrow frame is cheaper than the wide one.
returns AS (
    SELECT symbol, ts,
        CASE WHEN lag(ts) OVER bar_order = ts - $interval THEN ln(close / lag(close) OVER bar_order) END AS log_return
    FROM (SELECT symbol, ts, close FROM bars)
    WINDOW bar_order AS (PARTITION BY symbol ORDER BY ts)
),
vol AS (
    SELECT symbol, ts, log_return,
        CASE WHEN count(log_return) OVER roll = $roll_vol_window
             -- list_stddev_samp over the window's values in time order: the windowed
             -- stddev_samp combines partial sums in an order that depends on the partition's
             -- size, which would break day-by-day == full-history in the last bit.
             THEN list_stddev_samp(list(log_return) OVER roll) * sqrt($bars_per_year) END AS roll_vol
    FROM returns
    WHERE ts >= $window_start - $roll_span
    WINDOW roll AS (PARTITION BY symbol ORDER BY ts RANGE BETWEEN $roll_span PRECEDING AND CURRENT ROW)
),
-- The last bar of each UTC day (its end is midnight): the reference of the next day's cum_return.
day_reference AS (
    SELECT symbol, ts + $interval AS day, close FROM bars WHERE ts + $interval = date_trunc('day', ts + $interval)
)
SELECT
    b.symbol, b.ts, b.open, b.high, b.low, b.close, b.volume, b.quote_volume,
    b.n_source, CAST($n_expected AS INTEGER) AS n_expected, b.n_source = $n_expected AS is_complete,
    v.log_return, b.close / d.close - 1 AS cum_return, v.roll_vol,
    array_to_string(list_filter($providers, lambda p, i: (b.provider_bits >> (i - 1)) & 1 = 1), ',') AS provider_mix
FROM bars AS b
JOIN vol AS v USING (symbol, ts)
LEFT JOIN day_reference AS d ON d.symbol = b.symbol AND d.day = date_trunc('day', b.ts)
WHERE b.ts >= $window_start AND b.ts < $window_end
