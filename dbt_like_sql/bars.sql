-- asset: bars_{interval}
-- group: bars
-- description: OHLCV bars of {interval}, left-labelled [ts, ts + {interval}) in UTC, aggregated from raw_candles. Missing source candles are counted (n_source vs n_expected), never filled. log_return is ln(close / previous close); the partition's first bar uses the last close before the window, so day-by-day builds equal a full-history build.
-- for_each: bar_intervals
-- kinds: duckdb, sql
WITH source AS (
    SELECT symbol, ts, open, high, low, close, volume, quote_volume, provider
    FROM {{ ref('raw_candles') }}
    WHERE ts >= $window_start AND ts < $window_end
),
bars AS (
    SELECT
        symbol,
        time_bucket($interval, ts) AS ts,
        arg_min(open, ts) AS open,
        max(high) AS high,
        min(low) AS low,
        arg_max(close, ts) AS close,
        sum(volume) AS volume,
        sum(quote_volume) AS quote_volume,
        CAST(count(*) AS INTEGER) AS n_source,
        CAST($n_expected AS INTEGER) AS n_expected,
        string_agg(DISTINCT provider, ',' ORDER BY provider) AS provider_mix
    FROM source
    GROUP BY symbol, time_bucket($interval, ts)
),
previous_close AS (
    SELECT symbol, arg_max(close, ts) AS close
    FROM {{ ref('raw_candles') }}
    WHERE ts < $window_start
    GROUP BY symbol
)
SELECT
    b.symbol, b.ts, b.open, b.high, b.low, b.close, b.volume, b.quote_volume,
    b.n_source, b.n_expected, b.n_source = b.n_expected AS is_complete,
    ln(b.close / coalesce(lag(b.close) OVER (PARTITION BY b.symbol ORDER BY b.ts), p.close)) AS log_return,
    b.provider_mix
FROM bars AS b
LEFT JOIN previous_close AS p USING (symbol)
ORDER BY b.symbol, b.ts
