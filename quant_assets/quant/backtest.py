"""Vectorised portfolio simulation and performance metrics (pure numpy).

Timing convention: bar ``t`` spans ``close[t-1] -> close[t]``. A signal row ``t`` is known
at the close of bar ``t`` and is traded at the start of bar ``t + 1`` (next-bar
execution), so nothing computed here can use information from the future.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["PortfolioPath", "performance_metrics", "select_by_sharpe", "simulate_portfolio"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class PortfolioPath:
    """Result of :func:`simulate_portfolio` (``T`` bars, ``N`` assets).

    Attributes:
        weights: (T, N) weights held during each bar (fraction of equity per asset).
        gross: (T,) portfolio simple return before costs, per bar.
        cost: (T,) trading cost per bar as a fraction of equity.
        net: (T,) ``gross - cost``.
        turnover: (T,) ``sum_j |w[t, j] - w[t-1, j]|`` (fraction of equity traded).
        final_weights: (N,) weights implied by the last signal row, i.e. those to hold
            during the bar after the last one; pass as ``initial_positions`` to the next fold.
    """

    weights: FloatArray
    gross: FloatArray
    cost: FloatArray
    net: FloatArray
    turnover: FloatArray
    final_weights: FloatArray


def simulate_portfolio(
    returns: ArrayLike,
    signals: ArrayLike,
    initial_positions: ArrayLike | None = None,
    fee_bps: float = 10.0,
    slippage_bps: float = 5.0,
    *,
    prior_weights: ArrayLike | None = None,
) -> PortfolioPath:
    """Simulate an equal-risk-budget portfolio with next-bar execution and linear costs.

    Args:
        returns: (T, N) simple returns; ``returns[t, j]`` is asset ``j``'s return over bar
            ``t`` (``close[t-1] -> close[t]``). NaN contributes 0 (asset not tradable).
        signals: (T, N) target positions in [-1, 1]; row ``t`` is known at the close of
            bar ``t``. NaN means flat (0).
        initial_positions: (N,) weights held during bar 0 (e.g. ``final_weights`` of the
            previous fold); default all zeros.
        fee_bps, slippage_bps: one-way costs in basis points of traded notional.
        prior_weights: (N,) weights held during the bar *before* bar 0 (``w[-1]``), used
            only to charge the trade into ``initial_positions`` at bar 0. Default: equal
            to ``initial_positions`` (already held, so ``turnover[0] = 0``). To chain folds
            without losing the boundary trade's cost, pass
            ``initial_positions=prev.final_weights, prior_weights=prev.weights[-1]``.

    Conventions (``N`` assets, ``c = (fee_bps + slippage_bps) / 1e4``):

    * ``w[0] = initial_positions``; ``w[t] = signals[t-1] / N`` for ``t >= 1``;
    * ``turnover[t] = sum_j |w[t, j] - w[t-1, j]|`` with ``w[-1] = prior_weights``
      (default ``initial_positions``, so ``turnover[0] = 0``): trades happen at the start
      of the bar, at its open (= previous close); weights are reset to target every bar
      (intra-bar drift is ignored);
    * ``gross[t] = sum_j w[t, j] * returns[t, j]``; ``cost[t] = turnover[t] * c``;
      ``net[t] = gross[t] - cost[t]``.
    """
    r = np.asarray(returns, dtype=np.float64)
    s = np.asarray(signals, dtype=np.float64)
    if r.ndim != 2:
        raise ValueError(f"returns must be 2-D (T, N), got shape {r.shape}")
    if s.shape != r.shape:
        raise ValueError(f"signals shape {s.shape} != returns shape {r.shape}")
    n_bars, n_assets = r.shape
    if n_assets == 0:
        raise ValueError("returns must have at least one asset column")
    if np.any(np.abs(s[~np.isnan(s)]) > 1.0):
        raise ValueError("signals must lie in [-1, 1] (NaN = flat)")
    if initial_positions is None:
        w0 = np.zeros(n_assets)
    else:
        w0 = np.asarray(initial_positions, dtype=np.float64)
        if w0.shape != (n_assets,):
            raise ValueError(f"initial_positions must have shape ({n_assets},), got {w0.shape}")
        if not np.all(np.isfinite(w0)):
            raise ValueError("initial_positions must be finite")
    if prior_weights is None:
        w_prior = w0
    else:
        w_prior = np.asarray(prior_weights, dtype=np.float64)
        if w_prior.shape != (n_assets,) or not np.all(np.isfinite(w_prior)):
            raise ValueError(f"prior_weights must be finite with shape ({n_assets},)")
    for name, v in (("fee_bps", fee_bps), ("slippage_bps", slippage_bps)):
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be a non-negative finite number, got {v}")

    target = np.nan_to_num(s, nan=0.0) / n_assets  # weights decided at each close
    weights = np.empty_like(r)
    if n_bars:
        weights[0] = w0
        weights[1:] = target[:-1]
    previous = np.vstack([w_prior[None, :], weights[:-1]]) if n_bars else weights
    turnover = np.abs(weights - previous).sum(axis=1)
    gross = (weights * np.nan_to_num(r, nan=0.0)).sum(axis=1)
    cost = turnover * ((fee_bps + slippage_bps) / 1e4)
    net = gross - cost
    final = target[-1].copy() if n_bars else w0.copy()
    return PortfolioPath(
        weights=weights, gross=gross, cost=cost, net=net, turnover=turnover, final_weights=final
    )


def performance_metrics(
    net: ArrayLike,
    bars_per_year: float,
    turnover: ArrayLike | None = None,
    *,
    min_bars_for_sharpe: int = 2,
) -> dict[str, float]:
    """Summary statistics of a per-bar net simple-return series.

    Annualisation: ``A = bars_per_year`` is the number of bars in a 365-day year (crypto
    trades every day: 8,760 for 1h bars, 365 for daily bars), not 252 trading days.

    With ``r`` = ``net`` (length ``n``) and equity ``E_0 = 1, E_t = prod_{i<=t} (1 + r_i)``:

    * ``sharpe`` = ``mean(r) / std(r, ddof=1) * sqrt(A)``; NaN if
      ``n < min_bars_for_sharpe`` (at least 2) or all ``r`` are equal (std 0).
    * ``sortino`` = ``mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(A)``; NaN if
      ``n < min_bars_for_sharpe`` or the downside deviation is 0.
    * ``annual_volatility`` = ``std(r, ddof=1) * sqrt(A)``; NaN if ``n < 2``.
    * ``total_return`` = ``E_n - 1``.
    * ``annual_return`` = ``(1 + total_return)^(A / n) - 1`` (-1 if equity hit <= 0;
      NaN if ``n = 0``); ``cagr`` is the same number under its usual name.
    * ``max_drawdown`` = ``max_t (1 - E_t / max_{s<=t} E_s)`` including ``E_0 = 1``, a
      positive fraction (0.25 = -25 % from peak).
    * ``calmar`` = ``annual_return / max_drawdown``; NaN if ``max_drawdown`` is 0.
    * ``hit_rate`` = ``#(r > 0) / #(r != 0)``; NaN if every bar is 0.
    * ``turnover`` = ``mean(turnover)`` per bar if given, else NaN.
    * ``n_bars`` = ``n``.

    Raises ``ValueError`` if ``net`` contains non-finite values.
    """
    r = np.asarray(net, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"net must be 1-D, got shape {r.shape}")
    if not np.all(np.isfinite(r)):
        raise ValueError("net must be finite")
    if not (math.isfinite(bars_per_year) and bars_per_year > 0):
        raise ValueError(f"bars_per_year must be a positive finite number, got {bars_per_year}")
    if not _is_integer(min_bars_for_sharpe) or min_bars_for_sharpe < 2:
        raise ValueError(f"min_bars_for_sharpe must be an integer >= 2, got {min_bars_for_sharpe!r}")
    n = r.size
    nan = float("nan")
    ann = math.sqrt(bars_per_year)

    sharpe = sortino = volatility = nan
    if n >= 2:
        std = float(r.std(ddof=1))
        volatility = std * ann
    if n >= min_bars_for_sharpe:
        mean = float(r.mean())
        if np.ptp(r) > 0:  # exact test: a constant series has std 0, not rounding noise
            sharpe = mean / std * ann
        downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
        if downside > 0:
            sortino = mean / downside * ann

    equity = np.concatenate([[1.0], np.cumprod(1.0 + r)])
    peak = np.maximum.accumulate(equity)
    drawdown = 1.0 - equity / peak  # peak >= E_0 = 1 > 0
    max_dd = float(drawdown.max())
    total = float(equity[-1] - 1.0)
    if n == 0:
        annual = nan
    elif equity[-1] <= 0:
        annual = -1.0
    else:
        annual = float(equity[-1] ** (bars_per_year / n) - 1.0)
    calmar = annual / max_dd if max_dd > 0 else nan
    nonzero = int(np.count_nonzero(r))
    hit = float(np.count_nonzero(r > 0)) / nonzero if nonzero else nan

    mean_turnover = nan
    if turnover is not None:
        t = np.asarray(turnover, dtype=np.float64)
        if t.shape != r.shape:
            raise ValueError(f"turnover shape {t.shape} != net shape {r.shape}")
        mean_turnover = float(t.mean()) if n else nan

    return {
        "sharpe": sharpe,
        "sortino": sortino,
        "annual_volatility": volatility,
        "max_drawdown": max_dd,
        "calmar": calmar,
        "total_return": total,
        "annual_return": annual,
        "cagr": annual,
        "hit_rate": hit,
        "turnover": mean_turnover,
        "n_bars": float(n),
    }


def _is_integer(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def select_by_sharpe(
    candidate_nets: Mapping[str, ArrayLike], bars_per_year: float
) -> tuple[str, dict[str, float]]:
    """Pick the candidate with the highest Sharpe ratio of its net returns.

    Returns ``(best_name, scores)`` where ``scores[name]`` is the Sharpe ratio of
    :func:`performance_metrics` (NaN kept as NaN). For ranking NaN counts as ``-inf``;
    ties go to the lexicographically smallest name, so the choice is deterministic.
    Raises ``ValueError`` if there are no candidates.
    """
    if not candidate_nets:
        raise ValueError("candidate_nets is empty")
    scores = {
        name: performance_metrics(candidate_nets[name], bars_per_year)["sharpe"]
        for name in sorted(candidate_nets)
    }

    def rank(name: str) -> float:
        value = scores[name]
        return -math.inf if math.isnan(value) else value

    best = max(scores, key=rank)  # scores is in name order and max keeps the first maximum
    return best, scores
