"""Walk-forward backtest: each daily partition is one fold whose out-of-sample window is that day.

The fold trains on the ``train_days`` days before it (rule selection by in-sample Sharpe) and
trades the chosen EMA-crossover rule on its day only, with next-bar execution, fees and
slippage (core in ``quant.walk_forward``). Folds with fewer than ``min_train_days`` days of
signals are recorded as skipped.
"""

from datetime import datetime, timedelta
from typing import Any

import dagster as dg
import numpy as np
import polars as pl

from quant_assets.config import INTERVAL_MINUTES, Settings, bars_per_year
from quant_assets.defs.signals.assets import signal_catalogue
from quant_assets.lib.partitioned import AssetOutput, TableWrite, WindowStep, daily_multi_asset
from quant_assets.lib.plots import equity_drawdown_png
from quant_assets.partitions import training_window_mapping
from quant_assets.quant.equity import equity_curve
from quant_assets.quant.panel import bar_grid, to_wide
from quant_assets.quant.walk_forward import FoldSpec, walk_forward
from quant_assets.resources.tables import ident, query_frame


def load_panel(conn: Any, settings: Settings, start: datetime, end: datetime
               ) -> tuple[pl.Series, np.ndarray, dict[str, np.ndarray]]:
    """Bar grid ``[start, end)``, (T, N) simple returns and (T, N) signals per candidate."""
    interval = settings.features.interval
    grid = bar_grid(start, end, INTERVAL_MINUTES[interval])
    symbols = list(settings.symbols)
    frame = pl.DataFrame({"ts": grid})
    bars = query_frame(conn,
        f"SELECT symbol, ts, exp(log_return) - 1 AS ret FROM {ident('bars_' + interval)} "
        "WHERE ts >= ? AND ts < ? AND list_contains(?, symbol)",
        [start, end, symbols],
    )
    signals = query_frame(conn,
        "SELECT signal_name, symbol, ts, value FROM signals WHERE ts >= ? AND ts < ? AND list_contains(?, symbol)",
        [start, end, symbols],
    )
    names = signal_catalogue(settings).names
    candidates = {name: to_wide(frame, signals.filter(pl.col("signal_name") == name), "value", symbols)
                  for name in names}
    return grid, to_wide(frame, bars, "ret", symbols), candidates


def build_backtest(settings: Settings) -> dg.AssetsDefinition:
    bt = settings.backtest
    interval = settings.features.interval
    step_size = timedelta(minutes=INTERVAL_MINUTES[interval])
    spec = FoldSpec(bt.train_days, bt.min_train_days, bt.fee_bps, bt.slippage_bps, bars_per_year(interval), step_size)
    mapping = training_window_mapping(settings)
    deps = [dg.AssetDep("signals", partition_mapping=mapping), dg.AssetDep(f"bars_{interval}", partition_mapping=mapping)]

    @daily_multi_asset(
        settings,
        name="walk_forward_backtest",
        specs=[
            dg.AssetSpec(
                "backtest_folds",
                group_name="backtests",
                description=(
                    "One row per walk-forward fold (the out-of-sample day): the EMA-crossover rule chosen "
                    f"by Sharpe over the previous {bt.train_days} days, and its out-of-sample Sharpe "
                    "(annualised from the day's bars), Sortino, max drawdown (bar level, fraction), total "
                    f"return, hit rate and turnover after {bt.fee_bps} bps fees + {bt.slippage_bps} bps slippage."
                ),
                deps=deps,
                kinds={"python", "numpy", "duckdb"},
            ),
            dg.AssetSpec(
                "backtest_pnl",
                group_name="backtests",
                description=(
                    f"Out-of-sample per-bar portfolio returns of the walk-forward backtest on {interval} bars: "
                    "gross, cost, net, turnover and gross exposure (fractions of capital). Positions follow "
                    "the signal of the previous bar (next-bar execution), equal risk budget across symbols."
                ),
                deps=deps,
                kinds={"python", "numpy", "duckdb"},
            ),
        ],
    )
    def walk_forward_backtest(step: WindowStep) -> dict[str, AssetOutput]:
        start, end = step.window
        grid, returns, candidates = load_panel(step.conn, settings, start - timedelta(days=bt.train_days) - step_size, end)
        folds, pnl = walk_forward([d.start for d in step.window.days()], grid, returns, candidates, spec)
        params = {"backtest": bt.__dict__, "interval": interval, "signals": signal_catalogue(settings).fingerprint()}
        return {
            "backtest_folds": _folds_output(folds, params),
            "backtest_pnl": _pnl_output(step, pnl, params),
        }

    return walk_forward_backtest


def _folds_output(folds: pl.DataFrame, params: dict[str, Any]) -> AssetOutput:
    daily = {
        row["fold"]: {
            "status": row["status"], "selected_signal": row["selected_signal"],
            "sharpe_annualised": row["sharpe"], "total_return": row["total_return"],
            "max_drawdown_bar_level": row["max_drawdown"], "n_bars": row["n_bars"],
        }
        for row in folds.iter_rows(named=True)
    }
    ok = folds.filter(pl.col("status") == "OK")
    return AssetOutput(
        [TableWrite("backtest_folds", folds, params=params, time_column="test_start")],
        daily=daily,
        summary={"folds_ok": ok.height, "folds_skipped": folds.height - ok.height},
    )


def _pnl_output(step: WindowStep, pnl: pl.DataFrame, params: dict[str, Any]) -> AssetOutput:
    """Bars to write; per day its net return and the equity and drawdown up to that day's end,
    from the stored out-of-sample days before the window and the window's new bars."""
    before = query_frame(step.conn,
        "SELECT CAST(ts AS DATE) AS day, sum(ln(1 + net_return)) AS log_return "
        "FROM backtest_pnl WHERE ts < ? GROUP BY ALL", [step.window.start],
    )
    fresh = pnl.group_by(pl.col("ts").dt.date().alias("day")).agg(pl.col("net_return").log1p().sum().alias("log_return"))
    curve = equity_curve(pl.concat([before, fresh], how="vertical_relaxed"))
    keys = set(step.window.keys())
    daily = {
        day.isoformat(): {"net_return_day": r, "equity_to_date": e, "drawdown_to_date_daily": dd}
        for day, r, e, dd in curve.iter_rows() if day.isoformat() in keys
    }
    extra = {}
    if curve.height:
        extra["equity_curve"] = dg.MetadataValue.md(equity_drawdown_png(
            curve["day"].to_list(), curve["equity"].to_list(), curve["drawdown"].to_list(),
            f"Walk-forward out-of-sample equity, net of costs, to {curve['day'][-1]}: "
            f"{curve['equity'][-1]:.4f}; max daily drawdown {curve['drawdown'].max():.2%}",
        ))
    return AssetOutput([TableWrite("backtest_pnl", pnl, params=params)], daily=daily, extra=extra,
                       summary={"oos_days_to_date": curve.height})
