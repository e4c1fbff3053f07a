-- check: raw_trades_valid
-- asset: raw_trades
-- day_of: ts
-- requires: trades
-- severity: ERROR
-- description: Every stored trade has a finite positive price and amount.
SELECT symbol, ts, trade_id, price, amount
FROM {{ ref('raw_trades') }}
WHERE ts >= $window_start AND ts < $window_end
  AND NOT (isfinite(price) AND price > 0 AND isfinite(amount) AND amount > 0)
