"""Walk-forward backtest: each daily partition is an out-of-sample day of its fold.

The fold (``quant.folds``) trains on the days before its test window; every strategy of the grid
(the catalogue's signals and the factor portfolios, ``quant.strategies``) is simulated over
training and test with next-bar execution, drifting positions and both cost modes; the best
in-sample strategy per cost mode is traded out of sample (core in ``quant.walk_forward``). Every
strategy's out-of-sample returns are kept (``backtest_strategy_returns``) for the overfitting
statistics of ``backtest_summary``, and every configuration is a trial in ``backtest_trials``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import dagster as dg
import duckdb
import numpy as np
import polars as pl

from quant_assets.config import Settings
from quant_assets.defs.backtests.setup import (
    backtest_lookbacks,
    fold_calendar,
    fold_setup,
    history_days,
    load_panel,
    params,
    strategy_specs,
    universe_hash,
)
from quant_assets.lib.lookback import lookback_status, record_status, status_figures
from quant_assets.lib.partitioned import AssetOutput, TableWrite, WindowStep, daily_multi_asset
from quant_assets.lib.plots import equity_drawdown_png
from quant_assets.quant.equity import equity_curve
from quant_assets.quant.experiments import COST_MODES, experiment_ids, trial_config
from quant_assets.quant.fold_tables import (
    INCOMPLETE,
    NOT_IN_FOLD,
    DayTables,
    Metering,
    day_tables,
    empty_day,
)
from quant_assets.quant.folds import Fold
from quant_assets.quant.strategies import Panel, StrategySpec
from quant_assets.quant.walk_forward import FoldRun, FoldSetup, run_fold
from quant_assets.resources.tables import query_frame

TABLES = ("backtest_folds", "backtest_pnl", "backtest_positions", "backtest_strategy_returns", "portfolio_weights")


def _spec(name: str, description: str, deps: list[Any]) -> dg.AssetSpec:
    return dg.AssetSpec(name, group_name="backtests", description=description, deps=deps,
                        kinds={"python", "numpy", "cvxpy", "duckdb"})


def build_backtest(settings: Settings) -> dg.AssetsDefinition:
    bt, pf = settings.backtest, settings.portfolio
    interval = settings.features.interval
    lookbacks = backtest_lookbacks(settings)
    deps = [lb.dep() for lb in lookbacks]
    specs = strategy_specs(settings)
    calendar, setup = fold_calendar(settings), fold_setup(settings)
    meter = Metering(setup.bars_per_year, bt.min_bars_for_sharpe, len(specs))
    lookback_text = "; ".join(lb.describe() for lb in lookbacks)
    costs = (f"realistic: {bt.fee_bps} bps fee + {bt.half_spread_bps} bps half-spread + {bt.impact_k} x sigma x "
             f"sqrt(notional / bar dollar volume) impact, trades capped at {bt.participation_cap:.0%} of the previous "
             f"bar's dollar volume on {bt.capital:,.0f} of capital; clean: none")
    asset_specs = [
        _spec("backtest_folds", (
            f"One row per out-of-sample day and cost mode: its fold (training {bt.train_days} days, {bt.training}; "
            f"test {bt.test_days} day(s) every {bt.step_days}), the strategy chosen by in-sample Sharpe among "
            f"{len(specs)} (signals and factor portfolios), its Kelly leverage ({bt.sizing} sizing), and the day's "
            f"gross return, costs, net return, turnover, hit rate, bar-level max drawdown and the buy-and-hold "
            f"benchmarks. Annualised figures need {bt.min_bars_for_sharpe} bars: a day has none (null_reason says "
            f"so); backtest_summary has them over the whole out-of-sample path. Costs {costs}."), deps),
        _spec("backtest_pnl", (
            f"Per bar of {interval} and cost mode, the traded strategy's gross return, cost, net return (fractions "
            "of equity), turnover, gross and net exposure, trades the participation cap cut, and the benchmarks' "
            "returns (buy and hold of the market symbol; equal-weighted universe)."), deps),
        _spec("backtest_positions", (
            "Per bar, cost mode and symbol: the target weight decided at the close of the bar before (signal_ts), "
            "the drifted weight before the trade, and the weight held during the bar (fractions of equity)."), deps),
        _spec("backtest_strategy_returns", (
            "Every strategy's out-of-sample per-bar gross and net returns in both cost modes: the trials behind "
            "the deflated Sharpe and the returns matrix of the PBO."), deps),
        _spec("portfolio_weights", (
            f"Each factor portfolio's weights at each rebalance of the out-of-sample day (every {pf.rebalance_bars} "
            "bars), held from ts: the cvxpy solution, the solver that produced it (CLARABEL, then OSQP, then SCS) "
            "and its status (a failed solve keeps the previous weights, never NaN)."), deps),
    ]

    @daily_multi_asset(settings, name="walk_forward_backtest", specs=asset_specs)
    def walk_forward_backtest(step: WindowStep) -> dict[str, AssetOutput]:
        status = lookback_status(step.conn, lookbacks, step.window, settings.start_date)
        runs: dict[str, tuple[FoldRun, Panel]] = {}
        days: dict[str, DayTables] = {}
        for day in step.window.days():
            fold = calendar.fold_of(day.start.date())
            if fold is None:
                days[day.key] = empty_day(day.start, NOT_IN_FOLD, None, 0, meter,
                                          "the day is in no fold's test window")
            elif not status[day.key].complete:
                days[day.key] = empty_day(day.start, INCOMPLETE, fold, 0, meter,
                                          f"lookback incomplete: {status[day.key].describe()}")
            else:
                if fold.key not in runs:
                    runs[fold.key] = run_stored_fold(step.conn, settings, fold, specs, setup)
                run, panel = runs[fold.key]
                days[day.key] = day_tables(panel, run, fold, day.start, day.end, {s.name: s for s in specs}, meter)
        tables = {name: pl.concat([getattr(d, _attr(name)) for d in days.values()]) for name in TABLES}
        shaped = params(settings)
        traded = sorted(d.start for d in step.window.days() if days[d.key].pnl.height)
        trials = _trial_rows(settings, specs, traded[0]) if traded else []  # a trial is a configuration evaluated
        outputs = {name: AssetOutput([TableWrite(name, tables[name], params=shaped)])
                   for name in ("backtest_positions", "backtest_strategy_returns", "portfolio_weights")}
        folds = tables["backtest_folds"]
        lookback_figures = status_figures(status)
        outputs["backtest_folds"] = AssetOutput(
            [TableWrite("backtest_folds", folds, params=shaped, time_column="day")],
            daily={key: {**_day_figures(folds, key), **lookback_figures[key]} for key in status},
            summary={"days_traded": folds.filter(pl.col("status") == "OK").height // 2,
                     "strategies_tried": len(specs), "lookback": lookback_text},
            also=[lambda c: record_status(c, "backtest_folds", lookbacks, status),
                  lambda c: _register_trials(c, trials)],
        )
        outputs["backtest_pnl"] = _pnl_output(step, tables["backtest_pnl"], shaped)
        return outputs

    return walk_forward_backtest


def _attr(table: str) -> str:
    return {"backtest_folds": "folds", "backtest_pnl": "pnl", "backtest_positions": "positions",
            "backtest_strategy_returns": "strategy_returns", "portfolio_weights": "weights"}[table]


def run_stored_fold(conn: duckdb.DuckDBPyConnection, settings: Settings, fold: Fold, specs: list[StrategySpec],
         setup: FoldSetup) -> tuple[FoldRun, Panel]:
    """The fold over its bars: the panel starts the covariance history plus one bar before training."""
    start = fold.train_start - timedelta(days=history_days(settings))
    origin = datetime.combine(settings.start_date, datetime.min.time())
    panel = load_panel(conn, settings, max(start, origin), fold.test_end)
    ts = panel.ts
    lo = max(1, int(np.searchsorted(ts, np.datetime64(fold.train_start))))
    split = int(np.searchsorted(ts, np.datetime64(fold.test_start)))
    hi = int(np.searchsorted(ts, np.datetime64(fold.test_end)))
    return run_fold(panel, specs, lo, split, hi, setup), panel


def _trial_rows(settings: Settings, specs: list[StrategySpec], day: datetime) -> list[list[Any]]:
    universe, interval = universe_hash(settings), settings.features.interval
    ids = experiment_ids(settings)
    return [[universe, interval, mode, spec.name, spec.kind, trial_config(settings, mode, spec.config_json()),
             ids[mode], day] for mode in COST_MODES for spec in specs]


def _register_trials(conn: duckdb.DuckDBPyConnection, rows: list[list[Any]]) -> None:
    """Every configuration evaluated, once per universe, interval and cost mode (the first day it
    was tried and the experiment that first tried it kept)."""
    if not rows:
        return
    conn.executemany(
        "INSERT INTO backtest_trials AS t VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (universe, bar_interval, cost_mode, config_json) DO UPDATE SET "
        "first_day = least(t.first_day, excluded.first_day), "
        "experiment_id = CASE WHEN excluded.first_day < t.first_day OR t.experiment_id IS NULL "
        "THEN excluded.experiment_id ELSE t.experiment_id END",
        rows,
    )


def _day_figures(folds: pl.DataFrame, key: str) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for row in folds.filter(pl.col("day").dt.strftime("%Y-%m-%d") == key).iter_rows(named=True):
        mode = row["cost_mode"]
        figures[f"status_{mode}"] = row["status"]
        if row["status"] == "OK":
            figures[f"selected_{mode}"] = row["selected_strategy"]
            figures[f"net_return_day_{mode}"] = row["total_return"]
            figures[f"gross_return_day_{mode}"] = row["gross_return"]
    return figures


def _pnl_output(step: WindowStep, pnl: pl.DataFrame, shaped: Mapping[str, Any]) -> AssetOutput:
    """Bars to write; per day its net return (realistic costs) and the equity and drawdown up to
    that day's end, from the stored out-of-sample days before the window and the window's bars."""
    realistic = pnl.filter(pl.col("cost_mode") == "realistic")
    before = query_frame(step.conn,
        "SELECT CAST(ts AS DATE) AS day, sum(ln(1 + net_return)) AS log_return FROM "
        "(SELECT ts, net_return FROM backtest_pnl WHERE ts < ? AND cost_mode = 'realistic' ORDER BY ts) GROUP BY ALL",
        [step.window.start])
    fresh = (realistic.sort("ts").group_by(pl.col("ts").dt.date().alias("day"), maintain_order=True)
             .agg(pl.col("net_return").log1p().sum().alias("log_return")))
    curve = equity_curve(pl.concat([before, fresh], how="vertical_relaxed").sort("day"))
    keys = set(step.window.keys())
    daily = {
        day.isoformat(): {"net_return_day": r, "equity_to_date": e, "drawdown_to_date_daily": dd}
        for day, r, e, dd in curve.iter_rows() if day.isoformat() in keys
    }
    extra = {}
    if curve.height:
        extra["equity_curve"] = dg.MetadataValue.md(equity_drawdown_png(
            curve["day"].to_list(), curve["equity"].to_list(), curve["drawdown"].to_list(),
            f"Walk-forward out-of-sample equity, realistic costs, to {curve['day'][-1]}: "
            f"{curve['equity'][-1]:.4f}; max daily drawdown {curve['drawdown'].max():.2%}",
        ))
    return AssetOutput([TableWrite("backtest_pnl", pnl, params=shaped)], daily=daily, extra=extra,
                       summary={"oos_days_to_date": curve.height})
