"""simulate_weights and performance_metrics against vectorbt 1.2.0 on the same inputs.

Mapping. vectorbt fills an order at the close of its own row: with ``close`` rows ``0..T``
(``close[0] = 100``, ``close[t + 1] = close[t] * (1 + returns[t])``), vectorbt's size row ``t``
trades at ``close[t]`` and is held over our bar ``t`` (``close[t] -> close[t + 1]``), so it is our
``targets`` row ``t``; its last row has no order. Its pre-trade value at row ``t`` (``value[t]``
plus the fees paid at row ``t``; ``update_value=False`` sizes every order of a row on that value)
is ``init_cash * equity[t - 1]``, and its asset values over that pre-trade value are our weights.

With fees, vectorbt pays them out of cash and cuts the last buy of a row when cash would go
negative; our first-order accounting lets cash go negative by the fee. So the two agree to
rounding whenever vectorbt's cash stays non-negative (10 % cash, market-neutral books) and to a
derived first-order bound when fully invested (see :func:`test_fully_invested_with_fees_within_bound`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import vectorbt as vbt

from quant_assets.quant.backtest import performance_metrics
from quant_assets.quant.backtest_engine import CostModel, simulate_weights

T, N = 400, 6
FEE = 0.001  # 10 bps
INIT_CASH = 100.0


def _returns(seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    market = rng.standard_t(4, (T, 1)) * 0.006
    return market + rng.standard_t(4, (T, N)) * 0.01


def _long_only(seed: int, invested: float = 1.0) -> np.ndarray:
    w = np.random.default_rng(seed).random((T, N))
    return invested * w / w.sum(axis=1, keepdims=True)


def _market_neutral(seed: int) -> np.ndarray:
    w = np.random.default_rng(seed).normal(size=(T, N))
    w -= w.mean(axis=1, keepdims=True)
    return w / np.abs(w).sum(axis=1, keepdims=True)  # gross 1: long 0.5, short 0.5


def _vectorbt(returns: np.ndarray, targets: np.ndarray, fee: float) -> tuple[np.ndarray, np.ndarray, float]:
    """vectorbt's pre-trade equity (T + 1,), weights (T, N) and total return on our inputs."""
    n_bars, n_assets = returns.shape
    index = pd.date_range("2024-01-01", periods=n_bars + 1, freq="1h")
    close = np.vstack([np.full((1, n_assets), 100.0), 100.0 * np.cumprod(1.0 + returns, axis=0)])
    size = np.vstack([targets, np.full((1, n_assets), np.nan)])
    portfolio = vbt.Portfolio.from_orders(
        pd.DataFrame(close, index=index), size=pd.DataFrame(size, index=index),
        size_type="targetpercent", direction="both", group_by=True, cash_sharing=True,
        call_seq="auto", fees=fee, init_cash=INIT_CASH, freq="1h",
    )
    orders = portfolio.orders.records
    fees = np.bincount(orders["idx"], weights=orders["fees"], minlength=n_bars + 1)
    pre_trade = portfolio.value().to_numpy() + fees
    weights = portfolio.asset_value(group_by=False).to_numpy()[:-1] / pre_trade[:-1, None]
    return pre_trade / INIT_CASH, weights, float(portfolio.total_return())


def _ours(returns: np.ndarray, targets: np.ndarray, fee: float):
    return simulate_weights(returns, targets, costs=CostModel(fee_bps=fee * 1e4))


@pytest.mark.parametrize("book", ["long_only", "market_neutral"])
def test_no_fees_equal_to_rounding(book: str) -> None:
    returns = _returns()
    targets = _long_only(1) if book == "long_only" else _market_neutral(1)
    ours = _ours(returns, targets, 0.0)
    pre_trade, weights, total = _vectorbt(returns, targets, 0.0)
    # measured: value path <= 3.8e-15, weights <= 1.1e-15, total return <= 9.4e-16
    np.testing.assert_allclose(pre_trade[1:], ours.equity, rtol=0, atol=1e-12)
    np.testing.assert_allclose(weights, ours.weights, rtol=0, atol=1e-12)
    assert abs(total - (ours.equity[-1] - 1.0)) < 1e-12


@pytest.mark.parametrize("book", ["cash_10pct", "market_neutral"])
def test_fees_equal_when_cash_stays_positive(book: str) -> None:
    returns = _returns(8)
    targets = _long_only(2, invested=0.9) if book == "cash_10pct" else _market_neutral(2)
    ours = _ours(returns, targets, FEE)
    pre_trade, weights, total = _vectorbt(returns, targets, FEE)
    assert ours.cost.sum() > 0.1  # the fees matter: 400 bars of ~0.5-1 turnover at 10 bps
    np.testing.assert_allclose(pre_trade[1:], ours.equity, rtol=0, atol=1e-12)
    np.testing.assert_allclose(weights, ours.weights, rtol=0, atol=1e-12)
    assert abs(total - (ours.equity[-1] - 1.0)) < 1e-12


def test_fully_invested_with_fees_within_bound() -> None:
    """Fully invested long-only with 10 bps fees: the difference is second order in the fee.

    Ours at bar t: positions ``w_j E``, cash ``-c_t E`` (fee rate ``f``, ``c_t = f * turnover_t``).
    vectorbt cannot borrow the fee: it cuts its last buy (column ``j*``) by ``d_t`` of equity with
    ``d_t (1 + f) = c_t`` to first order, so ``d_t <= f * turnover_t``. Its bar return then differs
    from ours by ``d_t * r_{t,j*}`` (the cut part sits in cash) plus its fee on a trade that
    differs by at most ``d_t`` (the part not bought) and ``d_{t-1}`` (the part bought back now):

        |net_t(vbt) - net_t(ours)| <= f * turnover_t * max_j |r_tj| + f^2 * (turnover_t + turnover_{t-1})

    to first order in ``f`` (asserted with 10 % slack), and over the path the total returns differ by
    at most the sum of those bounds times the largest equity. Measured here: the worst bar 1.14e-4
    against its bound of 1.14e-4 (largest gap / bound over bars 0.999: the bound is tight when the
    cut column is the bar's largest mover), total return 4.1e-4 against 8.2e-3 (signs cancel).
    """
    returns = _returns(9)
    targets = _long_only(3)
    ours = _ours(returns, targets, FEE)
    pre_trade, _, total = _vectorbt(returns, targets, FEE)
    vbt_net = pre_trade[1:] / pre_trade[:-1] - 1.0
    previous_turnover = np.concatenate([[0.0], ours.turnover[:-1]])
    bound = FEE * ours.turnover * np.abs(returns).max(axis=1) + FEE**2 * (ours.turnover + previous_turnover)
    gap = np.abs(vbt_net - ours.net)
    assert gap.max() > 1e-7  # the case does exercise vectorbt's cash limit
    assert np.all(gap <= 1.1 * bound + 1e-13)
    total_gap = abs(total - (ours.equity[-1] - 1.0))
    assert total_gap <= 1.1 * bound.sum() * max(ours.equity.max(), 1.0)


def test_rebalance_every_k_bars_with_drift() -> None:
    """NaN rows hold (vectorbt: size NaN = no order); a NaN entry skips one symbol's trade."""
    returns = _returns(10)
    targets = _long_only(4, invested=0.9)
    targets[np.arange(T) % 5 != 0] = np.nan
    targets[10, 2] = np.nan
    ours = _ours(returns, targets, FEE)
    pre_trade, weights, total = _vectorbt(returns, targets, FEE)
    assert np.all(ours.turnover[np.arange(T) % 5 != 0] == 0.0) and ours.traded[10, 2] == 0.0
    assert not np.allclose(ours.weights[1:5], ours.weights[0])  # the weights did drift
    np.testing.assert_allclose(pre_trade[1:], ours.equity, rtol=0, atol=1e-12)
    np.testing.assert_allclose(weights, ours.weights, rtol=0, atol=1e-12)
    assert abs(total - (ours.equity[-1] - 1.0)) < 1e-12


def test_metrics_equal_vectorbt_returns_accessor() -> None:
    """Sharpe, Sortino, volatility, CAGR, drawdown and total return on a 365-day year of 1h bars."""
    net = _ours(_returns(11), _long_only(5), FEE).net
    ours = performance_metrics(net, 8760.0)
    accessor = pd.Series(net, index=pd.date_range("2024-01-01", periods=T, freq="1h")).vbt.returns(
        freq="1h", year_freq="365D")
    assert ours["sharpe"] == pytest.approx(accessor.sharpe_ratio(), rel=1e-12)
    assert ours["sortino"] == pytest.approx(accessor.sortino_ratio(), rel=1e-12)
    assert ours["annual_volatility"] == pytest.approx(accessor.annualized_volatility(), rel=1e-12)
    assert ours["cagr"] == pytest.approx(accessor.annualized(), rel=1e-12)
    assert ours["total_return"] == pytest.approx(accessor.total(), rel=1e-12)
    assert ours["max_drawdown"] == pytest.approx(-accessor.max_drawdown(), rel=1e-12)
    assert math.isfinite(ours["sharpe"])
