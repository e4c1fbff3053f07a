-- check: factors_zscored
-- asset: factors
-- day_of: ts
-- severity: ERROR
-- description: Every (ts, factor_name) is a cross-sectional z-score: at least 3 symbols, mean 0 and sample std (ddof 1) 1, each within 1e-9 (rounding of a z-score of a few symbols is ~1e-15).
SELECT ts, factor_name, count(*) AS n, avg(value) AS mean, stddev_samp(value) AS std
FROM {{ ref('factors') }}
WHERE ts >= $window_start AND ts < $window_end
GROUP BY ts, factor_name
HAVING count(*) < 3 OR abs(avg(value)) > 1e-9 OR abs(stddev_samp(value) - 1) > 1e-9
   OR stddev_samp(value) IS NULL
