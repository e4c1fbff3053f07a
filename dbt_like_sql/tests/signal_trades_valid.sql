-- check: signal_trades_valid
-- asset: signal_trades
-- day_of: exit_ts
-- severity: ERROR
-- description: Round trips exiting in the window: (signal_name, symbol, entry_ts, exit_ts) unique; side long or short; quantity in (0, 1]; exit after entry and bars_held >= 1; return = side * (exit_price / entry_price - 1) within 1e-12; entry and exit on bars of the symbol at those bars' opens, the exit a bar of the window (a round trip is stored in the partition of its exit, never before its exit bar exists).
WITH t AS (
    SELECT *, count(*) OVER (PARTITION BY signal_name, symbol, entry_ts, exit_ts) AS n
    FROM {{ ref('signal_trades') }}
    WHERE exit_ts >= $window_start AND exit_ts < $window_end
), judged AS (
    SELECT t.signal_name, t.symbol, t.side, t.quantity, t.entry_ts, t.exit_ts, t.bars_held, t."return",
           CASE
               WHEN t.n > 1 THEN 'duplicate (signal_name, symbol, entry_ts, exit_ts)'
               WHEN t.side IS NULL OR t.side NOT IN ('long', 'short') THEN 'side not long or short'
               WHEN t.quantity IS NULL OR NOT (t.quantity > 0 AND t.quantity <= 1) THEN 'quantity outside (0, 1]'
               WHEN t.entry_ts IS NULL OR t.exit_ts IS NULL OR t.exit_ts <= t.entry_ts THEN 'exit not after entry'
               WHEN t.bars_held IS NULL OR t.bars_held < 1 THEN 'bars_held < 1'
               WHEN t."return" IS NULL OR abs(t."return" - CASE t.side WHEN 'long' THEN 1 ELSE -1 END
                                                  * (t.exit_price / t.entry_price - 1)) > 1e-12
                   THEN 'return differs from side * (exit / entry - 1)'
               WHEN e.ts IS NULL OR e.open IS DISTINCT FROM t.entry_price THEN 'entry not at a bar''s open'
               WHEN x.ts IS NULL OR x.open IS DISTINCT FROM t.exit_price THEN 'exit not at a bar''s open in the window'
           END AS problem
    FROM t
    LEFT JOIN {{ ref('bars_{feature_interval}') }} AS e ON e.symbol = t.symbol AND e.ts = t.entry_ts
    LEFT JOIN {{ ref('bars_{feature_interval}') }} AS x
           ON x.symbol = t.symbol AND x.ts = t.exit_ts AND x.ts >= $window_start AND x.ts < $window_end
)
SELECT * FROM judged WHERE problem IS NOT NULL
