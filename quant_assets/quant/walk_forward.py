"""One walk-forward fold: every strategy on the training window, the best one out of sample.

Bars ``[lo, split)`` of a :class:`~quant_assets.quant.strategies.Panel` are the fold's training
window and ``[split, hi)`` its out-of-sample (test) window; bar ``lo - 1`` is the close the fold
enters at. For each strategy of the grid (``quant.strategies``) the weights it decides at the
closes of bars ``lo - 1 .. hi - 2`` are traded by the engine (``quant.backtest_engine``) at the
start of the next bar, in both cost modes:

* ``clean``: no costs;
* ``realistic``: fees, half-spread and square-root impact with a participation cap, the volatility
  and dollar volume those need taken from the bar before the trade (known when it is decided).

One simulation covers the whole fold: the test window continues the positions the strategy held
at the end of the training window. Per cost mode the strategy with the best Sharpe of its net
returns over the training bars is selected (``quant.backtest.select_by_sharpe``); with
``sizing = kelly`` its weights are scaled by fractional Kelly from its training net returns
(``portfolio.kelly_fraction``) and it is simulated again. Nothing of the test window reaches a
choice: selection, Kelly and the portfolios' fits read training bars only. The buy-and-hold
benchmarks (the market symbol, and the equal-weighted universe) enter at the test window's first
bar and drift, without costs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quant_assets.quant.backtest import performance_metrics, select_by_sharpe
from quant_assets.quant.backtest_engine import CostModel, WeightPath, simulate_weights
from quant_assets.quant.portfolio import kelly_fraction
from quant_assets.quant.strategies import Decisions, Panel, StrategySpec, decide

OK = "OK"
SKIPPED = "SKIPPED_INSUFFICIENT_HISTORY"
COST_MODES = ("clean", "realistic")


@dataclass(frozen=True)
class FoldSetup:
    """What every fold shares: costs per mode, annualisation, the skip rule, sizing, the market."""

    costs: Mapping[str, CostModel]
    bars_per_year: float
    min_train_days: int
    sizing: str = "unit"
    kelly_fraction: float = 0.5
    max_leverage: float = 1.0
    market_index: int | None = None


@dataclass(frozen=True)
class StrategyRun:
    """One strategy over the fold: its decisions and its path per cost mode (bars ``[lo, hi)``)."""

    spec: StrategySpec
    decisions: Decisions
    paths: Mapping[str, WeightPath]


@dataclass(frozen=True)
class Selection:
    """The strategy a cost mode traded out of sample and why."""

    name: str
    train_scores: Mapping[str, float]
    leverage: float
    path: WeightPath
    targets: np.ndarray  # (hi - lo, N) weights decided at the close before each bar (scaled)


@dataclass(frozen=True)
class FoldRun:
    """A fold's results; bars are indexed from ``lo`` (``split - lo`` training bars first)."""

    status: str
    lo: int
    split: int
    hi: int
    days_available: int
    runs: Mapping[str, StrategyRun] = field(default_factory=dict)
    selections: Mapping[str, Selection] = field(default_factory=dict)
    benchmark_market: np.ndarray | None = None      # (hi - split,) per-bar return
    benchmark_equal_weight: np.ndarray | None = None


def training_days_with_values(panel: Panel, lo: int, split: int) -> int:
    """UTC days of the training bars at which some signal or factor has a value."""
    has = np.zeros(split - lo, dtype=bool)
    for values in (*panel.signals.values(), *panel.factors.values()):
        has |= np.isfinite(values[lo:split]).any(axis=1)
    return len(np.unique(panel.ts[lo:split][has].astype("datetime64[D]")))


def simulate(panel: Panel, targets: np.ndarray, lo: int, hi: int, costs: CostModel) -> WeightPath:
    """The engine over bars ``[lo, hi)``: ``targets[i]`` was decided at the close of bar
    ``lo - 1 + i`` and is traded at the start of bar ``lo + i``; the fold enters holding
    ``targets[0]`` (as if the strategy had been running), and volatility and dollar volume of
    the bar before each trade size its impact and cap."""
    initial = np.nan_to_num(targets[0], nan=0.0)
    return simulate_weights(
        panel.returns[lo:hi], targets, costs=costs,
        volatility=panel.volatility[lo - 1: hi - 1], dollar_volume=panel.dollar_volume[lo - 1: hi - 1],
        initial_weights=initial,
    )


def run_fold(panel: Panel, specs: Sequence[StrategySpec], lo: int, split: int, hi: int, setup: FoldSetup) -> FoldRun:
    """Every strategy over ``[lo, hi)``, the selection per cost mode, and the benchmarks."""
    if not 1 <= lo < split < hi <= panel.returns.shape[0]:
        raise ValueError(f"fold bars lo={lo}, split={split}, hi={hi} do not fit a panel of {panel.returns.shape[0]} bars")
    days = training_days_with_values(panel, lo, split)
    if days < setup.min_train_days or not specs:
        return FoldRun(SKIPPED, lo, split, hi, days)
    runs = {}
    fitted: dict[tuple, dict[str, float]] = {}
    for spec in specs:
        decisions = decide(spec, panel, lo - 1, hi - 1, (lo, split), fitted)
        paths = {mode: simulate(panel, decisions.weights, lo, hi, setup.costs[mode]) for mode in COST_MODES}
        runs[spec.name] = StrategyRun(spec, decisions, paths)
    n_train = split - lo
    selections = {}
    for mode in COST_MODES:
        nets = {name: run.paths[mode].net[:n_train] for name, run in runs.items()}
        best, scores = select_by_sharpe(nets, setup.bars_per_year)
        targets = runs[best].decisions.weights
        path = runs[best].paths[mode]
        leverage = 1.0
        if setup.sizing == "kelly":
            train_net = nets[best]
            leverage = kelly_fraction(float(train_net.mean()), float(train_net.var(ddof=1)),
                                      fraction=setup.kelly_fraction, max_leverage=setup.max_leverage)
            targets = targets * leverage
            path = simulate(panel, targets, lo, hi, setup.costs[mode])
        selections[mode] = Selection(best, scores, leverage, path, targets)
    market, equal = _benchmarks(panel, split, hi, setup)
    return FoldRun(OK, lo, split, hi, days, runs, selections, market, equal)


def _benchmarks(panel: Panel, split: int, hi: int, setup: FoldSetup) -> tuple[np.ndarray | None, np.ndarray]:
    n = panel.returns.shape[1]
    hold = np.full((hi - split, n), np.nan)

    def buy_and_hold(weights: np.ndarray) -> np.ndarray:
        return simulate_weights(panel.returns[split:hi], hold, costs=CostModel.clean(), initial_weights=weights).net

    equal = buy_and_hold(np.full(n, 1.0 / n))
    if setup.market_index is None:
        return None, equal
    one_hot = np.zeros(n)
    one_hot[setup.market_index] = 1.0
    return buy_and_hold(one_hot), equal


ANNUALISED = ("sharpe", "sortino", "calmar", "cagr", "annual_return", "annual_volatility")


def path_metrics(net: np.ndarray, turnover: np.ndarray, bars_per_year: float, min_bars: int) -> dict[str, Any]:
    """:func:`quant.backtest.performance_metrics` with NaN as ``None``; below ``min_bars`` bars no
    annualised figure at all (Sharpe, Sortino, Calmar, CAGR, volatility: annualising a day of
    bars says nothing), and ``null_reason`` says why a figure is missing."""
    metrics = performance_metrics(net, bars_per_year, turnover, min_bars_for_sharpe=min_bars)
    out: dict[str, Any] = {k: (v if math.isfinite(v) else None) for k, v in metrics.items()}
    reason = None
    if net.size < min_bars:
        out.update(dict.fromkeys(ANNUALISED))
        reason = f"{net.size} bars < backtest.min_bars_for_sharpe = {min_bars}: no annualised figures"
    elif out["sharpe"] is None:
        reason = "constant returns: the Sharpe is undefined"
    out["null_reason"] = reason
    return out
