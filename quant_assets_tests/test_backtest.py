"""Tests for quant_assets.quant.backtest: metrics and the choice among candidates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quant_assets.quant.backtest import performance_metrics, select_by_sharpe

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
