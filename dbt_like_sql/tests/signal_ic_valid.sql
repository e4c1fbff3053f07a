-- check: signal_ic_valid
-- asset: signal_ic
-- severity: ERROR
-- description: One row per signal and day, IC and rank IC within [-1, 1] (or NULL when undefined; the bounds allow 1e-9 absolute, because a correlation computed in floating point can land a few ulps outside [-1, 1] and that is rounding, not a defect), and a pair count that never exceeds the signals of that day.
SELECT i.day, i.signal_name, i.ic, i.rank_ic, i.n_obs, 'out of range or duplicated' AS problem
FROM {{ ref('signal_ic') }} AS i
WHERE i.day >= $window_start AND i.day < $window_end
  AND (NOT (coalesce(i.ic, 0) BETWEEN -1 - 1e-9 AND 1 + 1e-9)
       OR NOT (coalesce(i.rank_ic, 0) BETWEEN -1 - 1e-9 AND 1 + 1e-9) OR i.n_obs < 0
       OR (SELECT count(*) FROM {{ ref('signal_ic') }} AS j WHERE j.day = i.day AND j.signal_name = i.signal_name) > 1
       OR i.n_obs > (SELECT count(*) FROM {{ ref('signals') }} AS s
                     WHERE s.signal_name = i.signal_name AND s.ts >= i.day AND s.ts < i.day + INTERVAL 1 DAY))
