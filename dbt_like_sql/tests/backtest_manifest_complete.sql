-- check: backtest_manifest_complete
-- asset: backtest_manifest
-- severity: ERROR
-- description: Every partition in the window has a manifest with a commit, a config hash, an experiment id and a manifest hash, and is listed in the experiment registry.
WITH days AS (
    SELECT unnest(generate_series($window_start, $window_end - INTERVAL 1 DAY, INTERVAL 1 DAY)) AS fold_start
)
SELECT d.fold_start, m.partition_key, m.git_commit, m.config_hash
FROM days AS d
LEFT JOIN {{ ref('backtest_manifest') }} AS m USING (fold_start)
WHERE m.partition_key IS NULL OR m.git_commit = '' OR length(m.config_hash) <> 64
   OR length(m.manifest_hash) <> 64
   OR NOT EXISTS (
        SELECT 1 FROM experiment_registry AS r
        WHERE r.fold = m.partition_key AND r.manifest_hash = m.manifest_hash)
