-- asset: bars_{interval}
-- group: bars
-- description: OHLCV bars of {interval} from raw_candles, left-labelled [ts, ts + {interval}) in UTC. n_source counts the source candles in the bar and n_expected how many there should be; a missing bar is absent, never filled. log_return = ln(close / previous bar's close); cum_return = close / the symbol's first bar close - 1; roll_vol = sample std of the last roll_vol_window log returns (bars ts - (window-1) x {interval} .. ts, all present, else NULL) x sqrt(bars per 365-day year). Returns and volatility read their lookback from earlier partitions, so day-by-day builds equal a full-history build.
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
        string_agg(DISTINCT provider, ',' ORDER BY provider) AS provider_mix
    FROM source
    GROUP BY symbol, time_bucket($interval, ts)
),
previous_close AS (
    SELECT symbol, arg_max(close, ts) AS close
    FROM {{ ref('raw_candles') }}
    WHERE ts < $lookback_start
    GROUP BY symbol
),
first_bar_close AS (
    SELECT r.symbol, arg_max(r.close, r.ts) AS close
    FROM {{ ref('raw_candles') }} AS r
    JOIN (
        SELECT symbol, time_bucket($interval, min(ts)) AS first_bucket
        FROM {{ ref('raw_candles') }}
        GROUP BY symbol
    ) AS f ON r.symbol = f.symbol AND r.ts >= f.first_bucket AND r.ts < f.first_bucket + $interval
    GROUP BY r.symbol
),
with_returns AS (
    SELECT b.*, ln(b.close / coalesce(lag(b.close) OVER (PARTITION BY b.symbol ORDER BY b.ts), p.close)) AS log_return
    FROM bars AS b
    LEFT JOIN previous_close AS p USING (symbol)
),
with_vol AS (
    SELECT *,
        count(log_return) OVER roll AS n_roll,
        stddev_samp(log_return) OVER roll AS std_roll
    FROM with_returns
    WINDOW roll AS (PARTITION BY symbol ORDER BY ts RANGE BETWEEN $roll_span PRECEDING AND CURRENT ROW)
)
SELECT
    v.symbol, v.ts, v.open, v.high, v.low, v.close, v.volume, v.quote_volume,
    v.n_source, CAST($n_expected AS INTEGER) AS n_expected, v.n_source = $n_expected AS is_complete,
    v.log_return,
    v.close / f.close - 1 AS cum_return,
    CASE WHEN v.n_roll = $roll_vol_window THEN v.std_roll * sqrt($bars_per_year) END AS roll_vol,
    v.provider_mix
FROM with_vol AS v
LEFT JOIN first_bar_close AS f USING (symbol)
WHERE v.ts >= $window_start AND v.ts < $window_end
ORDER BY v.symbol, v.ts
