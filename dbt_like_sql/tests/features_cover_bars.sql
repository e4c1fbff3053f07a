-- check: features_{interval}_cover_bars
-- asset: features_{interval}
-- day_of: ts
-- severity: ERROR
-- for_each: bar_intervals
-- description: Every {interval} bar of the window has exactly one features row with the same close, and there is no features row without a bar.
WITH b AS (
    SELECT symbol, ts, close FROM {{ ref('bars_{interval}') }}
    WHERE ts >= $window_start AND ts < $window_end AND list_contains($symbols, symbol)
),
f AS (
    SELECT symbol, ts, close FROM {{ ref('features_{interval}') }}
    WHERE ts >= $window_start AND ts < $window_end
)
SELECT coalesce(b.symbol, f.symbol) AS symbol, coalesce(b.ts, f.ts) AS ts, b.close AS bar_close, f.close AS feature_close
FROM b FULL OUTER JOIN f ON b.symbol = f.symbol AND b.ts = f.ts
WHERE b.ts IS NULL OR f.ts IS NULL OR b.close IS DISTINCT FROM f.close
