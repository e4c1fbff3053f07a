-- asset: bars_{interval}
-- group: bars
-- description: OHLCV bars of {interval} from raw_candles, left-labelled [ts, ts + {interval}) in UTC. n_source counts the source candles in the bar and n_expected how many there should be; a missing bar is absent, never filled. log_return = ln(close / previous bar's close); cum_return = close / the symbol's first bar close - 1; provider_mix lists the providers of the bar's candles (comma-separated, alphabetical, with 'other' last for a provider not in the registry). roll_vol = sample std of the last roll_vol_window log returns (bars ts - (window-1) x {interval} .. ts, all present, else NULL) x sqrt(bars per 365-day year). Returns and volatility read their lookback from earlier partitions, so day-by-day builds equal a full-history build.
-- for_each: bar_intervals
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
        sum(volume) AS volume,
        sum(quote_volume) AS quote_volume,
        CAST(count(*) AS INTEGER) AS n_source,
        -- one bit per provider in $providers: exact and far cheaper than string_agg(DISTINCT)
        bit_or(1::UBIGINT << (coalesce(list_position($providers, provider), len($providers)) - 1)) AS provider_bits
    FROM source
    GROUP BY symbol, time_bucket($interval, ts)
),
previous_close AS (
    SELECT symbol, arg_max(close, ts) AS close FROM {{ ref('raw_candles') }} WHERE ts < $lookback_start GROUP BY symbol
),
first_bar_close AS (
    SELECT r.symbol, arg_max(r.close, r.ts) AS close
    FROM {{ ref('raw_candles') }} AS r
    JOIN (SELECT symbol, time_bucket($interval, min(ts)) AS first_bucket FROM {{ ref('raw_candles') }} GROUP BY symbol) AS f
      ON r.symbol = f.symbol AND r.ts >= f.first_bucket AND r.ts < f.first_bucket + $interval
    GROUP BY r.symbol
),
-- Windows run over (symbol, ts, close) only: sorting the narrow frame is cheaper than the wide one.
returns AS (
    SELECT c.symbol, c.ts, ln(c.close / coalesce(lag(c.close) OVER (PARTITION BY c.symbol ORDER BY c.ts), p.close)) AS log_return
    FROM (SELECT symbol, ts, close FROM bars) AS c
    LEFT JOIN previous_close AS p USING (symbol)
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
)
SELECT
    b.symbol, b.ts, b.open, b.high, b.low, b.close, b.volume, b.quote_volume,
    b.n_source, CAST($n_expected AS INTEGER) AS n_expected, b.n_source = $n_expected AS is_complete,
    v.log_return, b.close / f.close - 1 AS cum_return, v.roll_vol,
    array_to_string(list_filter($providers, lambda p, i: (b.provider_bits >> (i - 1)) & 1 = 1), ',') AS provider_mix
FROM bars AS b
JOIN vol AS v USING (symbol, ts)
LEFT JOIN first_bar_close AS f USING (symbol)
WHERE b.ts >= $window_start AND b.ts < $window_end
