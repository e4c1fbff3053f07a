"""Walk-forward strategies: what each one decides to hold at a bar's close, from data up to it.

A strategy is a point of the configured grid: every signal of the catalogue (a rule, traded on
the whole universe with an equal risk budget: weight ``signal / N`` per symbol, re-set every bar)
and every factor portfolio (an objective, a mode and a risk aversion of ``portfolio.*``). Its
``decide`` gives the weights decided at the close of each bar; the engine trades them at the
start of the next bar (``quant.backtest_engine``), so nothing here sees the bar it trades in.

Factor portfolios (``portfolio``): at each rebalance bar ``t`` (every ``rebalance_bars`` bars,
counted from the UTC epoch, so every fold rebalances at the same closes), with
``h = rebalance_bars``:

* expected returns over the next ``h`` bars: Grinold's ``IC x volatility x score``
  (``portfolio.composite_expected_returns``) with the factors' z-scores at ``t``, each factor's
  information coefficient fitted on the fold's training window (the mean over its bars of the
  rank IC of the factor against the ``h``-bar forward return, counting only forward returns that
  end inside the training window, so the fit never reads the test window), and the volatility
  ``roll_vol[t] * sqrt(h)``;
* covariance over the next ``h`` bars: ``h`` x Ledoit-Wolf of the ``cov_window`` bar returns up to
  ``t`` (trailing, strictly past data);
* betas (beta-neutral) to the equal-weighted universe from that covariance: ``Sigma 1 / (1' Sigma 1)``;
* one cvxpy problem, ``w_prev`` the weights of the previous rebalance (flat at the fold's start);
  ``max_sharpe`` has the turnover cap but no penalty (its homogenised form has no exact one).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import rankdata

from quant_assets.quant.portfolio import (
    composite_expected_returns,
    ledoit_wolf_covariance,
    optimize_weights,
)

FloatArray = NDArray[np.float64]
RULE, PORTFOLIO = "rule", "portfolio"


@dataclass(frozen=True)
class StrategySpec:
    """One configuration the walk-forward tries: a trial of the experiment registry."""

    name: str
    kind: str
    params: Mapping[str, Any]

    def config_json(self) -> str:
        """Canonical JSON of what defines the strategy (its trial identity)."""
        return json.dumps({"kind": self.kind, **self.params}, sort_keys=True, default=str)


@dataclass(frozen=True)
class PortfolioGrid:
    """The factor-portfolio part of the grid and the settings every point shares."""

    factors: tuple[str, ...]
    objectives: tuple[str, ...]
    risk_aversions: tuple[float, ...]
    modes: tuple[str, ...]
    cov_window: int
    rebalance_bars: int
    cap: float
    gross: float
    beta_neutral: bool
    turnover_penalty: float
    turnover_cap: float


def strategy_grid(signal_names: Sequence[str], grid: PortfolioGrid | None) -> list[StrategySpec]:
    """Every strategy: the catalogue's signals, then the portfolios in objective, mode, lambda order.

    ``min_variance`` takes no risk aversion; it and ``max_sharpe`` are long-only (a market-neutral
    minimum-variance portfolio is flat).
    """
    specs = [StrategySpec(name, RULE, {"signal": name}) for name in signal_names]
    if grid is None or not grid.factors:
        return specs
    shared = {
        "factors": list(grid.factors), "cov_window": grid.cov_window, "rebalance_bars": grid.rebalance_bars,
        "cap": grid.cap, "gross": grid.gross, "beta_neutral": grid.beta_neutral,
        "turnover_penalty": grid.turnover_penalty, "turnover_cap": grid.turnover_cap,
    }
    for objective in grid.objectives:
        for mode in grid.modes:
            if objective in ("max_sharpe", "min_variance") and mode != "long_only":
                continue  # max_sharpe is long-only; a market-neutral minimum variance is flat
            lambdas: tuple[float | None, ...] = grid.risk_aversions if objective == "mean_variance" else (None,)
            for lam in lambdas:
                name = f"pf_{objective}_{mode}" + (f"_l{lam:g}" if lam is not None else "")
                params = {**shared, "objective": objective, "mode": mode, "risk_aversion": lam}
                specs.append(StrategySpec(name, PORTFOLIO, params))
    return specs


@dataclass(frozen=True)
class Panel:
    """Bars ``0..T-1`` of one grid (``ts`` their open times) and ``N`` symbols.

    ``returns[t, j]``: simple return over bar ``t``; ``volatility[t, j]``: std of per-bar log
    returns known at bar ``t``'s close (``bars.roll_vol``); ``dollar_volume[t, j]``: quote volume
    traded in bar ``t``; ``signals[name]`` and ``factors[name]``: values known at bar ``t``'s
    close. NaN where a value is missing.
    """

    ts: NDArray[np.datetime64]
    symbols: tuple[str, ...]
    interval_minutes: int
    returns: FloatArray
    volatility: FloatArray
    dollar_volume: FloatArray
    signals: Mapping[str, FloatArray] = field(default_factory=dict)
    factors: Mapping[str, FloatArray] = field(default_factory=dict)


@dataclass(frozen=True)
class Rebalance:
    """One solve: at the close of bar ``bar``, the weights decided and how the solver fared."""

    bar: int
    weights: FloatArray
    solver: str
    status: str


@dataclass(frozen=True)
class Decisions:
    """Weights decided at the close of bars ``first..last-1`` (row ``i`` for bar ``first + i``);
    an all-NaN row: no rebalance at that close (the weights drift)."""

    first: int
    weights: FloatArray
    rebalances: tuple[Rebalance, ...] = ()


def decide(spec: StrategySpec, panel: Panel, first: int, last: int, train: tuple[int, int],
           fitted: dict[tuple, dict[str, float]] | None = None) -> Decisions:
    """The weights ``spec`` decides at the close of bars ``[first, last)``; fitting reads only the
    training bars ``train = [lo, split)`` (and, for covariance, the ``cov_window`` bars up to each
    decision). ``fitted`` keeps the training ICs between the strategies of one fold and panel
    (they share them), so they are fitted once."""
    if not 0 <= first < last <= panel.returns.shape[0]:
        raise ValueError(f"decision bars [{first}, {last}) fall outside the panel of {panel.returns.shape[0]} bars")
    if spec.kind == RULE:
        signal = panel.signals[spec.params["signal"]][first:last]
        return Decisions(first, np.nan_to_num(signal, nan=0.0) / panel.returns.shape[1])
    if spec.kind == PORTFOLIO:
        return _decide_portfolio(spec.params, panel, first, last, train, {} if fitted is None else fitted)
    raise ValueError(f"unknown strategy kind {spec.kind!r}")


def rebalance_bars(panel: Panel, first: int, last: int, every: int) -> list[int]:
    """Bars in ``[first, last)`` whose close falls on a multiple of ``every`` bars since the epoch,
    plus ``first`` itself (a fold enters at its first decision)."""
    minutes = panel.ts[first:last].astype("datetime64[m]").astype(np.int64) + panel.interval_minutes
    on_grid = np.flatnonzero(minutes % (every * panel.interval_minutes) == 0) + first
    return sorted({first, *on_grid.tolist()})


def training_ics(panel: Panel, factors: Sequence[str], train: tuple[int, int], horizon: int) -> dict[str, float]:
    """Per factor: mean over the training bars of the cross-sectional rank IC (Spearman, average
    ranks, >= 3 symbols with both values and not constant) between its value at bar ``s`` and
    the forward simple return over bars ``s+1..s+h``, for ``s + h < split`` (inside the window).
    0 when no bar qualifies."""
    lo, split = train
    last = split - horizon  # bars s in [lo, last) have their forward return inside the window
    if last <= lo:
        return dict.fromkeys(factors, 0.0)
    r = panel.returns[lo:split]
    m = r.shape[0]
    zeros = np.zeros((1, r.shape[1]))
    log_growth = np.vstack([zeros, np.cumsum(np.log1p(np.where(np.isfinite(r), r, 0.0)), axis=0)])
    gaps = np.vstack([zeros, np.cumsum(~np.isfinite(r), axis=0)])
    forward = np.expm1(log_growth[horizon + 1: m + 1] - log_growth[1: m - horizon + 1])
    forward[(gaps[horizon + 1: m + 1] - gaps[1: m - horizon + 1]) > 0] = np.nan  # never across a gap
    return {name: _mean_rank_ic(panel.factors[name][lo:last], forward) for name in factors}


def _mean_rank_ic(values: FloatArray, forward: FloatArray) -> float:
    """Mean over rows of the Spearman correlation (Pearson on average ranks) of the pairs where
    both are finite; a row counts with >= 3 pairs and neither side constant."""
    ok = np.isfinite(values) & np.isfinite(forward)
    if not ok.any():
        return 0.0
    x = rankdata(np.where(ok, values, np.nan), axis=1, nan_policy="omit")
    y = rankdata(np.where(ok, forward, np.nan), axis=1, nan_policy="omit")
    n = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        dx = np.where(ok, x - np.nanmean(x, axis=1, keepdims=True), 0.0)
        dy = np.where(ok, y - np.nanmean(y, axis=1, keepdims=True), 0.0)
        sxx, syy = (dx * dx).sum(axis=1), (dy * dy).sum(axis=1)
        ic = (dx * dy).sum(axis=1) / np.sqrt(sxx * syy)
    valid = (n >= 3) & (sxx > 0) & (syy > 0)  # equal values share one rank: a constant side has sxx == 0
    return float(ic[valid].mean()) if valid.any() else 0.0


def _decide_portfolio(params: Mapping[str, Any], panel: Panel, first: int, last: int,
                      train: tuple[int, int], fitted: dict[tuple, dict[str, float]]) -> Decisions:
    n = panel.returns.shape[1]
    factors = list(params["factors"])
    horizon = int(params["rebalance_bars"])
    key = (tuple(factors), train, horizon)
    if key not in fitted:
        fitted[key] = training_ics(panel, factors, train, horizon)
    ics = fitted[key]
    ic_vector = np.array([ics[f] for f in factors])
    decided = np.full((last - first, n), np.nan)
    previous = np.zeros(n)
    rebalances = []
    for bar in rebalance_bars(panel, first, last, horizon):
        history = panel.returns[max(0, bar - int(params["cov_window"]) + 1): bar + 1]
        complete = history[np.isfinite(history).all(axis=1)]
        if complete.shape[0] < max(2, n):  # too little history for a covariance: stay where we are
            rebalances.append(Rebalance(bar, previous.copy(), "none", "insufficient history: kept previous"))
            decided[bar - first] = previous
            continue
        covariance = ledoit_wolf_covariance(complete) * horizon
        exposures = np.column_stack([panel.factors[f][bar] for f in factors])
        mu = composite_expected_returns(exposures, ic_vector, panel.volatility[bar] * np.sqrt(horizon))
        ones = np.ones(n)
        betas = covariance @ ones / float(ones @ covariance @ ones) if params["beta_neutral"] else None
        result = optimize_weights(
            objective=params["objective"], expected_returns=mu, covariance=covariance,
            risk_aversion=float(params["risk_aversion"] or 1.0), long_only=params["mode"] == "long_only",
            cap=float(params["cap"]), gross=float(params["gross"]),
            betas=betas if params["mode"] != "long_only" else None, previous=previous,
            turnover_penalty=0.0 if params["objective"] == "max_sharpe" else float(params["turnover_penalty"]),
            turnover_cap=float(params["turnover_cap"]),
        )
        previous = result.weights
        decided[bar - first] = previous
        rebalances.append(Rebalance(bar, previous.copy(), result.solver, result.status))
    return Decisions(first, decided, tuple(rebalances))
