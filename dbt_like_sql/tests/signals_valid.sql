-- check: signals_valid
-- asset: signals
-- day_of: ts
-- severity: ERROR
-- description: Every signal value is a known target position in [-1, 1]; (signal_name, symbol, ts) is unique; the signal is one of the catalogue (table signal_catalogue) and stands on a features row of the same symbol and bar on which every feature column its rule reads exists (not NULL): no value without the data it was computed from, none during warm-up.
WITH s AS (
    SELECT *, count(*) OVER (PARTITION BY signal_name, symbol, ts) AS n
    FROM {{ ref('signals') }}
    WHERE ts >= $window_start AND ts < $window_end
), judged AS (
    SELECT s.signal_name, s.symbol, s.ts, s.value,
           CASE
               WHEN s.value IS NULL OR isnan(s.value) OR s.value < -1 OR s.value > 1 THEN 'value outside [-1, 1]'
               WHEN s.n > 1 THEN 'duplicate (signal_name, symbol, ts)'
               WHEN c.signal_name IS NULL THEN 'signal not in the catalogue'
               WHEN f.ts IS NULL THEN 'no features row'
               WHEN len(list_filter(c.inputs, lambda col: json_extract_string(to_json(f), '$.' || col) IS NULL)) > 0
                   THEN 'input NULL: ' || array_to_string(
                       list_filter(c.inputs, lambda col: json_extract_string(to_json(f), '$.' || col) IS NULL), ', ')
           END AS problem
    FROM s
    LEFT JOIN signal_catalogue AS c ON c.signal_name = s.signal_name
    LEFT JOIN {{ ref('features_{feature_interval}') }} AS f ON f.symbol = s.symbol AND f.ts = s.ts
)
SELECT * FROM judged WHERE problem IS NOT NULL
