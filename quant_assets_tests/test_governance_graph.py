"""Governance for real: the registry counts reproduced folds and trials and pins an immutable
manifest; two experiments one parameter apart differ in that parameter only; a sweep of 12 grid
points adds 12 trials; a changed upstream partition makes results stale and alerts; a dirty git
tree is recorded and warned in strict mode; no secret reaches a manifest, a registry row or the
metadata."""

import json
import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from quant_assets import cli
from quant_assets.definitions import build_definitions
from quant_assets.defs.governance.staleness import ALERT_KEY
from quant_assets.lib import sql_models
from quant_assets.quant.calendar import Window
from quant_assets.quant.experiments import canonical_hash, experiment_ids
from quant_assets.resources import provenance
from quant_assets_tests.conftest import all_defs
from quant_assets_tests.test_backtest_graph import (
    DAYS,
    QUIET,
    _partitioned,
    _run,
    _settings,
    _upstream,
)
from quant_assets_tests.test_reliability_canary import canaries, count_canaries  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow
BACKTEST = dg.AssetSelection.groups("backtests") | dg.AssetSelection.assets("backtest_manifest")
GOVERN = dg.AssetSelection.assets("reproducibility_runs")
REGISTER = dg.AssetSelection.assets("backtest_summary", "backtest_pbo", "experiment_registry")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Upstream, backtests and manifests over seven days, every fold verified, and registered."""
    settings = _settings(tmp_path_factory.mktemp("governance"))
    defs = build_definitions(settings)
    _run(defs, _upstream(defs), DAYS)
    _run(defs, (BACKTEST | GOVERN) & _partitioned(defs), DAYS)
    _run(defs, REGISTER, None)
    return settings


def _copy(built, root: Path, **extra):
    shutil.copytree(built.data_dir, root)
    return _settings(root, **extra)


def _registry(settings) -> dict[str, dict]:
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        cursor = conn.execute("SELECT * FROM experiment_registry")
        names = [d[0] for d in cursor.description]
        return {r[0]: dict(zip(names, r, strict=True)) for r in cursor.fetchall()}


def _trials(settings, mode="realistic") -> int:
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        return conn.execute("SELECT count(*) FROM backtest_trials WHERE cost_mode = ?", [mode]).fetchone()[0]


def _quant(monkeypatch, capsys, settings, *argv) -> tuple[int, str, str]:
    monkeypatch.setenv("QUANT_DATA_DIR", str(settings.data_dir))
    code = cli.main(["experiments", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_registry_counts_reproduced_folds_and_trials_and_pins_an_intact_manifest(built, monkeypatch, capsys):
    registry = _registry(built)
    ids = experiment_ids(built)
    assert set(registry) == set(ids.values()) and ids["clean"] != ids["realistic"]
    with duckdb.connect(str(built.duckdb_path), read_only=True) as conn:
        traded = conn.execute("SELECT count(*) FROM backtest_folds WHERE status = 'OK' AND cost_mode = 'realistic'"
                              ).fetchone()[0]
        strategies = conn.execute("SELECT max(candidates_tried) FROM backtest_folds").fetchone()[0]
        summary = conn.execute("SELECT dsr, pbo, n_trials FROM backtest_summary WHERE strategy = 'walk_forward' "
                               "AND cost_mode = 'realistic'").fetchone()
    row = registry[ids["realistic"]]
    assert row["folds"] == row["reproduced"] == traded >= 3 and row["status"] == "REPRODUCED"
    assert row["n_trials"] == strategies == summary[2]  # the DSR deflated by the registry's trials
    assert (row["dsr"], row["pbo"]) == summary[:2]
    document = json.loads(Path(row["manifest_path"]).read_text())
    digest = document.pop("manifest_hash")
    assert digest == row["manifest_hash"] == canonical_hash(document)
    assert document["metrics"]["dsr"] == row["dsr"] and document["seeds"] == {"bootstrap": 7, "simulator": 42}
    assert document["config"]["strategy"]["backtest"]["fee_bps"] == 10.0
    assert len(document["fold_manifests"]) == traded and "features_1h" in document["inputs"]
    assert not list(built.manifest_dir.glob("*.tmp"))  # written atomically: no temp file left

    code, out, _ = _quant(monkeypatch, capsys, built, "list")
    assert code == 0 and len(out.splitlines()) == 2 and all(" REPRODUCED " in line for line in out.splitlines())
    code, out, _ = _quant(monkeypatch, capsys, built, "show", ids["realistic"][:6])
    assert code == 0 and f"reproduced {traded}/{traded} folds (strict)" in out and f"({strategies} trials)" in out
    assert "strategy.backtest.fee_bps = 10.0" in out
    code, out, err = _quant(monkeypatch, capsys, built, "show", "feedbeef")
    assert code == 2 and out == "" and err.strip() == ("quant: error: no experiment 'feedbeef' in experiment_registry; "
                                                       "`quant experiments list` shows them")
    code, _, err = _quant(monkeypatch, capsys, built, "diff", "x; DROP TABLE alerts", ids["clean"])
    assert code == 2 and "is not an experiment id" in err and len(err.splitlines()) == 1


def test_one_parameter_apart_two_experiments_differ_in_that_parameter_only(built, tmp_path, monkeypatch, capsys):
    changed = _copy(built, tmp_path / "b", portfolio={"turnover_penalty": 0.002})
    defs = build_definitions(changed)
    _run(defs, (BACKTEST | GOVERN) & _partitioned(defs), DAYS)
    _run(defs, REGISTER, None)
    before, after = experiment_ids(built)["realistic"], experiment_ids(changed)["realistic"]
    assert before != after and set(_registry(changed)) >= {before, after}  # the first is kept
    code, out, _ = _quant(monkeypatch, capsys, changed, "diff", before, after)
    assert code == 0
    assert out.splitlines()[1:] == ["config strategy.portfolio.turnover_penalty: 0.00125 -> 0.002"]
    code, out, _ = _quant(monkeypatch, capsys, changed, "diff", before, before)
    assert out.splitlines()[1:] == ["no difference in configuration, code, packages or inputs"]


def test_a_sweep_of_twelve_grid_points_adds_twelve_trials(built, tmp_path):
    sweep = _copy(built, tmp_path / "c", portfolio={"objectives": ["mean_variance"], "modes": ["long_only"],
                                                    "risk_aversions": [float(x) for x in range(2, 14)]})
    before = {mode: _trials(sweep, mode) for mode in ("clean", "realistic")}
    defs = build_definitions(sweep)
    _run(defs, dg.AssetSelection.groups("backtests") & _partitioned(defs), DAYS[4:6])
    after = {mode: _trials(sweep, mode) for mode in ("clean", "realistic")}
    assert {m: after[m] - before[m] for m in after} == {"clean": 12, "realistic": 12}
    _run(defs, dg.AssetSelection.groups("backtests") & _partitioned(defs), DAYS[6:])
    assert {mode: _trials(sweep, mode) for mode in ("clean", "realistic")} == after  # tried again: not new


def test_a_changed_upstream_partition_makes_results_stale_and_alerts_naming_them(built, tmp_path):
    stale = _copy(built, tmp_path / "d")
    with duckdb.connect(str(stale.duckdb_path)) as conn:
        conn.execute("UPDATE bars_1h SET close = close * 1.001 WHERE ts = ?::TIMESTAMP + INTERVAL 7 HOUR "
                     "AND symbol = 'SOL/USDT'", [DAYS[3]])
    defs = build_definitions(stale)
    _run(defs, dg.AssetSelection.assets("features_1h"), DAYS[3:4])  # re-materialized with other content
    with duckdb.connect(str(stale.duckdb_path), read_only=True) as conn:
        marked = conn.execute("SELECT DISTINCT table_name, input_partition FROM manifest_staleness").fetchall()
        manifests = conn.execute("SELECT count(*) FROM backtest_manifest").fetchone()[0]
    assert marked == [("features_1h", DAYS[3])] and manifests == len(DAYS)  # marked, none deleted

    sensor = next(s for s in defs.sensors if s.name == "stale_results_sensor")
    with dg.instance_for_test() as instance:
        sensor(dg.build_sensor_context(instance=instance, definitions=defs))
    with duckdb.connect(str(stale.duckdb_path), read_only=True) as conn:
        alert = conn.execute("SELECT severity, status, message FROM alerts WHERE alert_key = ?", [ALERT_KEY]).fetchone()
    ids = experiment_ids(stale)
    assert alert[:2] == ("WARN", "OPEN")
    assert alert[2].startswith(f"stale backtest results: features_1h {DAYS[3]} changed since its manifest recorded it")
    assert f"{ids['realistic']} (realistic)" in alert[2] and f"{ids['clean']} (clean)" in alert[2]
    _run(defs, REGISTER, None)
    row = _registry(stale)[ids["realistic"]]
    assert row["status"] == "STALE" and row["stale_days"] > 0


def _dirty_checkout(root: Path) -> Path:
    def git(*args):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    root.mkdir()
    git("init", "-q")
    (root / "model.py").write_text("ALPHA = 1\n")
    git("add", "model.py")
    git("-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-qm", "first")
    (root / "model.py").write_text("ALPHA = 2\n")  # an uncommitted edit
    return root


def test_a_dirty_git_tree_is_recorded_and_warned_in_strict_mode(built, tmp_path, monkeypatch):
    checkout = _dirty_checkout(tmp_path / "checkout")
    real = provenance.git_state
    monkeypatch.setattr(provenance, "git_state", lambda: real(checkout))  # this checkout, not the project's
    settings = _copy(built, tmp_path / "e")
    defs = build_definitions(settings)
    result = _run(defs, dg.AssetSelection.assets("backtest_manifest"), DAYS[5:6])
    assert result.success
    warned = [e for e in result.get_asset_check_evaluations() if e.check_name == "manifest_code_clean"]
    assert [e.passed for e in warned] == [False] and warned[0].severity == dg.AssetCheckSeverity.WARN
    assert "written from a git tree dirty" in warned[0].metadata["reason"].value
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        dirty, document = conn.execute("SELECT git_dirty, manifest_json FROM backtest_manifest WHERE partition_key = ?",
                                       [DAYS[5]]).fetchone()
    assert dirty is True and json.loads(document)["git"]["dirty"] is True
    relaxed = type(settings)(**{**settings.__dict__,
                                "governance": type(settings.governance)(reproducibility="warn")})
    result = _run(build_definitions(relaxed), dg.AssetSelection.assets("backtest_manifest"), DAYS[5:6])
    assert [e.passed for e in result.get_asset_check_evaluations() if e.check_name == "manifest_code_clean"] == [True]


def test_no_secret_reaches_a_manifest_a_registry_row_or_the_metadata(built, tmp_path, canaries):  # noqa: F811
    settings = _copy(built, tmp_path / "f")
    defs = build_definitions(settings)
    window = {"dagster/asset_partition_range_start": DAYS[4], "dagster/asset_partition_range_end": DAYS[6]}
    with dg.instance_for_test() as instance:
        for selection, tags in (((BACKTEST | GOVERN) & _partitioned(defs), window), (REGISTER, {})):
            assert dg.materialize(all_defs(defs), instance=instance, resources=defs.resources, selection=selection,
                                  tags=tags, run_config=QUIET).success
        events = "\n".join(dg.serialize_value(e) for run in instance.get_runs() for e in instance.all_logs(run.run_id))
    files = "\n".join(p.read_text() for p in settings.manifest_dir.glob("*.json"))
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        tables = "\n".join(str(r) for name in ("experiment_registry", "experiment_folds", "backtest_manifest",
                                               "manifest_inputs", "reproducibility_runs", "backtest_trials")
                           for r in conn.execute(f'SELECT * FROM "{name}"').fetchall())
    assert "metrics" in files and "experiment_id_realistic" in events and tables
    found = {name: count_canaries(text, canaries) for name, text in
             {"manifests": files, "tables": tables, "events": events}.items()}
    assert found == {"manifests": 0, "tables": 0, "events": 0}


def _sql_tests(settings):
    """(test file, rendered SQL, refs) of every set-based SQL test (header ``day_of``)."""
    for path in sorted((sql_models.SQL_DIR / "tests").glob("*.sql")):
        parsed = sql_models.parse_file(path, sql_models.TEST_KEYS, ("check", "asset", "severity", "description"))
        for test in sql_models.expand(parsed, settings):
            if "day_of" in test.header:
                yield test, *sql_models.render(test, None)


def test_a_set_based_sql_test_gives_each_day_what_running_it_on_that_day_alone_gives(built, tmp_path):
    """One query over the range, grouped by day, equals the test run day by day: the same
    verdict and failing-row count on every day, on data broken in a different way on each day."""
    settings = _copy(built, tmp_path / "broken")
    _run(build_definitions(settings), dg.AssetSelection.assets("bar_gaps"), DAYS)  # not upstream of backtests
    day = [datetime.fromisoformat(d) for d in DAYS]
    hour = timedelta(hours=1)
    with duckdb.connect(str(settings.duckdb_path)) as conn:
        feature = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'features_1h' "
            "AND data_type = 'DOUBLE' AND column_name NOT IN ('open', 'high', 'low', 'close', 'volume') LIMIT 1"
        ).fetchone()[0]
        for sql, params in [
            ("INSERT INTO bars_1h SELECT * FROM bars_1h WHERE symbol = 'SOL/USDT' AND ts = ?", [day[0] + 5 * hour]),
            ("UPDATE bars_1h SET high = low / 2 WHERE symbol = 'BTC/USDT' AND ts >= ? AND ts < ?", [day[1], day[1] + 2 * hour]),
            ("DELETE FROM bars_1h WHERE symbol = 'ETH/USDT' AND ts >= ? AND ts < ?", [day[2] + 12 * hour, day[3]]),
            ("UPDATE bars_1h SET log_return = 3.0 WHERE symbol = 'BNB/USDT' AND ts = ?", [day[3] + 10 * hour]),
            ("DELETE FROM raw_candles WHERE symbol = 'XRP/USDT' AND ts >= ? AND ts < ?", [day[4] + 10 * hour, day[4] + 11 * hour]),
            ("UPDATE lookback_status SET complete = false WHERE asset = 'bars_1h' AND partition_key = ?", [DAYS[5]]),
            (f'UPDATE features_1h SET "{feature}" = \'NaN\' WHERE symbol = \'BTC/USDT\' AND ts = ?', [day[6] + 3 * hour]),
            ("UPDATE factors SET value = NULL WHERE ts = (SELECT min(ts) FROM factors WHERE ts >= ?)", [day[5]]),
        ]:
            conn.execute(sql, params)
        window = Window(day[0], day[-1] + timedelta(days=1))
        tables = {r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        compared, failing_days = [], 0
        for test, sql, refs in _sql_tests(settings):
            if not {*refs, test.header["asset"]} <= tables:
                continue  # an asset this graph does not build (research, trades)
            asset = test.header["asset"]
            ranged = sql_models.evaluate_test_by_day(
                conn, sql, sql_models.bind_params(sql, test.interval, settings, *window, asset), window,
                test.header["day_of"], test.header.get("sample_order", test.header["day_of"]),
            )
            for one in window.days():
                alone = sql_models.evaluate_test(conn, sql, sql_models.bind_params(sql, test.interval, settings, *one, asset), one)
                assert (ranged[one.key].passed, ranged[one.key].metadata["failing_rows"]) == (
                    alone.passed, alone.metadata["failing_rows"]), (test.name, one.key)
                failing_days += not alone.passed
            compared.append(test.name)
    assert {"bars_1h_valid_ohlc", "bars_1h_completeness", "bars_1h_return_outliers", "bars_1h_stale",
            "bar_gaps_consistent", "features_1h_finite", "factors_finite", "backtest_folds_metrics"} <= set(compared)
    assert failing_days >= 8, failing_days
