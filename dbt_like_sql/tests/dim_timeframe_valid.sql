-- check: dim_timeframe_valid
-- asset: dim_timeframe
-- severity: ERROR
-- description: Timeframe names are unique, lengths positive, exactly one is the base interval, and every configured bar interval is listed and a whole multiple of the base.
SELECT name, 'duplicate name' AS problem FROM {{ ref('dim_timeframe') }} GROUP BY name HAVING count(*) > 1
UNION ALL
SELECT name, 'non-positive length' FROM {{ ref('dim_timeframe') }} WHERE seconds <= 0
UNION ALL
SELECT CAST(count(*) AS VARCHAR), 'base interval rows <> 1' FROM {{ ref('dim_timeframe') }} WHERE is_base HAVING count(*) <> 1
UNION ALL
SELECT i.name, 'configured bar interval missing or not a multiple of the base'
FROM (SELECT unnest($bar_intervals) AS name) AS i
LEFT JOIN {{ ref('dim_timeframe') }} AS t USING (name)
WHERE t.name IS NULL OR t.seconds % ($base_minutes * 60) <> 0
