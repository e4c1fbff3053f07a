-- check: features_{feature_interval}_finite
-- asset: features_{feature_interval}
-- severity: ERROR
-- description: Every feature value is either NULL (before its warm-up) or finite, and RSI lies in [0, 100].
WITH window_rows AS (
    SELECT * FROM {{ ref('features_{feature_interval}') }} WHERE ts >= $window_start AND ts < $window_end
),
healthy AS (
    SELECT * FROM window_rows
    WHERE (COLUMNS(* EXCLUDE (symbol, ts)) IS NULL OR isfinite(COLUMNS(* EXCLUDE (symbol, ts))))
      AND (COLUMNS('^rsi_') IS NULL OR COLUMNS('^rsi_') BETWEEN 0 AND 100)
)
SELECT * FROM window_rows EXCEPT SELECT * FROM healthy
