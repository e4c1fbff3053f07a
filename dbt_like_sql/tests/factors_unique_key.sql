-- check: factors_unique_key
-- asset: factors
-- day_of: ts
-- severity: ERROR
-- description: One row per (symbol, ts, factor_name) in the window.
SELECT symbol, ts, factor_name, count(*) AS n
FROM {{ ref('factors') }}
WHERE ts >= $window_start AND ts < $window_end
GROUP BY symbol, ts, factor_name
HAVING count(*) > 1
