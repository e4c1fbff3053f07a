-- check: factors_inputs_exist
-- asset: factors
-- day_of: ts
-- severity: ERROR
-- description: No factor at a bar whose inputs do not exist yet: every factor row stands on a bars_{feature_interval} row of the same symbol and ts; mom_<w> (and mom_<w>_orth) also on the bars t - 1 and t - 1 - w, and reversal (and reversal_orth) on the bar t - 1, of the {feature_interval} grid.
WITH bar AS (SELECT CAST('{feature_interval}' AS INTERVAL) AS step),
f AS (
    SELECT symbol, ts, factor_name,
           TRY_CAST(regexp_extract(factor_name, '^mom_([0-9]+)', 1) AS INTEGER) AS w,
           factor_name IN ('reversal', 'reversal_orth') AS needs_previous
    FROM {{ ref('factors') }}
    WHERE ts >= $window_start AND ts < $window_end
),
b AS (SELECT symbol, ts FROM {{ ref('bars_{feature_interval}') }})
SELECT f.symbol, f.ts, f.factor_name
FROM f, bar
WHERE NOT EXISTS (SELECT 1 FROM b WHERE b.symbol = f.symbol AND b.ts = f.ts)
   OR ((f.w IS NOT NULL OR f.needs_previous)
       AND NOT EXISTS (SELECT 1 FROM b WHERE b.symbol = f.symbol AND b.ts = f.ts - bar.step))
   OR (f.w IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM b WHERE b.symbol = f.symbol AND b.ts = f.ts - (1 + f.w) * bar.step))
