"""signals + signal_trades materialized for real: day by day equals one range run (positions open
across midnight included), one catalogue line adds a signal, an incomplete lookback writes no
rows and warns, and each blocking check fails on a corrupted row."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from quant_assets.config import Settings, load_settings
from quant_assets.definitions import build_definitions
from quant_assets.quant.signal_catalogue import DEFAULT_SIGNAL_CATALOGUE
from quant_assets_tests.conftest import TEST_SYMBOLS, materialize, table_digest

DAYS = ["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04", "2024-03-05"]
UPSTREAM = dg.AssetSelection.assets("raw_candles", "bars_1h", "features_1h")
STEP = dg.AssetSelection.assets("signals", "signal_trades")


def _settings(data_dir: Path, **overrides) -> Settings:
    env = {"QUANT_DATA_DIR": str(data_dir), "QUANT_SYMBOLS": TEST_SYMBOLS, "QUANT_START_DATE": DAYS[0],
           "QUANT_BASE_INTERVAL": "5m", "QUANT_BAR_INTERVALS": "1h"}
    return load_settings(config_file=None, env=env, overrides=overrides)


def _signal_checks_pass(result: dg.ExecuteInProcessResult) -> bool:
    ours = [e for e in result.get_asset_check_evaluations() if e.asset_key.to_user_string() in ("signals", "signal_trades")]
    return len({e.check_name for e in ours}) == 3 and all(e.passed for e in ours)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Settings]:
    """One database built day by day, one built in a single range run."""
    daily = _settings(tmp_path_factory.mktemp("daily"))
    defs = build_definitions(daily)
    for day in DAYS:
        assert materialize(defs, partition_key=day, selection=UPSTREAM | STEP).success
    ranged = _settings(tmp_path_factory.mktemp("range"))
    result = materialize(build_definitions(ranged), start=DAYS[0], end=DAYS[-1], selection=UPSTREAM | STEP)
    assert result.success and _signal_checks_pass(result)
    return {"daily": daily, "range": ranged}


@pytest.fixture
def copy_of(built, tmp_path) -> Callable[..., Settings]:
    """Settings on a private copy of the range-run database (``overrides`` adjust them)."""

    def _copy(**overrides) -> Settings:
        target = tmp_path / "copy"
        target.mkdir(exist_ok=True)
        shutil.copy(built["range"].duckdb_path, target / built["range"].duckdb_path.name)
        return _settings(target, **overrides)

    return _copy


def test_day_by_day_equals_one_range_run_with_positions_open_across_midnight(built) -> None:
    with duckdb.connect(str(built["daily"].duckdb_path), read_only=True) as daily, \
         duckdb.connect(str(built["range"].duckdb_path), read_only=True) as ranged:
        for table in ("signals", "signal_trades"):
            assert table_digest(daily, table) == table_digest(ranged, table)
            assert table_digest(daily, table)[0] > 0
        overnight = daily.execute(
            "SELECT rule, count(*) FROM signal_trades WHERE CAST(entry_ts AS DATE) < CAST(exit_ts AS DATE) GROUP BY rule"
        ).fetchall()
        assert {"ema_crossover", "rsi_mean_reversion"} <= {rule for rule, _ in overnight}
        held_over_midnight = daily.execute(
            "SELECT count(*) FROM signals a JOIN signals b ON a.signal_name = b.signal_name AND a.symbol = b.symbol "
            "AND b.ts = a.ts + INTERVAL 1 HOUR WHERE hour(a.ts) = 23 AND a.value <> 0 AND b.value = a.value "
            "AND a.signal_name LIKE 'rsi_mean_reversion%'"
        ).fetchone()[0]
        assert held_over_midnight > 0
        rules = {r for (r,) in daily.execute("SELECT DISTINCT rule FROM signal_trades").fetchall()}
        assert rules == {"ema_crossover", "rsi_mean_reversion", "atr_breakout"}


def test_one_catalogue_line_adds_a_signal(copy_of, tmp_path) -> None:
    catalogue = tmp_path / "signals.yaml"
    catalogue.write_text(DEFAULT_SIGNAL_CATALOGUE.read_text()
                         + "  - {rule: rsi_mean_reversion, params: {period: 14, lower: 40, upper: 60}, name: rsi_tight}\n")
    s = copy_of(signals={"catalogue": str(catalogue)})
    result = materialize(build_definitions(s), start=DAYS[0], end=DAYS[-1], selection=STEP)
    assert result.success and _signal_checks_pass(result)
    with duckdb.connect(str(s.duckdb_path), read_only=True) as conn:
        n, nonzero = conn.execute("SELECT count(*), count(*) FILTER (value <> 0) FROM signals "
                                  "WHERE signal_name = 'rsi_tight'").fetchone()
        trips = conn.execute("SELECT count(*) FROM signal_trades WHERE signal_name = 'rsi_tight'").fetchone()[0]
        stored = conn.execute("SELECT rule, inputs FROM signal_catalogue WHERE signal_name = 'rsi_tight'").fetchall()
    assert n > 0 and nonzero > 0 and trips > 0
    assert stored == [("rsi_mean_reversion", ["rsi_14"])]


def test_a_day_without_its_whole_lookback_has_no_rows_and_warns(copy_of) -> None:
    s = copy_of()
    with duckdb.connect(str(s.duckdb_path)) as conn:
        conn.execute("DELETE FROM features_1h WHERE CAST(ts AS DATE) = DATE '2024-03-02'")
        conn.execute("DELETE FROM partition_hashes WHERE asset = 'features_1h' AND partition_key = '2024-03-02'")
    result = materialize(build_definitions(s), partition_key="2024-03-04", selection=STEP, raise_on_error=False)
    assert result.success
    warn = {e.check_name: e for e in result.get_asset_check_evaluations()}["signals_lookback_complete"]
    assert not warn.passed and warn.severity == dg.AssetCheckSeverity.WARN
    with duckdb.connect(str(s.duckdb_path), read_only=True) as conn:
        day = "CAST(ts AS DATE) = DATE '2024-03-04'"
        assert conn.execute(f"SELECT count(*) FROM signals WHERE {day}").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM signal_trades WHERE CAST(exit_ts AS DATE) = DATE '2024-03-04'"
                            ).fetchone()[0] == 0
        assert conn.execute("SELECT complete, missing FROM lookback_status WHERE asset = 'signals' "
                            "AND partition_key = '2024-03-04'").fetchone() == (False, "features_1h 2024-03-02")


SIGNAL_CORRUPTIONS = [
    ("UPDATE signals SET value = 2 WHERE ts = (SELECT max(ts) FROM signals)", "value outside [-1, 1]"),
    ("UPDATE features_1h SET ema_21 = NULL WHERE ts = (SELECT max(ts) FROM features_1h)", "input NULL: ema_21"),
    ("UPDATE signals SET signal_name = 'ghost' WHERE signal_name = 'ema_cross_9_21' AND symbol = 'BTC/USDT' "
     "AND ts = (SELECT max(ts) FROM signals)", "signal not in the catalogue"),
    ("DELETE FROM features_1h WHERE ts = (SELECT max(ts) FROM features_1h)", "no features row"),
    ("CREATE TABLE s2 AS SELECT * FROM signals; DROP TABLE signals; ALTER TABLE s2 RENAME TO signals; "
     "INSERT INTO signals SELECT * FROM signals WHERE ts = (SELECT max(ts) FROM signals) LIMIT 1",
     "duplicate (signal_name, symbol, ts)"),
]
TRADE_CORRUPTIONS = [
    ("UPDATE signal_trades SET \"return\" = \"return\" + 1e-9 WHERE exit_ts = (SELECT max(exit_ts) FROM signal_trades)",
     "return differs from side * (exit / entry - 1)"),
    ("UPDATE signal_trades SET quantity = 0 WHERE exit_ts = (SELECT max(exit_ts) FROM signal_trades)",
     "quantity outside (0, 1]"),
    ("UPDATE signal_trades SET side = 'flat' WHERE exit_ts = (SELECT max(exit_ts) FROM signal_trades)",
     "side not long or short"),
    ("UPDATE signal_trades SET bars_held = 0 WHERE exit_ts = (SELECT max(exit_ts) FROM signal_trades)", "bars_held < 1"),
    ("UPDATE signal_trades SET entry_ts = exit_ts WHERE exit_ts = (SELECT max(exit_ts) FROM signal_trades)",
     "exit not after entry"),
    ("UPDATE signal_trades SET exit_price = exit_price * 1.01, \"return\" = CASE side WHEN 'long' THEN 1 ELSE -1 END "
     "* (exit_price * 1.01 / entry_price - 1) WHERE exit_ts = (SELECT max(exit_ts) FROM signal_trades)",
     "exit not at a bar's open in the window"),
    ("INSERT INTO signal_trades SELECT * FROM signal_trades WHERE exit_ts = (SELECT max(exit_ts) FROM signal_trades) "
     "LIMIT 1", "duplicate (signal_name, symbol, entry_ts, exit_ts)"),
]


@pytest.mark.parametrize(("check", "sql", "problem"),
                         [("signals_valid", *c) for c in SIGNAL_CORRUPTIONS]
                         + [("signal_trades_valid", *c) for c in TRADE_CORRUPTIONS],
                         ids=[p for _, p in SIGNAL_CORRUPTIONS + TRADE_CORRUPTIONS])
def test_each_blocking_check_fails_on_a_corrupted_row(copy_of, check, sql, problem) -> None:
    s = copy_of()
    asset = "signals" if check == "signals_valid" else "signal_trades"
    with duckdb.connect(str(s.duckdb_path)) as conn:
        last = conn.execute(f"SELECT strftime(max({'ts' if asset == 'signals' else 'exit_ts'}), '%Y-%m-%d') "
                            f"FROM {asset}").fetchone()[0]
        conn.execute(sql)
    defs = build_definitions(s)
    key = dg.AssetCheckKey(dg.AssetKey(asset), check)
    assert defs.resolve_asset_graph().get_check_spec(key).blocking
    result = materialize(defs, start=last, end=last, selection=dg.AssetSelection.checks(key), raise_on_error=False)
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.metadata["failing_rows"].value >= 1
    assert problem in str(evaluation.metadata), evaluation.metadata
