-- check: backtest_manifest_complete
-- asset: backtest_manifest
-- day_of: fold_start
-- severity: ERROR
-- description: Every partition in the window has a manifest with a commit, a config hash, both cost modes' experiment ids and a manifest hash; every cost mode traded that day is in experiment_folds under its experiment with this manifest; the manifest recorded its input partitions.
WITH days AS (
    SELECT unnest(generate_series($window_start, $window_end - INTERVAL 1 DAY, INTERVAL 1 DAY)) AS fold_start
)
SELECT d.fold_start, m.partition_key, m.git_commit, m.config_hash, f.cost_mode
FROM days AS d
LEFT JOIN {{ ref('backtest_manifest') }} AS m USING (fold_start)
LEFT JOIN {{ ref('backtest_folds') }} AS f ON f.day = d.fold_start AND f.status = 'OK'
WHERE m.partition_key IS NULL OR m.git_commit = '' OR length(m.config_hash) <> 64
   OR length(m.manifest_hash) <> 64
   OR json_extract_string(m.experiment_ids, '$.clean') IS NULL
   OR json_extract_string(m.experiment_ids, '$.realistic') IS NULL
   OR (f.cost_mode IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM experiment_folds AS e
        WHERE e.day = d.fold_start AND e.cost_mode = f.cost_mode AND e.manifest_hash = m.manifest_hash
          AND e.experiment_id = json_extract_string(m.experiment_ids, '$.' || f.cost_mode)))
   OR (f.cost_mode IS NOT NULL AND NOT EXISTS (SELECT 1 FROM manifest_inputs AS i WHERE i.day = d.fold_start))
