"""Reproducibility verification: each fold's inputs hashed again and its numbers recomputed.

Per out-of-sample day (core in ``quant.reproducibility``): the input partitions its manifest
recorded are hashed again and the first one that changed is named; the fold is recomputed from
the stored bars, signals and factors exactly as the backtest computed it and compared with the
stored ``backtest_pnl`` and ``backtest_folds`` within ``governance.tolerance``. ``strict``: a
mismatch fails the blocking check ``reproducibility_verified``; ``warn``: the check only warns;
``trust``: nothing is recomputed and the day is recorded as skipped.
"""

import json
from datetime import datetime, timedelta
from typing import Any

import dagster as dg
import duckdb
import polars as pl

from quant_assets.config import Settings
from quant_assets.defs.backtests.setup import fold_calendar, fold_setup, strategy_specs
from quant_assets.defs.backtests.walk_forward import run_stored_fold
from quant_assets.lib.checks import Verdict, daily_check
from quant_assets.lib.partitioned import AssetOutput, TableWrite, WindowStep, daily_asset
from quant_assets.quant.calendar import Window
from quant_assets.quant.fold_tables import Metering, day_tables
from quant_assets.quant.manifest import OWN_TABLES
from quant_assets.quant.reproducibility import (
    MISMATCH,
    NO_RESULT,
    SKIPPED,
    Verification,
    compare_values,
    first_changed_input,
    verify,
)
from quant_assets.resources.tables import daily_content_hashes, query_frame, table_exists

RUN_SCHEMA = {"day": pl.Datetime("us"), "mode": pl.Utf8, "status": pl.Utf8, "max_abs_diff": pl.Float64,
              "first_mismatch": pl.Utf8, "checked_at": pl.Datetime("us")}
PNL_VALUES = ["strategy", "gross_return", "cost", "net_return", "turnover", "gross_exposure", "net_exposure",
              "capped", "benchmark_market", "benchmark_equal_weight"]
FOLD_VALUES = ["status", "selected_strategy", "candidates_tried", "train_sharpe", "leverage", "n_bars",
               "gross_return", "cost", "total_return", "turnover", "hit_rate", "max_drawdown", "sharpe", "sortino",
               "calmar", "cagr", "annual_volatility", "capped_trades", "benchmark_market_return",
               "benchmark_equal_weight_return"]
TRADE_KEYS = ["ts", "cost_mode", "strategy"]


def trade_counts(positions: pl.DataFrame) -> pl.DataFrame:
    """Per bar, cost mode and strategy: the symbols traded (held weight differs from pre-trade)."""
    return positions.group_by(TRADE_KEYS).agg(
        (pl.col("weight") != pl.col("pre_trade_weight")).sum().cast(pl.Int64).alias("trades"))


def _recorded_inputs(conn: duckdb.DuckDBPyConnection, key: str) -> dict[str, dict[str, str]] | None:
    row = conn.execute("SELECT manifest_json FROM backtest_manifest WHERE partition_key = ?", [key]).fetchone()
    if row is None:
        return None
    inputs = json.loads(row[0])["inputs"]
    return {table: {day: v["sha256"] for day, v in days.items()} for table, days in inputs.items()}


def _current_inputs(conn: duckdb.DuckDBPyConnection, recorded: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    current: dict[str, dict[str, str]] = {}
    for table, days in recorded.items():
        if not table_exists(conn, table) or not days:
            continue
        first, last = min(days), max(days)
        time_column = "day" if table == "backtest_folds" else "ts"
        hashes = daily_content_hashes(conn, table, datetime.fromisoformat(first),
                                      datetime.fromisoformat(last) + timedelta(days=1), time_column)
        current[table] = {day: digest for day, (n, digest) in hashes.items() if n or day in days}
    return current


def verify_day(conn: duckdb.DuckDBPyConnection, settings: Settings, day: Window) -> Verification:
    """The verdict of one out-of-sample day (see the module)."""
    recorded = _recorded_inputs(conn, day.key)
    fold = fold_calendar(settings).fold_of(day.start.date())
    if recorded is None or fold is None:
        return Verification(NO_RESULT)
    upstream = {t: days for t, days in recorded.items() if t not in OWN_TABLES}  # the outputs are compared below
    changed = first_changed_input(upstream, _current_inputs(conn, upstream))
    specs = strategy_specs(settings)
    setup = fold_setup(settings)
    stored_folds = query_frame(conn, "SELECT * FROM backtest_folds WHERE day = ?", [day.start])
    if stored_folds.filter(pl.col("status") == "OK").is_empty():
        return verify(changed, 0.0, None)
    run, panel = run_stored_fold(conn, settings, fold, specs, setup)
    meter = Metering(setup.bars_per_year, settings.backtest.min_bars_for_sharpe, len(specs))
    again = day_tables(panel, run, fold, day.start, day.end, {s.name: s for s in specs}, meter)
    stored_pnl = query_frame(conn, "SELECT * FROM backtest_pnl WHERE ts >= ? AND ts < ?", list(day))
    stored_positions = query_frame(conn, "SELECT * FROM backtest_positions WHERE ts >= ? AND ts < ?", list(day))
    tolerance = settings.governance.tolerance
    diffs = [
        compare_values(stored_folds, again.folds, ["day", "cost_mode"], FOLD_VALUES, tolerance),
        compare_values(stored_pnl, again.pnl, ["ts", "cost_mode"], PNL_VALUES, tolerance),
        compare_values(trade_counts(stored_positions), trade_counts(again.positions), TRADE_KEYS, ["trades"],
                       tolerance),
    ]
    first = next((f for _, f in diffs if f is not None), None)
    return verify(changed, max(d for d, _ in diffs), first)


def build_reproducibility(settings: Settings) -> dg.AssetsDefinition:
    mode = settings.governance.reproducibility

    @daily_asset(
        settings, name="reproducibility_runs", group="governance",
        description=(
            f"Per out-of-sample day, in mode {mode}: whether the fold reproduces. The input partitions its manifest "
            "recorded are hashed again (the first changed one is named) and the fold is recomputed from the stored "
            f"inputs and compared with backtest_pnl and backtest_folds within {settings.governance.tolerance}."),
        deps=["backtest_manifest", "backtest_pnl", "backtest_folds"], kinds=("python", "duckdb"),
    )
    def reproducibility_runs(step: WindowStep) -> AssetOutput:
        now = datetime.now().replace(microsecond=0)
        rows, daily = [], {}
        for day in step.window.days():
            verdict = Verification(SKIPPED) if mode == "trust" else verify_day(step.conn, settings, day)
            rows.append({"day": day.start, "mode": mode, "status": verdict.status,
                         "max_abs_diff": verdict.max_abs_diff, "first_mismatch": verdict.first_mismatch,
                         "checked_at": now})
            daily[day.key] = {"reproducibility": verdict.status, "max_abs_diff": verdict.max_abs_diff}
        frame = pl.DataFrame(rows, schema=RUN_SCHEMA, orient="row") if rows else pl.DataFrame(schema=RUN_SCHEMA)
        return AssetOutput([TableWrite("reproducibility_runs", frame, params={"mode": mode}, time_column="day",
                                       merge_key=("day",), volatile=("checked_at",))], daily=daily)

    return reproducibility_runs


def reproducibility_checks(settings: Settings) -> list[dg.AssetChecksDefinition]:
    mode = settings.governance.reproducibility

    @daily_check(settings, asset="reproducibility_runs", name="reproducibility_verified",
                 severity="WARN" if mode == "warn" else "ERROR",
                 description=(f"Mode {mode}: every out-of-sample day reproduces (inputs unchanged, outputs within "
                              f"{settings.governance.tolerance}); trust records the day as skipped and passes."))
    def reproducibility_verified(conn: duckdb.DuckDBPyConnection, day: Window) -> Verdict:
        rows = conn.execute("SELECT status, first_mismatch, max_abs_diff FROM reproducibility_runs "
                            "WHERE day >= ? AND day < ?", list(day)).fetchall()
        bad = [r for r in rows if r[0] == MISMATCH]
        figures: dict[str, Any] = {"mismatches": len(bad), "mode": mode,
                                   "max_abs_diff": max((r[2] for r in rows if r[2] is not None), default=0.0)}
        if bad:
            figures["first_mismatch"] = bad[0][1]
            figures["reason"] = f"fold {day.key} does not reproduce: {bad[0][1]}"
        return Verdict(not bad, figures)

    return [reproducibility_verified]
