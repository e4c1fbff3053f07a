"""A fold's results as the rows of the backtest tables, for one out-of-sample day.

Every table row of a tested day comes from the bars of that day only; a fold longer than one
day (``test_days > 1``) is computed once and cut into its days. Bars are left-labelled: a row at
``ts`` is the bar ``[ts, ts + interval)``; weights at ``ts`` are held during that bar and were
decided at the close of the bar before (``signal_ts``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from quant_assets.quant.folds import Fold
from quant_assets.quant.strategies import PORTFOLIO, Panel, StrategySpec
from quant_assets.quant.walk_forward import COST_MODES, OK, FoldRun, path_metrics

NOT_IN_FOLD = "NOT_IN_FOLD"
INCOMPLETE = "INCOMPLETE_LOOKBACK"

FOLD_SCHEMA: dict[str, Any] = {
    "day": pl.Datetime("us"), "cost_mode": pl.Utf8, "fold": pl.Utf8, "status": pl.Utf8,
    "train_start": pl.Datetime("us"), "train_end": pl.Datetime("us"), "test_start": pl.Datetime("us"),
    "test_end": pl.Datetime("us"), "train_days_available": pl.Int32, "candidates_tried": pl.Int32,
    "selected_strategy": pl.Utf8, "selected_kind": pl.Utf8, "train_sharpe": pl.Float64, "leverage": pl.Float64,
    "n_bars": pl.Int32, "gross_return": pl.Float64, "cost": pl.Float64, "total_return": pl.Float64,
    "turnover": pl.Float64, "hit_rate": pl.Float64, "max_drawdown": pl.Float64, "sharpe": pl.Float64,
    "sortino": pl.Float64, "calmar": pl.Float64, "cagr": pl.Float64, "annual_volatility": pl.Float64,
    "capped_trades": pl.Int32, "benchmark_market_return": pl.Float64,
    "benchmark_equal_weight_return": pl.Float64, "null_reason": pl.Utf8,
}
PNL_SCHEMA: dict[str, Any] = {
    "ts": pl.Datetime("us"), "cost_mode": pl.Utf8, "fold": pl.Utf8, "strategy": pl.Utf8,
    "gross_return": pl.Float64, "cost": pl.Float64, "net_return": pl.Float64, "turnover": pl.Float64,
    "gross_exposure": pl.Float64, "net_exposure": pl.Float64, "capped": pl.Int32,
    "benchmark_market": pl.Float64, "benchmark_equal_weight": pl.Float64,
}
POSITION_SCHEMA: dict[str, Any] = {
    "ts": pl.Datetime("us"), "cost_mode": pl.Utf8, "fold": pl.Utf8, "strategy": pl.Utf8, "symbol": pl.Utf8,
    "signal_ts": pl.Datetime("us"), "target_weight": pl.Float64, "pre_trade_weight": pl.Float64,
    "weight": pl.Float64,
}
STRATEGY_RETURN_SCHEMA: dict[str, Any] = {
    "ts": pl.Datetime("us"), "cost_mode": pl.Utf8, "fold": pl.Utf8, "strategy": pl.Utf8, "kind": pl.Utf8,
    "gross_return": pl.Float64, "net_return": pl.Float64, "turnover": pl.Float64,
}
WEIGHT_SCHEMA: dict[str, Any] = {
    "ts": pl.Datetime("us"), "fold": pl.Utf8, "strategy": pl.Utf8, "mode": pl.Utf8, "symbol": pl.Utf8,
    "weight": pl.Float64, "solver": pl.Utf8, "status": pl.Utf8,
}


@dataclass(frozen=True)
class DayTables:
    folds: pl.DataFrame
    pnl: pl.DataFrame
    positions: pl.DataFrame
    strategy_returns: pl.DataFrame
    weights: pl.DataFrame


@dataclass(frozen=True)
class Metering:
    bars_per_year: float
    min_bars_for_sharpe: int
    candidates: int


def empty_day(day: datetime, status: str, fold: Fold | None, days_available: int, meter: Metering,
              reason: str) -> DayTables:
    """A day with no trades: a row per cost mode saying why."""
    rows = [_fold_row(day, mode, fold, status, days_available, meter) | {"null_reason": reason} for mode in COST_MODES]
    return DayTables(_frame(rows, FOLD_SCHEMA), *(pl.DataFrame(schema=s) for s in
                     (PNL_SCHEMA, POSITION_SCHEMA, STRATEGY_RETURN_SCHEMA, WEIGHT_SCHEMA)))


def day_tables(panel: Panel, run: FoldRun, fold: Fold, day: datetime, day_end: datetime,
               specs: Mapping[str, StrategySpec], meter: Metering) -> DayTables:
    """The rows of ``[day, day_end)`` of a fold run (``run.status`` OK or SKIPPED)."""
    if run.status != OK:
        return empty_day(day, run.status, fold, run.days_available, meter,
                         f"{run.days_available} training days with values < backtest.min_train_days")
    ts = panel.ts[run.lo:run.hi]
    lo_day, hi_day = (int(np.searchsorted(ts, np.datetime64(t))) for t in (day, day_end))
    test_from = run.split - run.lo
    if lo_day < test_from:
        raise ValueError(f"day {day} starts before the fold's test window")
    days = slice(lo_day, hi_day)
    bench = slice(lo_day - test_from, hi_day - test_from)
    market = run.benchmark_market[bench] if run.benchmark_market is not None else None
    equal = run.benchmark_equal_weight[bench]
    bars = pl.Series("ts", ts[days]).cast(pl.Datetime("us"))
    signal_ts = pl.Series("signal_ts", panel.ts[run.lo - 1 + lo_day: run.lo - 1 + hi_day]).cast(pl.Datetime("us"))
    n = hi_day - lo_day
    folds, pnl, positions = [], [], []
    for mode in COST_MODES:
        chosen = run.selections[mode]
        path = chosen.path
        metrics = path_metrics(path.net[days], path.turnover[days], meter.bars_per_year, meter.min_bars_for_sharpe)
        row = _fold_row(day, mode, fold, OK, run.days_available, meter)
        row.update(
            selected_strategy=chosen.name, selected_kind=specs[chosen.name].kind,
            train_sharpe=_finite(chosen.train_scores[chosen.name]), leverage=chosen.leverage, n_bars=n,
            gross_return=float(np.prod(1 + path.gross[days]) - 1), cost=float(path.cost[days].sum()),
            total_return=metrics["total_return"], turnover=metrics["turnover"], hit_rate=metrics["hit_rate"],
            max_drawdown=metrics["max_drawdown"], sharpe=metrics["sharpe"], sortino=metrics["sortino"],
            calmar=metrics["calmar"], cagr=metrics["cagr"], annual_volatility=metrics["annual_volatility"],
            capped_trades=int(path.capped[days].sum()),
            benchmark_market_return=float(np.prod(1 + market) - 1) if market is not None else None,
            benchmark_equal_weight_return=float(np.prod(1 + equal) - 1), null_reason=metrics["null_reason"],
        )
        folds.append(row)
        pnl.append(pl.DataFrame({
            "ts": bars, "cost_mode": mode, "fold": fold.key, "strategy": chosen.name,
            "gross_return": path.gross[days], "cost": path.cost[days], "net_return": path.net[days],
            "turnover": path.turnover[days], "gross_exposure": np.abs(path.weights[days]).sum(axis=1),
            "net_exposure": path.weights[days].sum(axis=1), "capped": path.capped[days],
            "benchmark_market": market if market is not None else np.full(n, np.nan), "benchmark_equal_weight": equal,
        }).with_columns(pl.col("benchmark_market").fill_nan(None)))
        for j, symbol in enumerate(panel.symbols):
            positions.append(pl.DataFrame({
                "ts": bars, "cost_mode": mode, "fold": fold.key, "strategy": chosen.name, "symbol": symbol,
                "signal_ts": signal_ts, "target_weight": chosen.targets[days, j],
                "pre_trade_weight": path.pre_trade[days, j], "weight": path.weights[days, j],
            }).with_columns(pl.col("target_weight").fill_nan(None)))
    returns, weights = [], []
    for name, strategy in run.runs.items():
        for mode in COST_MODES:
            path = strategy.paths[mode]
            returns.append(pl.DataFrame({
                "ts": bars, "cost_mode": mode, "fold": fold.key, "strategy": name, "kind": strategy.spec.kind,
                "gross_return": path.gross[days], "net_return": path.net[days], "turnover": path.turnover[days],
            }))
        if strategy.spec.kind == PORTFOLIO:
            weights += _rebalance_rows(panel, strategy, fold, run.lo - 1 + lo_day, run.lo - 1 + hi_day)
    return DayTables(
        _frame(folds, FOLD_SCHEMA), _concat(pnl, PNL_SCHEMA), _concat(positions, POSITION_SCHEMA),
        _concat(returns, STRATEGY_RETURN_SCHEMA), _frame(weights, WEIGHT_SCHEMA),
    )


def _rebalance_rows(panel: Panel, strategy: Any, fold: Fold, first: int, last: int) -> list[dict[str, Any]]:
    """Rebalances decided at closes of bars ``[first, last)``: held from the next bar (``ts``)."""
    rows = []
    for rebalance in strategy.decisions.rebalances:
        if first <= rebalance.bar < last:
            held_from = panel.ts[rebalance.bar + 1].astype("datetime64[us]").item()
            rows += [{"ts": held_from, "fold": fold.key, "strategy": strategy.spec.name,
                      "mode": strategy.spec.params["mode"], "symbol": symbol, "weight": float(w),
                      "solver": rebalance.solver, "status": rebalance.status}
                     for symbol, w in zip(panel.symbols, rebalance.weights, strict=True)]
    return rows


def _fold_row(day: datetime, mode: str, fold: Fold | None, status: str, days_available: int,
              meter: Metering) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(FOLD_SCHEMA)
    row.update(day=day, cost_mode=mode, status=status, train_days_available=days_available,
               candidates_tried=meter.candidates, n_bars=0, capped_trades=0)
    if fold is not None:
        row.update(fold=fold.key, train_start=fold.train_start, train_end=fold.train_end,
                   test_start=fold.test_start, test_end=fold.test_end)
    return row


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None


def _frame(rows: list[dict[str, Any]], schema: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


def _concat(frames: list[pl.DataFrame], schema: dict[str, Any]) -> pl.DataFrame:
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat([f.select(list(schema)).cast(schema) for f in frames])
