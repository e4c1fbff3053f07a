"""The home's pooled event log stores exactly what Dagster's SQLite event log stores, in the same
files: a home it wrote reads the same under Dagster's own class, and the other way round."""

from pathlib import Path

import dagster as dg

from quant_assets.lib.event_storage import OPEN_SHARDS, PooledSqliteEventLogStorage
from quant_assets.lib.instance import instance_yaml

DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-04")


@dg.asset(partitions_def=DAYS)
def numbers() -> int:
    return 1


@dg.asset_check(asset=numbers, partitions_def=DAYS)
def numbers_positive() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


def _run(instance: dg.DagsterInstance, day: str) -> None:
    assert dg.materialize([numbers, numbers_positive], instance=instance, partition_key=day).success


def _seen(instance: dg.DagsterInstance) -> tuple[list[str], list[str]]:
    records = instance.fetch_materializations(dg.AssetKey("numbers"), limit=100).records
    checks = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("numbers"), "numbers_positive"), limit=100
    )
    return sorted(r.partition_key for r in records), sorted(c.partition for c in checks)


def test_a_home_written_by_the_pooled_log_reads_the_same_under_dagsters_own(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(instance_yaml(home))
    with dg.DagsterInstance.from_config(str(home)) as pooled:
        assert isinstance(pooled.event_log_storage, PooledSqliteEventLogStorage)
        _run(pooled, "2024-01-01")
        _run(pooled, "2024-01-02")
        written = _seen(pooled)
    assert written == (["2024-01-01", "2024-01-02"], ["2024-01-01", "2024-01-02"])

    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    for shard in (home / "history").rglob("*.db"):  # the same files, under Dagster's default storage
        target = plain / shard.relative_to(home)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(shard.read_bytes())
    with dg.DagsterInstance.from_config(str(plain)) as default:
        assert type(default.event_log_storage).__name__ == "SqliteEventLogStorage"
        assert _seen(default) == written
        _run(default, "2024-01-03")
    for shard in (plain / "history").rglob("*.db"):
        (home / shard.relative_to(plain)).write_bytes(shard.read_bytes())
    with dg.DagsterInstance.from_config(str(home)) as pooled:
        assert _seen(pooled) == (["2024-01-01", "2024-01-02", "2024-01-03"],) * 2


def test_the_pool_keeps_a_bounded_number_of_shards_open_and_survives_a_wipe(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(instance_yaml(home))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for _ in range(OPEN_SHARDS + 3):  # a shard per run
            _run(instance, "2024-01-01")
        assert len(instance.event_log_storage._engines) <= OPEN_SHARDS
        assert len(_seen(instance)[0]) == OPEN_SHARDS + 3
        instance.wipe()
        assert _seen(instance) == ([], [])
        _run(instance, "2024-01-02")
        assert _seen(instance) == (["2024-01-02"], ["2024-01-02"])
