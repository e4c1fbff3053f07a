"""The backtest stage materialized for real: walk-forward folds over every signal and factor
portfolio in both cost modes, positions, portfolio weights, calibration, the trial registry, the
summary with PSR/DSR/PBO and the bootstrap interval, its pictures, `quant report`; any build order
gives the same tables; each gate fails on a corrupted row.

Five simulated symbols on 5m candles, 1h bars, seven days: folds train on up to three days
(at least two), so five days are traded out of sample (120 bars per cost mode).
"""

import shutil
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from quant_assets.config import Settings, load_settings
from quant_assets.definitions import build_definitions
from quant_assets.defs.backtests.setup import portfolio_factors, strategy_specs
from quant_assets.report import read_report
from quant_assets_tests.conftest import all_defs, table_digest

pytestmark = pytest.mark.slow

FIRST = date(2024, 3, 1)
DAYS = [(FIRST + timedelta(days=i)).isoformat() for i in range(7)]
SYMBOLS = "BTC/USDT,ETH/USDT,SOL/USDT,BNB/USDT,XRP/USDT"
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
BACKTEST_TABLES = ("backtest_folds", "backtest_pnl", "backtest_positions", "backtest_strategy_returns",
                   "portfolio_weights", "signal_calibration")
OVERRIDES = {
    "backtest": {"train_days": 3, "min_train_days": 2, "min_bars_for_sharpe": 48, "pbo_splits": 4,
                 "bootstrap_samples": 200},
    "portfolio": {"cov_window": 24, "rebalance_bars": 6, "risk_aversions": [1.0]},
}


def _settings(root: Path, **extra) -> Settings:
    overrides = {k: {**v, **extra.get(k, {})} for k, v in OVERRIDES.items()}
    return load_settings(config_file=None, env={
        "QUANT_DATA_DIR": str(root), "QUANT_SYMBOLS": SYMBOLS, "QUANT_START_DATE": DAYS[0],
        "QUANT_BASE_INTERVAL": "5m", "QUANT_BAR_INTERVALS": "1h",
    }, overrides=overrides)


def _tags(days: list[str]) -> dict[str, str]:
    return ({"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]}
            if len(days) > 1 else {})


def _run(defs: dg.Definitions, selection, days: list[str] | None, raise_on_error: bool = True):
    key = days[0] if days and len(days) == 1 else None
    return dg.materialize(all_defs(defs), partition_key=key, tags=_tags(days) if days else {},
                          resources=defs.resources, selection=selection, run_config=QUIET,
                          raise_on_error=raise_on_error)


def _partitioned(defs: dg.Definitions) -> dg.AssetSelection:
    graph = defs.resolve_asset_graph()
    return dg.AssetSelection.assets(*[k for k in graph.get_all_asset_keys() if graph.get(k).partitions_def])


def _upstream(defs: dg.Definitions) -> dg.AssetSelection:
    graph = defs.resolve_asset_graph()
    backtests = dg.AssetSelection.groups("backtests").resolve(graph)
    return (dg.AssetSelection.assets(*backtests).upstream() - dg.AssetSelection.groups("backtests")
            - dg.AssetSelection.groups("research") - dg.AssetSelection.groups("governance")) & _partitioned(defs)


SUMMARY = dg.AssetSelection.assets("backtest_summary", "backtest_pbo")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    settings = _settings(tmp_path_factory.mktemp("backtest"))
    defs = build_definitions(settings)
    upstream = _run(defs, _upstream(defs), DAYS)
    backtests = _run(defs, dg.AssetSelection.groups("backtests") & _partitioned(defs), DAYS)
    summary = _run(defs, SUMMARY, None)
    return settings, defs, upstream, backtests, summary


def test_every_strategy_is_tried_in_both_cost_modes_and_the_best_traded(built):
    settings, _defs, _, result, _ = built
    specs = strategy_specs(settings)
    assert {s.kind for s in specs} == {"rule", "portfolio"}
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        status = conn.execute("SELECT strftime(day, '%Y-%m-%d'), cost_mode, status FROM backtest_folds ORDER BY 1, 2"
                              ).fetchall()
        assert [s for _, _, s in status] == ["NOT_IN_FOLD"] * 4 + ["OK"] * 10
        traded = conn.execute("SELECT count(*), count(DISTINCT ts) FROM backtest_pnl").fetchone()
        assert traded == (2 * 5 * 24, 5 * 24)
        tried = conn.execute("SELECT count(DISTINCT strategy), count(*) FROM backtest_strategy_returns").fetchone()
        assert tried == (len(specs), len(specs) * 2 * 5 * 24)
        assert conn.execute("SELECT cost_mode, count(*) FROM backtest_trials GROUP BY ALL ORDER BY 1").fetchall() == [
            ("clean", len(specs)), ("realistic", len(specs))]  # one trial per configuration and cost mode
        clean = conn.execute("SELECT max(abs(cost)), max(abs(net_return - gross_return)) FROM backtest_pnl "
                             "WHERE cost_mode = 'clean'").fetchone()
        assert clean == (0.0, 0.0)
        realistic_cost = conn.execute("SELECT sum(cost) FROM backtest_pnl WHERE cost_mode = 'realistic'").fetchone()[0]
        assert realistic_cost > 0
        positions = conn.execute("SELECT count(*) FROM backtest_positions").fetchone()[0]
        assert positions == 2 * 5 * 24 * 5
        solvers = dict(conn.execute("SELECT solver, count(*) FROM portfolio_weights GROUP BY ALL").fetchall())
        assert solvers and set(solvers) <= {"CLARABEL", "OSQP", "SCS", "none"}
        rebalances = conn.execute("SELECT count(DISTINCT ts) FROM portfolio_weights").fetchone()[0]
        assert rebalances == 5 * 24 // 6
        sharpe_days = conn.execute("SELECT count(*) FROM backtest_folds WHERE sharpe IS NOT NULL").fetchone()[0]
        assert sharpe_days == 0  # 24 bars a day < min_bars_for_sharpe: no annualised figure per day
        calibrated = dict(conn.execute("SELECT signal_name, min(n_train) FROM signal_calibration GROUP BY ALL").fetchall())
        present = {r[0] for r in conn.execute(
            "SELECT DISTINCT factor_name FROM factors WHERE isfinite(value) AND ts < ?::TIMESTAMP", [DAYS[-1]]).fetchall()}
        # every portfolio factor with values in the training windows (beta needs 168 bars: a week)
        assert set(calibrated) == present & set(portfolio_factors(settings)) == {"mom_72", "reversal", "size",
                                                                                 "low_vol"}
        assert min(calibrated.values()) >= 10  # MIN_PAIRS: fewer training pairs give no calibration
        assert conn.execute("SELECT count(DISTINCT day) FROM signal_calibration WHERE signal_name = 'reversal'"
                            ).fetchone()[0] == 5
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]


def test_the_summary_deflates_by_the_registry_and_draws_the_curves(built):
    settings, _defs, _, _, summary = built
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        rows = conn.execute("SELECT cost_mode, strategy, role, n_bars, sharpe, dsr, n_trials, pbo, sharpe_ci_low, "
                            "sharpe_ci_high, total_return, gross_total_return FROM backtest_summary "
                            "WHERE role <> 'trial' ORDER BY ALL").fetchall()
        n_specs = len(strategy_specs(settings))
        walk = [r for r in rows if r[1] == "walk_forward"]
        assert [r[0] for r in walk] == ["clean", "realistic"]
        for _mode, _, _, n, sharpe, dsr, trials, pbo, low, high, _net, _gross in walk:
            assert n == 120 and trials == n_specs and 0 <= dsr <= 1 and 0 <= pbo <= 1
            assert low <= sharpe <= high
        assert walk[0][10] == walk[0][11]  # clean: net is gross
        benchmarks = {r[1] for r in rows if r[2] == "benchmark"}
        assert benchmarks == {"benchmark_market", "benchmark_equal_weight"}
        assert conn.execute("SELECT count(*) FROM backtest_pbo WHERE cost_mode = 'realistic'").fetchone()[0] == 6
    events = {e.asset_key.to_user_string(): e.materialization.metadata for e in summary.get_asset_materialization_events()}
    assert "data:image/png;base64," in events["backtest_summary"]["equity_curves"].value
    assert "data:image/png;base64," in events["backtest_pbo"]["logit_histogram_realistic"].value
    report = "\n".join(read_report(settings))
    assert "walk_forward (realistic)" in report and "PBO" in report and "DSR" in report
    assert ("likely overfit" in report) or ("no sign of overfitting" in report)


def test_the_trial_count_includes_every_configuration_ever_tried(built, tmp_path):
    settings, _defs, _, _, _ = built
    shutil.copytree(settings.data_dir, tmp_path / "more")
    wider = _settings(tmp_path / "more", portfolio={"risk_aversions": [1.0, 5.0, 25.0]})
    defs = build_definitions(wider)
    _run(defs, dg.AssetSelection.assets(*BACKTEST_TABLES[:-1]), [DAYS[-1]])
    _run(defs, SUMMARY, None)
    with duckdb.connect(str(wider.duckdb_path), read_only=True) as conn:
        trials = conn.execute("SELECT count(*) FROM backtest_trials WHERE cost_mode = 'realistic'").fetchone()[0]
        assert trials == len(strategy_specs(settings)) + 4  # two new lambdas x two portfolio modes
        assert conn.execute("SELECT cost_mode, n_trials FROM backtest_summary WHERE role = 'selected' "
                            "ORDER BY 1").fetchall() == [("clean", trials), ("realistic", trials)]


def test_day_by_day_in_reverse_equals_the_range_run(built, tmp_path):
    settings, _defs, _, _, _ = built
    other = _settings(tmp_path)
    defs = build_definitions(other)
    _run(defs, _upstream(defs), DAYS)
    backtests = dg.AssetSelection.groups("backtests") & _partitioned(defs)
    for day in reversed(DAYS):
        _run(defs, backtests, [day])
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as a, \
            duckdb.connect(str(other.duckdb_path), read_only=True) as b:
        for table in BACKTEST_TABLES:
            assert table_digest(a, table) == table_digest(b, table), table


CORRUPTIONS = [
    ("portfolio_weights_valid",
     "UPDATE portfolio_weights SET weight = weight + 0.01 WHERE ts = (SELECT max(ts) FROM portfolio_weights) "
     "AND symbol = 'ETH/USDT'"),
    ("backtest_positions_causal",
     "UPDATE backtest_positions SET signal_ts = ts WHERE ts = (SELECT max(ts) FROM backtest_positions)"),
    ("backtest_folds_split", "UPDATE backtest_folds SET train_end = test_start + INTERVAL 1 HOUR WHERE status = 'OK'"),
    ("backtest_folds_metrics", "UPDATE backtest_folds SET selected_strategy = NULL WHERE status = 'OK'"),
    ("backtest_pnl_consistent", "UPDATE backtest_pnl SET cost = 0.5 WHERE cost_mode = 'clean'"),
    ("signal_calibration_valid", "UPDATE signal_calibration SET realised_rate = 1.5"),
    ("backtest_summary_finite", "UPDATE backtest_summary SET dsr = NULL, null_reason = NULL WHERE role = 'selected'"),
    ("backtest_pbo_consistent", "UPDATE backtest_pbo SET logit = -abs(logit) - 1 WHERE split < 3"),
    ("backtest_strategy_returns_valid",
     "DELETE FROM backtest_strategy_returns WHERE ts = (SELECT max(ts) FROM backtest_strategy_returns) "
     "AND strategy = 'pf_min_variance_long_only'"),
]


@pytest.mark.parametrize(("check", "corruption"), CORRUPTIONS)
def test_each_gate_fails_on_a_corrupted_row(built, tmp_path, check, corruption):
    settings, _defs, _, _, _ = built
    shutil.copytree(settings.data_dir, tmp_path / "bad")
    bad = _settings(tmp_path / "bad")
    defs = build_definitions(bad)
    key = next(k for k in defs.resolve_asset_graph().asset_check_keys if k.name == check)
    days = [] if key.asset_key.to_user_string() in ("backtest_summary", "backtest_pbo") else DAYS[4:]
    selection = dg.AssetSelection.checks(key)
    clean = _run(defs, selection, days or None, raise_on_error=False)
    assert all(e.passed for e in clean.get_asset_check_evaluations()), check
    with duckdb.connect(str(bad.duckdb_path)) as conn:
        conn.execute(corruption)
    broken = _run(defs, selection, days or None, raise_on_error=False)
    assert not all(e.passed for e in broken.get_asset_check_evaluations()), check


def test_longer_folds_and_expanding_training_run_through_the_graph(built, tmp_path):
    """test_days = step_days = 2, expanding training: a fold's two days share one selection and
    one training window from the origin; day by day equals the range run."""
    settings, _defs, _, _, _ = built
    shutil.copytree(settings.data_dir, tmp_path / "two")
    two = _settings(tmp_path / "two", backtest={"test_days": 2, "step_days": 2, "training": "expanding"})
    defs = build_definitions(two)
    backtests = dg.AssetSelection.assets(*BACKTEST_TABLES[:-1])
    _run(defs, backtests, DAYS)
    with duckdb.connect(str(two.duckdb_path), read_only=True) as conn:
        rows = conn.execute("SELECT strftime(day, '%Y-%m-%d'), fold, status, selected_strategy, train_start, train_end "
                            "FROM backtest_folds WHERE cost_mode = 'realistic' ORDER BY day").fetchall()
        before = table_digest(conn, "backtest_pnl")
    folds = {r[0]: r[1] for r in rows}
    assert folds == {DAYS[0]: None, DAYS[1]: None, DAYS[2]: DAYS[2], DAYS[3]: DAYS[2], DAYS[4]: DAYS[4],
                     DAYS[5]: DAYS[4], DAYS[6]: DAYS[6]}
    by_fold = {}
    for _day, fold, status, selected, train_start, train_end in rows:
        if fold:
            assert status == "OK" and str(train_start.date()) == DAYS[0] and str(train_end.date()) == fold
            by_fold.setdefault(fold, set()).add(selected)
    assert all(len(chosen) == 1 for chosen in by_fold.values())  # one selection per fold
    for day in reversed(DAYS):
        _run(defs, backtests, [day])
    with duckdb.connect(str(two.duckdb_path), read_only=True) as conn:
        assert table_digest(conn, "backtest_pnl") == before
