"""A single-run range tells the truth per partition: each day's own figures, each day's check result."""

import dagster as dg
import duckdb
import pytest

from quant_assets_tests.conftest import all_defs

DAYS = ["2024-03-04", "2024-03-05", "2024-03-06"]


@pytest.fixture
def range_run(make_settings, defs_for):
    settings = make_settings(env={"QUANT_BAR_INTERVALS": "1h,1d", "QUANT_START_DATE": DAYS[0]})  # the origin
    defs = defs_for(settings)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        all_defs(defs),
        instance=instance,
        resources=defs.resources,
        selection=dg.AssetSelection.assets("raw_candles", "bars_1h", "bar_gaps", "features_1h", "features_1d",
                                           "bars_1d", "signals", "factors", "backtest_folds", "backtest_pnl"),
        tags={"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[-1]},
    )
    assert result.success
    return settings, instance, result


def _latest(instance: dg.DagsterInstance, asset: str, day: str) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[day]), limit=1
    ).records
    return records[0].asset_materialization.metadata


def test_each_partition_holds_its_own_row_count_and_hash(range_run):
    settings, instance, _ = range_run
    conn = duckdb.connect(str(settings.duckdb_path), read_only=True)
    for table in ("raw_candles", "bars_1h", "signals", "backtest_pnl"):
        for day in DAYS:
            meta = _latest(instance, table, day)
            rows = conn.execute(
                f'SELECT count(*) FROM "{table}" WHERE CAST(ts AS DATE) = CAST(? AS DATE)', [day]
            ).fetchone()[0]
            assert meta["dagster/row_count"].value == rows, (table, day)
            stored = conn.execute(
                "SELECT content_hash FROM partition_hashes WHERE table_name = ? AND partition_key = ?", [table, day]
            ).fetchone()[0]
            assert meta["content_hash"].value == stored
            assert "partitions" not in meta and "window" not in meta, "no range figure under a per-day name"
            assert meta["run_window"].value == f"{DAYS[0]}..{DAYS[-1]} (3 days)"
    one_day = conn.execute("SELECT count(*) FROM bars_1h WHERE CAST(ts AS DATE) = ?", [DAYS[1]]).fetchone()[0]
    assert one_day == 3 * 24, "three symbols of hourly bars: a day's count, not the range's"


def test_per_day_figures_are_that_days_and_the_equity_curve_is_a_picture(range_run):
    settings, instance, _ = range_run
    conn = duckdb.connect(str(settings.duckdb_path), read_only=True)
    for day in DAYS:
        completeness = conn.execute(
            "SELECT sum(n_source) / sum(n_expected) FROM bars_1h WHERE CAST(ts AS DATE) = ?", [day]
        ).fetchone()[0]
        assert _latest(instance, "bars_1h", day)["completeness"].value == pytest.approx(completeness)
    pnl = _latest(instance, "backtest_pnl", DAYS[-1])
    assert "data:image/png;base64," in pnl["equity_curve"].value
    net = conn.execute(
        "SELECT exp(sum(ln(1 + net_return))) - 1 FROM backtest_pnl WHERE CAST(ts AS DATE) = ? "
        "AND cost_mode = 'realistic'", [DAYS[-1]]
    ).fetchone()[0]
    assert pnl["net_return_day"].value == pytest.approx(net)
    first, last = (_latest(instance, "backtest_pnl", d)["equity_to_date"].value for d in (DAYS[1], DAYS[-1]))
    assert first != last, "equity to date differs by day"
    newest, older = _latest(instance, "bars_1h", DAYS[-1]), _latest(instance, "bars_1h", DAYS[0])
    assert "per_day" in newest and "data:image/png;base64," in newest["completeness_over_days"].value
    assert "per_day" not in older and "completeness_over_days" not in older, "the run's views are not a day's"
    assert older["run_views_on"].value == newest["run_views_on"].value == DAYS[-1]


def test_the_assets_latest_materialization_shows_the_runs_views(range_run):
    _, instance, _ = range_run
    for asset in ("bars_1h", "signals", "backtest_pnl"):
        latest = instance.fetch_materializations(dg.AssetKey(asset), limit=1).records[0]
        assert latest.partition_key == DAYS[-1]
        assert "per_day" in latest.asset_materialization.metadata, asset


def test_check_results_are_attached_to_each_partition_and_none_to_the_range(range_run):
    _, instance, result = range_run
    evaluations = result.get_asset_check_evaluations()
    key = dg.AssetCheckKey(dg.AssetKey("bars_1h"), "bars_1h_valid_ohlc")
    mine = [e for e in evaluations if e.asset_check_key == key]
    assert sorted(e.partition for e in mine) == DAYS
    assert all(e.passed and e.target_materialization_data is not None for e in mine)
    assert not [e for e in evaluations if e.partition is None], "no extra unpartitioned result per range"
    infos = instance.event_log_storage.get_asset_check_partition_info([key])
    status = {i.partition_key: (i.latest_execution_status.value, i.is_current) for i in infos}
    assert status == {day: ("SUCCEEDED", True) for day in DAYS}


def test_a_day_run_alone_has_the_hashes_it_had_in_the_range(range_run, defs_for):
    settings, instance, _ = range_run
    conn = duckdb.connect(str(settings.duckdb_path), read_only=True)
    query = "SELECT table_name, content_hash, params_hash FROM partition_hashes WHERE partition_key = ? ORDER BY 1"
    in_range = conn.execute(query, [DAYS[1]]).fetchall()
    conn.close()
    defs = defs_for(settings)
    assert dg.materialize(all_defs(defs), instance=instance, resources=defs.resources, partition_key=DAYS[1],
                          selection=dg.AssetSelection.assets("bars_1h", "bar_gaps")).success
    conn = duckdb.connect(str(settings.duckdb_path), read_only=True)
    assert conn.execute(query, [DAYS[1]]).fetchall() == in_range
