"""Blocking gates on real data: range checks tolerate rounding but not real violations, and the
whole graph (every asset, every check, blocking ones included) runs green on the real candles.

Range checks in ``dbt_like_sql/tests`` allow 1e-9 absolute past a bound (see each check's
description): TA-Lib-exact features land a few ulps past 100 on real data (ZEC/BTC 5m,
``stoch_k_14_3_3 = 100.00000000000001``), which is rounding; 100.001 or -1e-6 is a defect.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from quant_assets.config import Settings, load_settings
from quant_assets.definitions import build_definitions
from quant_assets_tests.conftest import materialize


def _settings(tmp: Path, overrides: dict[str, Any]) -> Settings:
    """Settings from ``overrides`` alone: an empty config file and no environment variables."""
    tmp.mkdir(parents=True, exist_ok=True)
    empty = tmp / "quant.yaml"
    empty.write_text("{}\n")
    return load_settings(config_file=empty, env={}, overrides={"data_dir": str(tmp / "data"), **overrides})


# --- range checks: rounding passes, real violations fail ----------------------------------------

DAY, NEXT_DAY = "2024-03-04", "2024-03-05"


@pytest.fixture(scope="module")
def gated(tmp_path_factory) -> tuple[Settings, dg.Definitions]:
    """Two simulated days through backtests (one OK fold on DAY) to plant values in."""
    settings = _settings(tmp_path_factory.mktemp("gates"), {
        "universe": {"symbols": ["BTC/USDT", "ETH/USDT"]}, "intervals": {"base": "5m", "bars": ["1h", "4h"]},
        "partitions": {"start_date": "2024-01-01"}, "backtest": {"train_days": 1, "min_train_days": 1},
    })
    defs = build_definitions(settings)
    selection = dg.AssetSelection.assets("backtest_pnl", "backtest_folds", "signal_ic").upstream()
    assert materialize(defs, start="2024-03-03", end=DAY, selection=selection).success
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        assert conn.execute("SELECT status FROM backtest_folds WHERE test_start = ?", [DAY]).fetchall() == [("OK",)]
    return settings, defs


@contextmanager
def planted(settings: Settings, table: str, column: str, value: float, time_column: str) -> Iterator[None]:
    """``value`` in one row of ``table`` on DAY; the original value is restored afterwards."""
    with duckdb.connect(str(settings.duckdb_path)) as conn:
        rowid, original = conn.execute(
            f'SELECT rowid, "{column}" FROM "{table}" WHERE {time_column} >= ?::TIMESTAMP '
            f"AND {time_column} < ?::TIMESTAMP ORDER BY {time_column}, rowid LIMIT 1", [DAY, NEXT_DAY]).fetchone()
        conn.execute(f'UPDATE "{table}" SET "{column}" = ? WHERE rowid = ?', [value, rowid])
    try:
        yield
    finally:
        with duckdb.connect(str(settings.duckdb_path)) as conn:
            conn.execute(f'UPDATE "{table}" SET "{column}" = ? WHERE rowid = ?', [original, rowid])


# (check's asset, check, column, value, passes): every bound of every range check, just past it
# by rounding (passes) and by a real amount (fails).
RANGE_CASES = [
    *(("features_1h", "features_1h_finite", col, v, ok)
      for col in ("stoch_k_14_3_3", "rsi_14", "mfi_14", "adx_14", "htf_4h_rsi_14")
      for v, ok in ((100 + 1e-12, True), (100.001, False), (-1e-12, True), (-1e-6, False))),
    *(("features_1h", "features_1h_finite", col, v, ok)
      for col in ("vol_yz_24", "vol_cc_24", "atr_14", "dollar_volume_24", "amihud_24")
      for v, ok in ((-1e-12, True), (-1e-6, False))),
    *(("features_1h", "features_1h_finite", "corr_720", v, ok)
      for v, ok in ((1 + 1e-12, True), (1.001, False), (-1 - 1e-12, True), (-1.000001, False))),
    *(("signal_ic", "signal_ic_valid", col, v, ok)
      for col in ("ic", "rank_ic")
      for v, ok in ((1 + 1e-12, True), (1.001, False), (-1 - 1e-12, True), (-1.001, False))),
    *(("backtest_folds", "backtest_folds_metrics", "max_drawdown", v, ok)
      for v, ok in ((1 + 1e-12, True), (1.001, False), (-1e-12, True), (-1e-6, False))),
    ("backtest_pnl", "backtest_pnl_consistent", "gross_exposure", 1 + 1e-12, True),
    ("backtest_pnl", "backtest_pnl_consistent", "gross_exposure", 1.001, False),
    ("backtest_pnl", "backtest_pnl_consistent", "turnover", -1e-12, True),
    ("backtest_pnl", "backtest_pnl_consistent", "turnover", -1e-6, False),
]
TIME_COLUMN = {"signal_ic": "day", "backtest_folds": "test_start"}


@pytest.mark.parametrize(("asset", "check", "column", "value", "passes"), RANGE_CASES,
                         ids=[f"{c[2]}={c[3]!r}" for c in RANGE_CASES])
def test_range_checks_pass_rounding_and_fail_real_violations(gated, asset, check, column, value, passes):
    settings, defs = gated
    key = dg.AssetCheckKey(dg.AssetKey(asset), check)
    assert defs.resolve_asset_graph().get_check_spec(key).blocking
    with planted(settings, asset, column, value, TIME_COLUMN.get(asset, "ts")):
        result = materialize(defs, start=DAY, end=DAY, selection=dg.AssetSelection.checks(key), raise_on_error=False)
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed is passes, evaluation.metadata["sample"].value
    assert evaluation.metadata["failing_rows"].value == (0 if passes else 1)
