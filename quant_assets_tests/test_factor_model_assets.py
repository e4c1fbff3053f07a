"""factor_returns, factor_return_summary, pca_factors/pca_residuals and regimes materialized for real.

Bars come from the graph (simulated candles -> bars_1h) for four days; the ``factors`` table
(another stage's asset) is stood in for by :func:`write_factors`. Windows are small so that the
days after the first are complete.
"""

import shutil
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from quant_assets.config import Settings, load_settings
from quant_assets.definitions import build_definitions
from quant_assets.resources.tables import query_frame
from quant_assets_tests.conftest import all_defs, table_digest

DAYS = ["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04"]
SYMBOLS = "BTC/USDT,ETH/USDT,SOL/USDT,BNB/USDT,XRP/USDT"
RESEARCH = {"fama_macbeth_factors": ["mom_24", "size"], "pca_window": 12, "pca_components": 2,
            "regime_vol_window": 4, "regime_corr_window": 6, "regime_history": 12}
BARS = ["raw_candles", "bar_gaps", "bars_1h"]
MINE = ["factor_returns", "factor_return_summary", "pca_factors", "pca_residuals", "regimes"]
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def make(root: Path) -> Settings:
    return load_settings(config_file=None, env={
        "QUANT_DATA_DIR": str(root), "QUANT_SYMBOLS": SYMBOLS, "QUANT_START_DATE": DAYS[0],
        "QUANT_BASE_INTERVAL": "5m", "QUANT_BAR_INTERVALS": "1h",
    }, overrides={"research": RESEARCH})


def run(defs: dg.Definitions, days: list[str], assets: list[str], instance: dg.DagsterInstance | None = None,
        checks_only: bool = False) -> dg.ExecuteInProcessResult:
    selection = (dg.AssetSelection.checks_for_assets(*assets) if checks_only
                 else dg.AssetSelection.assets(*assets))
    tags = {"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]}
    return dg.materialize(
        all_defs(defs), partition_key=days[0] if len(days) == 1 else None, tags=tags if len(days) > 1 else {},
        resources=defs.resources, selection=selection, run_config=QUIET, raise_on_error=False,
        instance=instance or dg.DagsterInstance.ephemeral(),
    )


def write_factors(path: Path) -> None:
    """A stand-in ``factors`` table (symbol, ts, factor_name, value), z-scored across symbols
    per bar like the real one: mom_24 from the sum of the last 24 log returns, size from the
    log quote volume; it reads bars <= t only."""
    with duckdb.connect(str(path)) as conn:
        conn.execute("""
            CREATE OR REPLACE TABLE factors AS
            WITH raw AS (
                SELECT symbol, ts,
                       sum(log_return) OVER (PARTITION BY symbol ORDER BY ts ROWS 23 PRECEDING) AS mom_24,
                       ln(quote_volume) AS size
                FROM bars_1h
            ), long AS (UNPIVOT raw ON mom_24, size INTO NAME factor_name VALUE value)
            SELECT symbol, ts, factor_name,
                   (value - avg(value) OVER w) / stddev_samp(value) OVER w AS value
            FROM long WINDOW w AS (PARTITION BY ts, factor_name)
        """)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A DuckDB file with four days of bars and the stand-in factors (nothing of ours yet)."""
    root = tmp_path_factory.mktemp("bars")
    s = make(root)
    assert run(build_definitions(s), DAYS, BARS).success
    write_factors(s.duckdb_path)
    return s.duckdb_path


def fresh(built: Path, root: Path) -> tuple[Settings, dg.Definitions]:
    s = make(root)
    s.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(built, s.duckdb_path)
    return s, build_definitions(s)


def failing_checks(result: dg.ExecuteInProcessResult) -> set[tuple[str, str]]:
    return {(e.check_name, e.partition or "") for e in result.get_asset_check_evaluations() if not e.passed}


def test_day_by_day_equals_one_range_run_and_only_the_last_day_waits_for_its_next(built, tmp_path):
    s_day, defs_day = fresh(built, tmp_path / "daily")
    instance = dg.DagsterInstance.ephemeral()
    for day in DAYS:
        result = run(defs_day, [day], MINE, instance)
        assert result.success
        assert failing_checks(result) <= {("factor_returns_lookback_complete", DAYS[-1])}
    assert ("factor_returns_lookback_complete", DAYS[-1]) in failing_checks(result)
    s_range, defs_range = fresh(built, tmp_path / "range")
    result = run(defs_range, DAYS, MINE)
    assert result.success
    assert failing_checks(result) == {("factor_returns_lookback_complete", DAYS[-1])}
    with duckdb.connect(str(s_day.duckdb_path), read_only=True) as a, \
            duckdb.connect(str(s_range.duckdb_path), read_only=True) as b:
        for table in ["factor_returns", "factor_return_summary", "pca_factors", "pca_residuals", "regimes"]:
            assert table_digest(a, table) == table_digest(b, table), table
            assert table_digest(a, table)[0] > 0, table
        status = "SELECT * FROM lookback_status WHERE list_contains(?, asset) ORDER BY ALL"
        assert a.execute(status, [MINE]).fetchall() == b.execute(status, [MINE]).fetchall()
        fr = query_frame(a, "SELECT * FROM factor_returns")
        pca = query_frame(a, "SELECT * FROM pca_factors")
        reg = query_frame(a, "SELECT * FROM regimes ORDER BY ts")
        incomplete = a.execute("SELECT asset, partition_key FROM lookback_status WHERE NOT complete").fetchall()
    assert incomplete == [("factor_returns", DAYS[-1])]
    # every bar has its regression but the origin's first (no log return, so no mom_24) and the
    # very last, which waits for the day after
    assert fr["ts"].n_unique() == 4 * 24 - 2 and set(fr["factor"]) == {"intercept", "mom_24", "size"}
    # the first day has no trailing window before it; the others are fitted on 5 symbols
    assert pca["ts"].dt.date().cast(pl.Utf8).unique().sort().to_list() == DAYS[1:]
    # (a simulated missing bar can drop a symbol from a day's fit)
    assert pca["n_assets"].max() == 5 and pca["n_assets"].min() >= 3 and set(pca["window_bars"]) == {12}
    # the first label needs 1 + 4 - 1 + 12 bars from the origin; later a simulated missing bar
    # blanks the labels whose windows it falls in (the history check above passed on every day)
    assert reg.height == 96 and reg["vol_regime"][:16].null_count() == 16 and reg["vol_regime"][16] is not None
    assert reg["vol_regime"][16:].null_count() < 40 and reg["beta_state"][18:].null_count() < 40


def test_a_day_built_before_its_lookback_landed_holds_nothing_and_warns(built, tmp_path):
    s, defs = fresh(built, tmp_path / "gap")
    with duckdb.connect(str(s.duckdb_path)) as conn:  # as if day 2's bars had not landed yet
        conn.execute("DELETE FROM bars_1h WHERE CAST(ts AS DATE) = DATE '2024-03-02'")
        conn.execute("DELETE FROM partition_hashes WHERE asset = 'bars_1h' AND partition_key = '2024-03-02'")
    result = run(defs, [DAYS[2]], ["pca_factors", "pca_residuals", "regimes"])
    assert result.success
    assert failing_checks(result) == {("pca_factors_lookback_complete", DAYS[2]),
                                      ("regimes_lookback_complete", DAYS[2])}
    with duckdb.connect(str(s.duckdb_path), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM pca_factors").fetchone() == (0,)
        assert conn.execute("SELECT count(*), count(market_vol), count(vol_regime) FROM regimes").fetchone() == (24, 0, 0)
    meta = result.asset_materializations_for_node("regimes")[0].metadata
    assert "regime_timeline" in meta


CORRUPTIONS = [
    ("factor_returns_unique_key", "INSERT INTO factor_returns SELECT * FROM factor_returns LIMIT 1"),
    ("factor_returns_valid", "UPDATE factor_returns SET r2 = 1.5 WHERE ts = (SELECT min(ts) FROM factor_returns)"),
    ("factor_returns_valid", "UPDATE factor_returns SET \"return\" = 'nan' WHERE factor = 'size' "
                             "AND ts = (SELECT min(ts) FROM factor_returns)"),
    ("pca_factors_unique_key", "INSERT INTO pca_factors SELECT * FROM pca_factors LIMIT 1"),
    ("pca_factors_valid", "UPDATE pca_factors SET explained_variance_ratio = 0.9 WHERE component = 2 "
                          "AND ts = (SELECT min(ts) FROM pca_factors)"),
    ("pca_residuals_unique_key", "INSERT INTO pca_residuals SELECT * FROM pca_residuals LIMIT 1"),
    ("pca_residuals_valid", "DELETE FROM pca_residuals WHERE symbol = 'BTC/USDT' "
                            "AND ts = (SELECT min(ts) FROM pca_residuals)"),
    ("pca_residuals_history_exists", "UPDATE pca_factors SET window_bars = 40"),
    ("regimes_unique_key", "INSERT INTO regimes SELECT * FROM regimes LIMIT 1"),
    ("regimes_valid", "UPDATE regimes SET vol_regime = 'extreme' WHERE ts = (SELECT max(ts) FROM regimes)"),
    ("regimes_valid", "UPDATE regimes SET beta_state = 'up_high_corr', market_trend = -0.01 "
                      "WHERE ts = (SELECT max(ts) FROM regimes)"),
    ("regimes_history_exists", "UPDATE regimes SET vol_regime = 'low' WHERE ts = (SELECT min(ts) FROM regimes)"),
    ("factor_return_summary_consistent", "UPDATE factor_return_summary SET n_periods = n_periods + 1 "
                                         "WHERE factor = 'size'"),
]


@pytest.fixture(scope="module")
def mine_built(built, tmp_path_factory) -> Path:
    s, defs = fresh(built, tmp_path_factory.mktemp("mine"))
    assert run(defs, DAYS[:2], MINE).success
    return s.duckdb_path


@pytest.mark.parametrize(("check", "corruption"), CORRUPTIONS)
def test_each_check_fails_on_a_corrupted_row(mine_built, tmp_path, check, corruption):
    s, defs = fresh(mine_built, tmp_path / "bad")
    asset = next(c.asset_key.to_user_string() for c in defs.resolve_asset_graph().asset_check_keys if c.name == check)
    days = DAYS[:2] if asset != "factor_return_summary" else []
    clean = dg.materialize(all_defs(defs), selection=dg.AssetSelection.checks(dg.AssetCheckKey(dg.AssetKey(asset), check)),
                           resources=defs.resources, run_config=QUIET, raise_on_error=False,
                           tags={"dagster/asset_partition_range_start": DAYS[0],
                                 "dagster/asset_partition_range_end": DAYS[1]} if days else {})
    assert [e.passed for e in clean.get_asset_check_evaluations()] == [True] * max(1, len(days)), check
    with duckdb.connect(str(s.duckdb_path)) as conn:
        conn.execute(corruption)
    broken = dg.materialize(all_defs(defs), selection=dg.AssetSelection.checks(dg.AssetCheckKey(dg.AssetKey(asset), check)),
                            resources=defs.resources, run_config=QUIET, raise_on_error=False,
                            tags={"dagster/asset_partition_range_start": DAYS[0],
                                  "dagster/asset_partition_range_end": DAYS[1]} if days else {})
    assert not all(e.passed for e in broken.get_asset_check_evaluations()), check
