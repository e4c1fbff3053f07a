-- check: bars_{interval}_unique_key
-- asset: bars_{interval}
-- day_of: ts
-- for_each: bar_intervals
-- severity: ERROR
-- description: (symbol, ts) is unique in bars_{interval}.
SELECT symbol, ts, count(*) AS copies
FROM {{ ref('bars_{interval}') }}
WHERE ts >= $window_start AND ts < $window_end
GROUP BY ALL
HAVING count(*) > 1
