"""The research stage materialized for real: per-bar validation of every rule and factor, the
look-ahead it declares, the summary and tear sheet, `quant research`, and no leak upstream.

Five simulated symbols on 5m candles, 1h bars, four days from the origin: enough bars for every
horizon (1, 4, 24 bars) on the first three days; the fourth day's last bars have no 24-bar
forward return until the fifth day lands.
"""

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from quant_assets.config import Settings, load_settings
from quant_assets.definitions import build_definitions
from quant_assets.report import read_report
from quant_assets.research_report import research_lines
from quant_assets_tests.conftest import all_defs, table_digest

pytestmark = pytest.mark.slow

FIRST = date(2024, 3, 1)
DAYS = [(FIRST + timedelta(days=i)).isoformat() for i in range(4)]
SYMBOLS = "BTC/USDT,ETH/USDT,SOL/USDT,BNB/USDT,XRP/USDT"
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
RESEARCH_TABLES = ("signal_ic", "signal_ic_pooled", "quantile_bar_returns", "signal_turnover")
UPSTREAM_TABLES = ("bars_1h", "features_1h", "signals", "signal_trades", "factors")


def _settings(root: Path) -> Settings:
    return load_settings(config_file=None, env={
        "QUANT_DATA_DIR": str(root), "QUANT_SYMBOLS": SYMBOLS, "QUANT_START_DATE": DAYS[0],
        "QUANT_BASE_INTERVAL": "5m", "QUANT_BAR_INTERVALS": "1h",
    }, overrides={"backtest": {"train_days": 1, "min_train_days": 1}})


def _run(defs: dg.Definitions, selection, days: list[str]) -> dg.ExecuteInProcessResult:
    tags = ({"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]}
            if len(days) > 1 else {})
    result = dg.materialize(all_defs(defs), partition_key=days[0] if len(days) == 1 else None, tags=tags,
                            resources=defs.resources, selection=selection, run_config=QUIET)
    assert result.success
    return result


def _upstream_of_research(defs: dg.Definitions) -> dg.AssetSelection:
    graph = defs.resolve_asset_graph()
    research = dg.AssetSelection.groups("research").resolve(graph)
    upstream = dg.AssetSelection.assets(*research).upstream() - dg.AssetSelection.groups("research")
    return upstream | dg.AssetSelection.assets("signal_trades")  # computed with the signals


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Settings, dg.Definitions, dg.ExecuteInProcessResult]:
    settings = _settings(tmp_path_factory.mktemp("research"))
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    partitioned = [k for k in graph.get_all_asset_keys() if graph.get(k).partitions_def is not None]
    selection = (dg.AssetSelection.assets(*partitioned) & (_upstream_of_research(defs)
                 | dg.AssetSelection.groups("research")))
    _run(defs, selection, DAYS)
    summary = dg.materialize(all_defs(defs), resources=defs.resources, run_config=QUIET, selection=dg.AssetSelection.assets(
        "signal_summary", "quantile_returns", "signal_ic_by_regime"))
    assert summary.success
    return settings, defs, summary


def test_every_rule_and_factor_is_validated_per_bar_and_horizon(built):
    settings, _defs, _ = built
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        names = {r[0] for r in conn.execute(
            "SELECT signal_name FROM signals UNION SELECT factor_name FROM factors").fetchall()}
        validated = {r[0] for r in conn.execute("SELECT DISTINCT signal_name FROM signal_ic").fetchall()}
        assert validated and validated <= names
        assert {r[0] for r in conn.execute("SELECT DISTINCT kind FROM signal_ic").fetchall()} == {"rule", "factor"}
        factor_names = {r[0] for r in conn.execute("SELECT DISTINCT factor_name FROM factors").fetchall()}
        assert factor_names <= validated  # every factor has bars with 5 symbols
        horizons = {r[0] for r in conn.execute("SELECT DISTINCT horizon FROM signal_ic").fetchall()}
        assert horizons == set(settings.research.horizons)
        assert conn.execute("SELECT max(n_assets) FROM signal_ic").fetchone()[0] == 5
        # Forward returns of the last day's bars need the next day, which is not there yet: no
        # 24-bar IC that day, and the 1-bar IC stops at its second-to-last bar.
        last_day = [DAYS[-1]]
        assert conn.execute("SELECT count(*) FROM signal_ic WHERE horizon = 24 AND ts >= ?::TIMESTAMP",
                            last_day).fetchone()[0] == 0
        assert conn.execute("SELECT hour(max(ts)) FROM signal_ic WHERE horizon = 1 AND ts >= ?::TIMESTAMP",
                            last_day).fetchone()[0] == 22
        status = dict(conn.execute(
            "SELECT partition_key, complete FROM lookback_status WHERE asset = 'signal_ic'").fetchall())
        assert status == {**dict.fromkeys(DAYS[:-1], True), DAYS[-1]: False}


def test_the_summary_ranks_everything_and_carries_the_tear_sheet(built):
    settings, _defs, result = built
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        rows = conn.execute("SELECT count(*), count(DISTINCT signal_name) FROM signal_summary").fetchone()
        validated = conn.execute("SELECT count(DISTINCT (signal_name, horizon)) FROM signal_ic").fetchone()[0]
        assert rows[0] == validated
        n_bars = conn.execute("SELECT count(*) FROM signal_ic WHERE signal_name = 'mom_24' AND horizon = 1").fetchone()[0]
        assert conn.execute("SELECT n_periods FROM signal_summary WHERE signal_name = 'mom_24' AND horizon = 1"
                            ).fetchone()[0] == n_bars
    events = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    sheet = events["signal_summary"]
    for panel in ("tear_sheet_ic_over_time", "tear_sheet_ic_decay", "tear_sheet_quantile_returns",
                  "tear_sheet_cumulative_spread"):
        assert sheet[panel].value.startswith("![") and "data:image/png;base64," in sheet[panel].value
    lines = read_report(settings, research_lines)
    assert lines[0].startswith(f"quant research: {rows[1]} signals and factors")
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        ranked = [r[0] for r in conn.execute(
            "SELECT signal_name FROM signal_summary GROUP BY ALL ORDER BY max(abs(rank_icir)) DESC").fetchall()]
    body = [line.split()[1] for line in lines[2:2 + rows[1]]]
    assert sorted(body) == sorted(ranked)  # every validated signal and factor, one line each


def test_the_range_run_equals_day_by_day(built, tmp_path):
    settings, defs, _ = built
    other = _settings(tmp_path)
    other_defs = build_definitions(other)
    upstream = _upstream_of_research(other_defs)
    graph = other_defs.resolve_asset_graph()
    partitioned = dg.AssetSelection.assets(*[k for k in graph.get_all_asset_keys() if graph.get(k).partitions_def])
    _run(other_defs, upstream & partitioned, DAYS)
    research = dg.AssetSelection.groups("research") & partitioned
    for day in DAYS:
        _run(other_defs, research, [day])
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as a, \
            duckdb.connect(str(other.duckdb_path), read_only=True) as b:
        for table in RESEARCH_TABLES:
            assert table_digest(a, table) == table_digest(b, table), table


def test_no_research_table_reaches_upstream(built, tmp_path):
    """Features, factors, signals and the backtests never depend on research, and building them
    without the research stage gives the same tables byte for byte."""
    settings, defs, _ = built
    graph = defs.resolve_asset_graph()
    research = dg.AssetSelection.groups("research").resolve(graph)
    for group in ("bars", "features", "signals", "factors", "backtests"):
        for key in dg.AssetSelection.groups(group).resolve(graph):
            assert not (dg.AssetSelection.assets(key).upstream().resolve(graph) & research), key
    alone = _settings(tmp_path)
    alone_defs = build_definitions(alone)
    graph = alone_defs.resolve_asset_graph()
    partitioned = dg.AssetSelection.assets(*[k for k in graph.get_all_asset_keys() if graph.get(k).partitions_def])
    _run(alone_defs, _upstream_of_research(alone_defs) & partitioned, DAYS)
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as a, \
            duckdb.connect(str(alone.duckdb_path), read_only=True) as b:
        for table in UPSTREAM_TABLES:
            assert table_digest(a, table) == table_digest(b, table), table
