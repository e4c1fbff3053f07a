-- check: signals_valid
-- asset: signals
-- severity: ERROR
-- description: Signal values are -1, 0 or +1, and every signal stands on a features row of the same symbol and bar (no signal without the data it was computed from).
SELECT s.signal_name, s.symbol, s.ts, s.value
FROM {{ ref('signals') }} AS s
WHERE s.ts >= $window_start AND s.ts < $window_end
  AND (s.value NOT IN (-1, 0, 1) OR NOT EXISTS (
        SELECT 1 FROM {{ ref('features_{feature_interval}') }} AS f WHERE f.symbol = s.symbol AND f.ts = s.ts))
