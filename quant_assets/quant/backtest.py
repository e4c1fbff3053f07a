"""Performance metrics of a per-bar return path and the choice among candidates (pure numpy).

The paths come from the engine (``quant.backtest_engine``): bar ``t`` spans
``close[t-1] -> close[t]`` and its weights were decided at the close of bar ``t - 1``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["performance_metrics", "select_by_sharpe"]

FloatArray = NDArray[np.float64]


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
