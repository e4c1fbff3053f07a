"""Tests for quant_assets.quant.backtest: hand-computed paths, no look-ahead, metrics."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from quant_assets.quant.backtest import (
    PortfolioPath,
    performance_metrics,
    select_by_sharpe,
    simulate_portfolio,
)

RETURNS = np.array([[0.01, -0.02], [0.03, 0.01], [-0.01, 0.02]])
SIGNALS = np.array([[1.0, -1.0], [1.0, 0.0], [0.0, 1.0]])


def test_hand_computed_three_bars_two_assets() -> None:
    p = simulate_portfolio(RETURNS, SIGNALS, fee_bps=10.0, slippage_bps=5.0)
    # weights: bar 0 = initial (0); bar t = signals[t-1] / 2
    np.testing.assert_array_equal(p.weights, [[0.0, 0.0], [0.5, -0.5], [0.5, 0.0]])
    np.testing.assert_array_equal(p.turnover, [0.0, 1.0, 0.5])
    # gross[1] = 0.5*0.03 - 0.5*0.01 = 0.01 ; gross[2] = 0.5*(-0.01) = -0.005
    np.testing.assert_allclose(p.gross, [0.0, 0.01, -0.005], rtol=0, atol=1e-15)
    # cost = turnover * 15 bps
    np.testing.assert_allclose(p.cost, [0.0, 0.0015, 0.00075], rtol=0, atol=1e-15)
    np.testing.assert_allclose(p.net, [0.0, 0.0085, -0.00575], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(p.final_weights, [0.0, 0.5])


def test_initial_positions_and_fold_chaining() -> None:
    p = simulate_portfolio(RETURNS, SIGNALS, initial_positions=np.array([0.5, 0.5]))
    # bar 0 held at the initial weights, already paid for: no cost
    assert p.turnover[0] == 0.0 and p.cost[0] == 0.0
    assert p.gross[0] == pytest.approx(0.5 * 0.01 + 0.5 * -0.02, abs=1e-15)
    # bar 1: |0.5 - 0.5| + |-0.5 - 0.5| = 1.0
    assert p.turnover[1] == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize("split", [1, 2])
def test_fold_chaining_equals_one_run(split: int) -> None:
    whole = simulate_portfolio(RETURNS, SIGNALS)
    first = simulate_portfolio(RETURNS[:split], SIGNALS[:split])
    second = simulate_portfolio(
        RETURNS[split:],
        SIGNALS[split:],
        initial_positions=first.final_weights,
        prior_weights=first.weights[-1],
    )
    for field in ("weights", "gross", "cost", "net", "turnover"):
        joined = np.concatenate([getattr(first, field), getattr(second, field)])
        np.testing.assert_array_equal(joined, getattr(whole, field), err_msg=field)
    np.testing.assert_array_equal(second.final_weights, whole.final_weights)
    # without prior_weights the boundary trade is treated as already held (not charged)
    lazy = simulate_portfolio(
        RETURNS[split:], SIGNALS[split:], initial_positions=first.final_weights
    )
    assert lazy.turnover[0] == 0.0
    assert second.turnover[0] == whole.turnover[split] > 0.0


def test_nan_signal_is_flat_and_nan_return_is_zero() -> None:
    r = np.array([[0.01, np.nan], [np.nan, 0.02], [0.04, 0.03]])
    s = np.array([[1.0, np.nan], [1.0, 1.0], [np.nan, np.nan]])
    p = simulate_portfolio(r, s, fee_bps=0.0, slippage_bps=0.0)
    np.testing.assert_array_equal(p.weights, [[0.0, 0.0], [0.5, 0.0], [0.5, 0.5]])
    np.testing.assert_allclose(p.gross, [0.0, 0.0, 0.035], atol=1e-15)
    np.testing.assert_array_equal(p.final_weights, [0.0, 0.0])
    assert np.all(np.isfinite(p.net))


def test_path_is_frozen_and_shapes() -> None:
    p = simulate_portfolio(RETURNS, SIGNALS)
    assert isinstance(p, PortfolioPath)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.net = np.zeros(3)  # type: ignore[misc]
    assert p.weights.shape == (3, 2)
    assert p.gross.shape == p.cost.shape == p.net.shape == p.turnover.shape == (3,)
    assert p.final_weights.shape == (2,)


def test_empty_and_validation() -> None:
    p = simulate_portfolio(np.empty((0, 2)), np.empty((0, 2)), initial_positions=[0.1, 0.2])
    assert p.net.shape == (0,) and p.final_weights.tolist() == [0.1, 0.2]
    with pytest.raises(ValueError, match="shape"):
        simulate_portfolio(RETURNS, SIGNALS[:2])
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        simulate_portfolio(RETURNS, SIGNALS * 2)
    with pytest.raises(ValueError, match="initial_positions"):
        simulate_portfolio(RETURNS, SIGNALS, initial_positions=[0.0])
    with pytest.raises(ValueError, match="fee_bps"):
        simulate_portfolio(RETURNS, SIGNALS, fee_bps=-1.0)


_T, _N = 12, 3


@settings(max_examples=50, deadline=None)
@given(
    returns=arrays(np.float64, (_T, _N), elements=st.floats(-0.2, 0.2)),
    signals=arrays(np.float64, (_T, _N), elements=st.floats(-1.0, 1.0)),
    new_row=arrays(np.float64, (_N,), elements=st.floats(-1.0, 1.0)),
    t=st.integers(min_value=0, max_value=_T - 1),
)
def test_changing_signal_t_never_changes_past_net(
    returns: np.ndarray, signals: np.ndarray, new_row: np.ndarray, t: int
) -> None:
    base = simulate_portfolio(returns, signals)
    changed = signals.copy()
    changed[t] = new_row
    alt = simulate_portfolio(returns, changed)
    np.testing.assert_array_equal(alt.net[: t + 1], base.net[: t + 1])
    np.testing.assert_array_equal(alt.weights[: t + 1], base.weights[: t + 1])
    if t + 1 < _T:  # the change takes effect exactly one bar later
        np.testing.assert_array_equal(alt.weights[t + 1], new_row / _N)


BPY = 252.0


def test_metrics_hand_computed() -> None:
    net = np.array([0.01, -0.01, 0.02, 0.0])
    m = performance_metrics(net, BPY, turnover=np.array([0.0, 1.0, 0.5, 0.5]))
    # mean 0.005, sample std sqrt(500e-6 / 3)
    assert m["sharpe"] == pytest.approx(0.005 / math.sqrt(500e-6 / 3) * math.sqrt(BPY))
    # downside deviation sqrt(0.0001 / 4) = 0.005 -> sortino = sqrt(BPY)
    assert m["sortino"] == pytest.approx(math.sqrt(BPY))
    total = 1.01 * 0.99 * 1.02 - 1.0
    assert m["total_return"] == pytest.approx(total)
    assert m["annual_return"] == pytest.approx((1 + total) ** (BPY / 4) - 1)
    assert m["max_drawdown"] == pytest.approx(0.01)  # 1.01 -> 0.9999
    assert m["calmar"] == pytest.approx(m["annual_return"] / 0.01)
    assert m["hit_rate"] == pytest.approx(2 / 3)
    assert m["turnover"] == pytest.approx(0.5)
    assert m["n_bars"] == 4.0


def test_metrics_constant_positive_returns() -> None:
    m = performance_metrics(np.full(10, 0.01), BPY)
    assert m["max_drawdown"] == 0.0
    assert math.isnan(m["sharpe"]) and math.isnan(m["sortino"]) and math.isnan(m["calmar"])
    assert m["total_return"] == pytest.approx(1.01**10 - 1)
    assert m["hit_rate"] == 1.0
    assert math.isnan(m["turnover"])


def test_metrics_known_drawdown() -> None:
    # equity 1 -> 1.1 -> 0.55 -> 0.66: peak 1.1, trough 0.55
    assert performance_metrics(np.array([0.1, -0.5, 0.2]), BPY)["max_drawdown"] == (
        pytest.approx(0.5)
    )
    # drawdown is measured from the starting equity of 1
    assert performance_metrics(np.array([-0.1, 0.05]), BPY)["max_drawdown"] == pytest.approx(0.1)


def test_metrics_edge_cases() -> None:
    m = performance_metrics(np.array([]), BPY)
    assert m["n_bars"] == 0.0 and m["total_return"] == 0.0 and m["max_drawdown"] == 0.0
    assert math.isnan(m["sharpe"]) and math.isnan(m["annual_return"])
    assert math.isnan(performance_metrics(np.zeros(5), BPY)["hit_rate"])
    assert performance_metrics(np.array([0.5, -1.0]), BPY)["annual_return"] == -1.0
    with pytest.raises(ValueError, match="finite"):
        performance_metrics(np.array([0.1, np.nan]), BPY)


def test_select_by_sharpe() -> None:
    nets = {
        "b": np.array([0.01, 0.02, 0.01]),
        "a": np.array([0.01, 0.02, 0.01]),  # tie with "b": name decides
        "c": np.array([0.01, -0.02, 0.0]),
        "flat": np.zeros(3),  # NaN Sharpe
    }
    best, scores = select_by_sharpe(nets, BPY)
    assert best == "a"
    assert set(scores) == set(nets) and math.isnan(scores["flat"])
    assert scores["a"] == scores["b"] > scores["c"]
    best, _ = select_by_sharpe({"z": np.zeros(3), "y": np.zeros(3)}, BPY)
    assert best == "y"
    with pytest.raises(ValueError):
        select_by_sharpe({}, BPY)
