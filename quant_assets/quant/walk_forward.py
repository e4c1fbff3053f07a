"""One walk-forward fold: choose a rule on the training window, trade it out of sample.

Arrays share one bar grid of ``T`` bars and ``N`` symbols; bars ``[0, split)`` are the
training window and ``[split, T)`` the out-of-sample (test) window. Every candidate rule is
simulated over the training window with :func:`~quant_assets.quant.backtest.simulate_portfolio`
(next-bar execution, fees and slippage); the rule with the best in-sample Sharpe is then
traded over the test window only. The test window enters holding the position the chosen
rule held after the last training bar, as if the rule had been running (no switching cost
is charged between folds). Nothing in the test window influences the choice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from quant_assets.quant.backtest import (
    PortfolioPath,
    performance_metrics,
    select_by_sharpe,
    simulate_portfolio,
)

OK = "OK"
SKIPPED = "SKIPPED_INSUFFICIENT_HISTORY"


@dataclass(frozen=True)
class FoldOutcome:
    status: str
    selected: str | None = None
    train_scores: dict[str, float] = field(default_factory=dict)
    test_path: PortfolioPath | None = None
    test_metrics: dict[str, float] = field(default_factory=dict)


def _entry_weights(signal_row: np.ndarray) -> np.ndarray:
    return np.nan_to_num(signal_row, nan=0.0) / signal_row.shape[0]


def run_fold(
    returns: np.ndarray,
    candidates: Mapping[str, np.ndarray],
    entry_signals: Mapping[str, np.ndarray],
    split: int,
    bars_per_year: float,
    fee_bps: float,
    slippage_bps: float,
) -> FoldOutcome:
    """Select on ``[0, split)``, trade on ``[split, T)``.

    ``returns`` is (T, N) simple returns per bar; ``candidates[name]`` (T, N) signals in
    [-1, 1] known at each bar's close (NaN = no signal yet); ``entry_signals[name]`` (N,)
    is that rule's signal at the bar before the grid starts (held during bar 0).
    """
    if not 0 < split < returns.shape[0]:
        raise ValueError(f"split {split} must fall inside the grid of {returns.shape[0]} bars")
    train_nets = {
        name: simulate_portfolio(
            returns[:split], signals[:split], _entry_weights(entry_signals[name]), fee_bps, slippage_bps
        ).net
        for name, signals in candidates.items()
    }
    selected, scores = select_by_sharpe(train_nets, bars_per_year)
    chosen = candidates[selected]
    path = simulate_portfolio(
        returns[split:], chosen[split:], _entry_weights(chosen[split - 1]), fee_bps, slippage_bps
    )
    metrics = performance_metrics(path.net, bars_per_year, path.turnover)
    return FoldOutcome(OK, selected, scores, path, metrics)


FOLD_COLUMNS = (
    "fold", "status", "train_start", "train_end", "test_start", "test_end", "train_days_available",
    "selected_signal", "train_sharpe", "candidates_tried", "sharpe", "sortino", "max_drawdown",
    "total_return", "hit_rate", "turnover", "n_bars", "fee_bps", "slippage_bps",
)
FOLD_SCHEMA = {
    "fold": pl.Utf8, "status": pl.Utf8, "train_start": pl.Datetime("us"), "train_end": pl.Datetime("us"),
    "test_start": pl.Datetime("us"), "test_end": pl.Datetime("us"), "train_days_available": pl.Int32,
    "selected_signal": pl.Utf8, "train_sharpe": pl.Float64, "candidates_tried": pl.Int32,
    "sharpe": pl.Float64, "sortino": pl.Float64, "max_drawdown": pl.Float64, "total_return": pl.Float64,
    "hit_rate": pl.Float64, "turnover": pl.Float64, "n_bars": pl.Int32, "fee_bps": pl.Float64,
    "slippage_bps": pl.Float64,
}
PNL_SCHEMA = {
    "fold": pl.Utf8, "ts": pl.Datetime("us"), "gross_return": pl.Float64, "cost": pl.Float64,
    "net_return": pl.Float64, "turnover": pl.Float64, "gross_exposure": pl.Float64,
}


@dataclass(frozen=True)
class FoldSpec:
    """How folds are cut and traded: training days, the minimum with signals, costs, annualisation."""

    train_days: int
    min_train_days: int
    fee_bps: float
    slippage_bps: float
    bars_per_year: float
    step: timedelta


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def fold_on_grid(
    day: datetime,
    grid: pl.Series,
    returns: np.ndarray,
    candidates: dict[str, np.ndarray],
    spec: FoldSpec,
) -> tuple[dict[str, Any], pl.DataFrame | None]:
    """The fold whose out-of-sample window is ``day``: its ``backtest_folds`` row and its bars.

    ``grid`` is the bar grid of ``returns`` and each candidate's (T, N) signals; it starts one
    bar before the first training day (that bar's signals are the entry positions). The fold
    trains on the ``train_days`` days before ``day``; with fewer than ``min_train_days`` days of
    signals it is skipped (no bars).
    """
    train_start, test_end = day - timedelta(days=spec.train_days), day + timedelta(days=1)
    ts = grid.to_numpy()
    lo = int(np.searchsorted(ts, np.datetime64(train_start - spec.step)))
    split = int(np.searchsorted(ts, np.datetime64(day)))
    hi = int(np.searchsorted(ts, np.datetime64(test_end)))
    train_mask = np.zeros(len(ts), dtype=bool)
    train_mask[lo + 1:split] = True
    with_signal = np.zeros(len(ts), dtype=bool)
    for signals in candidates.values():
        with_signal |= ~np.isnan(signals).all(axis=1)
    days_available = len({str(t)[:10] for t in ts[train_mask & with_signal]})
    row: dict[str, Any] = {
        "fold": day.date().isoformat(), "status": SKIPPED, "train_start": train_start, "train_end": day,
        "test_start": day, "test_end": test_end, "train_days_available": days_available,
        "selected_signal": None, "train_sharpe": None, "candidates_tried": len(candidates),
        "sharpe": None, "sortino": None, "max_drawdown": None, "total_return": None,
        "hit_rate": None, "turnover": None, "n_bars": 0, "fee_bps": spec.fee_bps,
        "slippage_bps": spec.slippage_bps,
    }
    if days_available < spec.min_train_days:
        return row, None
    window = {name: s[lo + 1:hi] for name, s in candidates.items()}
    entry = {name: s[lo] for name, s in candidates.items()}
    outcome = run_fold(
        returns[lo + 1:hi], window, entry, split - lo - 1, spec.bars_per_year, spec.fee_bps, spec.slippage_bps
    )
    path, metrics = outcome.test_path, outcome.test_metrics
    assert path is not None and outcome.selected is not None
    row.update(
        status=outcome.status, selected_signal=outcome.selected,
        train_sharpe=_finite_or_none(outcome.train_scores[outcome.selected]),
        sharpe=_finite_or_none(metrics["sharpe"]), sortino=_finite_or_none(metrics["sortino"]),
        max_drawdown=_finite_or_none(metrics["max_drawdown"]),
        total_return=_finite_or_none(metrics["total_return"]),
        hit_rate=_finite_or_none(metrics["hit_rate"]), turnover=_finite_or_none(metrics["turnover"]),
        n_bars=int(metrics["n_bars"]),
    )
    bars = pl.DataFrame(
        {
            "fold": [row["fold"]] * path.net.shape[0],
            "ts": grid[split:hi],
            "gross_return": path.gross, "cost": path.cost, "net_return": path.net,
            "turnover": path.turnover, "gross_exposure": np.abs(path.weights).sum(axis=1),
        },
        schema=PNL_SCHEMA,
    )
    return row, bars


def walk_forward(
    days: list[datetime], grid: pl.Series, returns: np.ndarray, candidates: dict[str, np.ndarray], spec: FoldSpec
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every fold of ``days``: the ``backtest_folds`` rows and the ``backtest_pnl`` bars."""
    folds, pnl = [], []
    for day in days:
        fold, bars = fold_on_grid(day, grid, returns, candidates, spec)
        folds.append(fold)
        if bars is not None:
            pnl.append(bars)
    folds_frame = pl.DataFrame(folds, schema_overrides=FOLD_SCHEMA, orient="row").select(FOLD_COLUMNS)
    return folds_frame, pl.concat(pnl) if pnl else pl.DataFrame(schema=PNL_SCHEMA)
