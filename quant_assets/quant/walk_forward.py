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

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

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
