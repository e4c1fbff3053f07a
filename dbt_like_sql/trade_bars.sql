-- asset: trade_bars_{interval}
-- group: bars
-- description: OHLCV bars of {interval} built from individual trades (raw_trades), left-labelled [ts, ts + {interval}) in UTC: open and close are the first and last trade prices (by time, then trade id), high and low the extremes, volume the summed amount (base units), quote_volume the summed price x amount (both summed in trade order, exact run after run), n_trades the trade count, vwap = quote_volume / volume. A bar with no trade is absent.
-- for_each: bar_intervals
-- requires: trades
-- order_by: symbol, ts
-- kinds: duckdb, sql
SELECT
    symbol,
    time_bucket($interval, ts) AS ts,
    arg_min(price, (ts, trade_id)) AS open,
    max(price) AS high,
    min(price) AS low,
    arg_max(price, (ts, trade_id)) AS close,
    -- summed in trade order: DuckDB's parallel sum() of DOUBLEs rounds differently run to run
    sum(amount ORDER BY ts, trade_id) AS volume,
    sum(price * amount ORDER BY ts, trade_id) AS quote_volume,
    CAST(count(*) AS INTEGER) AS n_trades,
    sum(price * amount ORDER BY ts, trade_id) / sum(amount ORDER BY ts, trade_id) AS vwap
FROM {{ ref('raw_trades') }}
WHERE ts >= $window_start AND ts < $window_end
GROUP BY symbol, time_bucket($interval, ts)
