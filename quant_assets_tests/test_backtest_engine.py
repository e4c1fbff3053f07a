"""Tests for quant_assets.quant.backtest_engine (hand-computed paths, properties) and the
annualised metrics added to quant_assets.quant.backtest.performance_metrics.

The hand cases are worked in money (quote currency per unit of starting equity): positions and
cash move with prices, and weights are positions over equity, so each number can be checked with
a pencil. The comparison with vectorbt lives in test_backtest_vectorbt.py.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from quant_assets.quant.backtest import performance_metrics
from quant_assets.quant.backtest_engine import CostModel, WeightPath, simulate_weights

NAN = math.nan
RETURNS = np.array([[0.10, -0.05], [0.02, 0.04], [-0.01, 0.03]])
EXACT = {"rtol": 0, "atol": 1e-15}


def test_drift_without_rebalancing_hand_computed() -> None:
    targets = np.array([[0.5, 0.3], [NAN, NAN], [NAN, NAN]])  # trade once, then hold
    p = simulate_weights(RETURNS, targets)
    # money: A 0.5 -> 0.55 -> 0.561 -> 0.55539 ; B 0.3 -> 0.285 -> 0.2964 -> 0.305292 ; cash 0.2
    a, b = [0.5, 0.55, 0.561, 0.55539], [0.3, 0.285, 0.2964, 0.305292]
    equity = [a[k] + b[k] + 0.2 for k in range(1, 4)]
    np.testing.assert_allclose(p.equity, equity, **EXACT)
    np.testing.assert_allclose(p.weights, [[0.5, 0.3]] + [[a[k] / equity[k - 1], b[k] / equity[k - 1]]
                                                         for k in (1, 2)], **EXACT)
    np.testing.assert_allclose(p.pre_trade[0], [0.0, 0.0], **EXACT)
    np.testing.assert_allclose(p.pre_trade[1:], p.weights[1:], **EXACT)  # nothing traded
    np.testing.assert_allclose(p.final_weights, [a[3] / equity[2], b[3] / equity[2]], **EXACT)
    np.testing.assert_allclose(p.turnover, [0.8, 0.0, 0.0], **EXACT)
    np.testing.assert_allclose(p.gross, [0.035, 0.0224 / 1.035, 0.003282 / 1.0574], **EXACT)
    np.testing.assert_array_equal(p.cost, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(p.net, p.gross)
    np.testing.assert_array_equal(p.capped, [0, 0, 0])


def test_fee_spread_and_turnover_hand_computed() -> None:
    targets = np.array([[0.5, 0.5], [0.2, 0.6], [NAN, 0.5]])  # NaN: no trade in A at bar 2
    rate = (10.0 + 5.0) / 1e4
    p = simulate_weights(RETURNS, targets, costs=CostModel(fee_bps=10.0, half_spread_bps=5.0))
    # bar 0: buy 0.5 + 0.5 of equity 1; fees are paid from cash (which goes to -0.0015)
    e0 = 1.0 + 0.5 * 0.10 + 0.5 * -0.05 - rate
    a0, b0 = 0.55, 0.475  # positions at the close of bar 0
    # bar 1: trade to 0.2 / 0.6 of e0
    a1, b1 = 0.2 * e0, 0.6 * e0
    traded1 = (a1 - a0) + 0.0, (b1 - b0)
    money1 = abs(traded1[0]) + abs(traded1[1])
    e1 = e0 + a1 * 0.02 + b1 * 0.04 - rate * money1
    # bar 2: A drifts untouched, B traded to 0.5 of e1
    a2, b2_pre, b2 = a1 * 1.02, b1 * 1.04, 0.5 * e1
    e2 = e1 + a2 * -0.01 + b2 * 0.03 - rate * abs(b2 - b2_pre)
    np.testing.assert_allclose(p.turnover, [1.0, money1 / e0, abs(b2 - b2_pre) / e1], **EXACT)
    np.testing.assert_allclose(p.cost, [rate, rate * money1 / e0, rate * abs(b2 - b2_pre) / e1],
                               **EXACT)
    np.testing.assert_allclose(p.equity, [e0, e1, e2], **EXACT)
    np.testing.assert_allclose(p.traded, [[0.5, 0.5], [traded1[0] / e0, traded1[1] / e0],
                                          [0.0, (b2 - b2_pre) / e1]], **EXACT)
    np.testing.assert_allclose(p.weights, [[0.5, 0.5], [0.2, 0.6], [a2 / e1, 0.5]], **EXACT)
    np.testing.assert_allclose(p.pre_trade, [[0.0, 0.0], [a0 / e0, b0 / e0], [a2 / e1, b2_pre / e1]],
                               **EXACT)
    np.testing.assert_allclose(p.net, p.gross - p.cost, **EXACT)


def test_square_root_impact_hand_computed() -> None:
    volatility = np.array([[0.02, 0.01], [0.03, 0.01], [0.02, 0.02]])
    volume = np.array([[1e7, 4e6], [2e7, 4e6], [1e7, 1e7]])
    targets = np.array([[0.5, 0.4], [0.3, 0.4], [0.3, 0.1]])
    costs = CostModel(fee_bps=2.0, impact_k=0.5, capital=1e6)
    p = simulate_weights(RETURNS, targets, costs=costs, volatility=volatility, dollar_volume=volume)

    def cost_of(weight: float, equity: float, sigma: float, bar_volume: float) -> float:
        notional = abs(weight) * equity * 1e6
        return abs(weight) * (2e-4 + 0.5 * sigma * math.sqrt(notional / bar_volume))

    # bar 0: Q = 500k of 10M and 400k of 4M
    c0 = cost_of(0.5, 1.0, 0.02, 1e7) + cost_of(0.4, 1.0, 0.01, 4e6)
    assert c0 == pytest.approx(0.5 * (2e-4 + 0.01 * math.sqrt(0.05)) + 0.4 * (2e-4 + 0.005 * math.sqrt(0.1)),
                               rel=1e-15)
    e0 = 1.0 + 0.5 * 0.10 + 0.4 * -0.05 - c0
    a0, b0 = 0.55, 0.38
    x1 = (0.3 * e0 - a0) / e0, (0.4 * e0 - b0) / e0
    c1 = cost_of(x1[0], e0, 0.03, 2e7) + cost_of(x1[1], e0, 0.01, 4e6)
    e1 = e0 + 0.3 * e0 * 0.02 + 0.4 * e0 * 0.04 - c1 * e0
    a1, b1 = 0.3 * e0 * 1.02, 0.4 * e0 * 1.04
    x2 = (0.3 * e1 - a1) / e1, (0.1 * e1 - b1) / e1
    c2 = cost_of(x2[0], e1, 0.02, 1e7) + cost_of(x2[1], e1, 0.02, 1e7)
    np.testing.assert_allclose(p.cost, [c0, c1, c2], rtol=1e-13, atol=0)
    np.testing.assert_allclose(p.traded[1:], [x1, x2], rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(p.capped, [0, 0, 0])
    # without volatility or without dollar volume there is no impact, only the fee
    for kwargs in ({"dollar_volume": volume}, {"volatility": volatility}):
        fee_only = simulate_weights(RETURNS, targets, costs=costs, **kwargs)
        np.testing.assert_allclose(fee_only.cost, fee_only.turnover * 2e-4, **EXACT)


def test_participation_cap_cuts_the_trade_and_keeps_trading() -> None:
    flat = np.zeros((3, 2))
    targets = np.array([[0.25, 0.5], [0.25, 0.5], [0.25, 0.5]])
    volume = np.array([[1e6, NAN], [1e6, 1e7], [1e6, 1e7]])
    costs = CostModel(participation_cap=0.1, capital=1e6)  # at most 100k a bar = 0.1 of equity in A
    p = simulate_weights(flat, targets, costs=costs, dollar_volume=volume)
    np.testing.assert_allclose(p.weights, [[0.1, 0.0], [0.2, 0.5], [0.25, 0.5]], **EXACT)
    np.testing.assert_allclose(p.traded, [[0.1, 0.0], [0.1, 0.5], [0.05, 0.0]], atol=1e-15, rtol=0)
    # A is cut at bars 0 and 1; B has no known volume at bar 0, so the cap (0) blocks it
    np.testing.assert_array_equal(p.capped, [2, 1, 0])
    # selling is capped the same way
    back = simulate_weights(flat, -targets, costs=costs, dollar_volume=volume,
                            initial_weights=[0.0, 0.0])
    np.testing.assert_allclose(back.weights[:, 0], [-0.1, -0.2, -0.25], **EXACT)
    # the cap is in money: equity 2 (capital 2M) halves the weight each bar may move
    rich = simulate_weights(flat, targets, costs=dataclasses.replace(costs, capital=2e6),
                            dollar_volume=volume)
    np.testing.assert_allclose(rich.weights[:, 0], [0.05, 0.1, 0.15], **EXACT)
    # clean costs: no cap at all, the volume is ignored
    clean = simulate_weights(flat, targets, costs=CostModel.clean(), dollar_volume=volume)
    np.testing.assert_allclose(clean.weights, targets, **EXACT)
    np.testing.assert_array_equal(clean.capped, [0, 0, 0])


def test_unpriceable_impact_skips_the_trade() -> None:
    """With impact on and no cap, a NaN volatility or a NaN / 0 volume leaves the symbol untraded."""
    flat = np.zeros((3, 2))
    targets = np.array([[0.4, 0.4], [0.4, 0.5], [0.4, 0.6]])
    sigma = np.array([[NAN, 0.01], [0.01, 0.01], [0.01, 0.01]])
    volume = np.array([[1e7, 1e7], [1e7, 0.0], [1e7, NAN]])
    costs = CostModel(impact_k=1.0, participation_cap=math.inf)
    p = simulate_weights(flat, targets, costs=costs, volatility=sigma, dollar_volume=volume)
    # A: no volatility at bar 0; B: no volume at bars 1 (0) and 2 (NaN)
    np.testing.assert_array_equal(p.traded[:, 1] != 0, [True, False, False])
    np.testing.assert_array_equal(p.traded[:, 0] != 0, [False, True, True])
    np.testing.assert_array_equal(p.capped, [0, 0, 0])  # not the cap's doing
    c0 = 0.4 * 0.01 * math.sqrt(0.4 * 1e6 / 1e7)
    x1 = 0.4  # A from 0; equity 1 - c0 (flat prices), so its notional is 0.4 * (1 - c0) * 1M
    c1 = x1 * 0.01 * math.sqrt(x1 * (1 - c0) * 1e6 / 1e7)
    np.testing.assert_allclose(p.cost[:2], [c0, c1], rtol=1e-14)
    np.testing.assert_allclose(p.equity, np.cumprod(1 - p.cost), rtol=1e-15)


def test_nan_return_blocks_the_trade_and_drifts_flat() -> None:
    returns = np.array([[0.1, NAN], [NAN, 0.02], [0.0, 0.0]])
    targets = np.array([[0.5, 0.5], [0.2, 0.2], [0.2, 0.2]])
    p = simulate_weights(returns, targets)
    # bar 0: B has no price, not bought; bar 1: A has no price, stays at its drifted weight
    e0 = 1.05
    np.testing.assert_allclose(p.weights[0], [0.5, 0.0], **EXACT)
    np.testing.assert_allclose(p.weights[1], [0.55 / e0, 0.2], **EXACT)
    np.testing.assert_allclose(p.gross[1], 0.2 * 0.02, **EXACT)
    assert np.all(np.isfinite(p.net))


def test_ruin_stops_trading() -> None:
    returns = np.array([[-0.6, 0.0], [0.5, 0.5], [0.5, 0.5]])
    p = simulate_weights(returns, np.array([[2.0, 0.0], [1.0, 0.0], [1.0, 0.0]]))
    assert p.net[0] == pytest.approx(-1.2) and p.equity[0] == pytest.approx(-0.2)
    np.testing.assert_array_equal(p.weights[1:], 0.0)
    np.testing.assert_array_equal(p.net[1:], 0.0)
    np.testing.assert_array_equal(p.equity[1:], p.equity[0])
    np.testing.assert_array_equal(p.final_weights, [0.0, 0.0])


def test_fold_chaining_equals_one_run() -> None:
    rng = np.random.default_rng(3)
    returns = rng.normal(0, 0.02, (40, 3))
    targets = rng.uniform(-0.5, 0.5, (40, 3))
    targets[::3] = NAN
    volume = rng.uniform(1e5, 1e6, (40, 3))
    sigma = rng.uniform(0.01, 0.03, (40, 3))
    costs = CostModel(fee_bps=5, half_spread_bps=2, impact_k=0.7, participation_cap=0.2, capital=1e6)
    whole = simulate_weights(returns, targets, costs=costs, volatility=sigma, dollar_volume=volume)
    assert whole.capped.sum() > 0
    split = 17
    first = simulate_weights(returns[:split], targets[:split], costs=costs, volatility=sigma[:split],
                             dollar_volume=volume[:split])
    # the second fold starts from the first's weights, with its equity in money
    later_costs = dataclasses.replace(costs, capital=costs.capital * first.equity[-1])
    second = simulate_weights(returns[split:], targets[split:], costs=later_costs,
                              volatility=sigma[split:], dollar_volume=volume[split:],
                              initial_weights=first.final_weights)
    for field in ("weights", "pre_trade", "traded", "gross", "cost", "net", "turnover", "capped"):
        joined = np.concatenate([getattr(first, field), getattr(second, field)])
        np.testing.assert_allclose(joined, getattr(whole, field), rtol=1e-12, atol=1e-15, err_msg=field)
    np.testing.assert_allclose(first.equity[-1] * second.equity, whole.equity[split:], rtol=1e-12)
    np.testing.assert_allclose(second.final_weights, whole.final_weights, rtol=1e-12)


def test_result_shapes_and_frozen() -> None:
    p = simulate_weights(RETURNS, np.full((3, 2), 0.5))
    assert isinstance(p, WeightPath)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.net = np.zeros(3)  # type: ignore[misc]
    for field in ("weights", "pre_trade", "traded"):
        assert getattr(p, field).shape == (3, 2)
    for field in ("gross", "cost", "net", "turnover", "capped", "equity"):
        assert getattr(p, field).shape == (3,)
    assert p.final_weights.shape == (2,) and p.capped.dtype == np.int64
    empty = simulate_weights(np.empty((0, 2)), np.empty((0, 2)), initial_weights=[0.1, 0.2])
    assert empty.net.shape == (0,) and empty.final_weights.tolist() == [0.1, 0.2]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"returns": RETURNS[:, 0]}, "returns must be 2-D"),
        ({"targets": np.zeros((2, 2))}, "targets shape"),
        ({"returns": np.zeros((3, 0)), "targets": np.zeros((3, 0))}, "at least one asset"),
        ({"returns": RETURNS - 2.0}, ">= -1"),
        ({"targets": np.full((3, 2), np.inf)}, "targets must be finite"),
        ({"volatility": -np.ones((3, 2))}, "volatility must be non-negative"),
        ({"dollar_volume": np.full((3, 2), np.inf)}, "dollar_volume must be non-negative"),
        ({"dollar_volume": np.ones((3, 3))}, "dollar_volume shape"),
        ({"initial_weights": [0.1]}, r"initial_weights must have shape \(2,\)"),
        ({"initial_weights": [0.1, NAN]}, "initial_weights must be finite"),
    ],
)
def test_bad_input_raises(kwargs: dict, message: str) -> None:
    args = {"returns": RETURNS, "targets": np.zeros((3, 2))} | kwargs
    returns, targets = args.pop("returns"), args.pop("targets")
    with pytest.raises(ValueError, match=message):
        simulate_weights(returns, targets, **args)


@pytest.mark.parametrize(
    ("field", "value"),
    [("fee_bps", -1.0), ("half_spread_bps", NAN), ("impact_k", math.inf), ("participation_cap", 0.0),
     ("participation_cap", 1.5), ("capital", 0.0)],
)
def test_bad_cost_model_raises(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"CostModel.{field}"):
        CostModel(**{field: value})


def test_clean_cost_model() -> None:
    clean = CostModel.clean()
    assert clean.linear_rate == 0.0 and clean.impact_k == 0.0 and clean.participation_cap == math.inf
    assert CostModel(fee_bps=10, half_spread_bps=5).linear_rate == pytest.approx(15e-4, rel=1e-15)


# --- properties -------------------------------------------------------------------------------

_T, _N = 10, 3
_returns = arrays(np.float64, (_T, _N), elements=st.floats(-0.5, 0.5))
_targets = arrays(np.float64, (_T, _N), elements=st.one_of(st.floats(-1.0, 1.0), st.just(NAN)))
_positive = arrays(np.float64, (_T, _N), elements=st.one_of(st.floats(0.0, 1e7), st.just(NAN)))
_costs = st.builds(
    CostModel,
    fee_bps=st.floats(0, 50),
    half_spread_bps=st.floats(0, 50),
    impact_k=st.floats(0, 2),
    participation_cap=st.one_of(st.floats(0.01, 1.0), st.just(math.inf)),
    capital=st.floats(1e3, 1e8),
)


@settings(max_examples=60, deadline=None)
@given(returns=_returns, targets=_targets)
def test_zero_costs_net_is_gross_and_equity_compounds(returns: np.ndarray, targets: np.ndarray) -> None:
    p = simulate_weights(returns, targets)
    np.testing.assert_array_equal(p.cost, 0.0)
    np.testing.assert_array_equal(p.net, p.gross)
    np.testing.assert_allclose(p.equity, np.cumprod(1.0 + p.gross), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(p.weights - p.pre_trade, p.traded, rtol=0, atol=1e-12)
    np.testing.assert_allclose(p.turnover, np.abs(p.traded).sum(axis=1), rtol=1e-12, atol=0)
    np.testing.assert_allclose(p.gross, (p.weights * returns).sum(axis=1), rtol=1e-12, atol=1e-15)


@settings(max_examples=60, deadline=None)
@given(returns=_returns, targets=_targets, sigma=_positive, volume=_positive, costs=_costs)
def test_costs_non_negative_and_cap_respected(
    returns: np.ndarray, targets: np.ndarray, sigma: np.ndarray, volume: np.ndarray, costs: CostModel
) -> None:
    p = simulate_weights(returns, targets, costs=costs, volatility=sigma / 1e7, dollar_volume=volume)
    assert np.all(p.cost >= 0.0)
    alive = np.concatenate([[True], p.equity[:-1] > 0])
    np.testing.assert_allclose(p.net[alive], (p.gross - p.cost)[alive], rtol=0, atol=1e-15)
    if math.isfinite(costs.participation_cap):
        start_equity = np.concatenate([[1.0], p.equity[:-1]])
        notional = np.abs(p.traded) * start_equity[:, None] * costs.capital
        limit = costs.participation_cap * np.nan_to_num(volume, nan=0.0)
        assert np.all(notional <= limit * (1 + 1e-12) + 1e-9)


@settings(max_examples=60, deadline=None)
@given(returns=_returns, targets=_targets, volume=_positive, costs=_costs,
       new_returns=arrays(np.float64, (_T, _N), elements=st.floats(-0.5, 0.5)),
       t=st.integers(0, _T - 1))
def test_no_look_ahead_in_trades(
    returns: np.ndarray, targets: np.ndarray, volume: np.ndarray, costs: CostModel,
    new_returns: np.ndarray, t: int,
) -> None:
    """Returns of bars >= t never change the weights, pre-trade weights or trades of bars <= t."""
    sigma = np.full_like(returns, 0.02)
    base = simulate_weights(returns, targets, costs=costs, volatility=sigma, dollar_volume=volume)
    changed = returns.copy()
    changed[t:] = new_returns[t:]
    alt = simulate_weights(changed, targets, costs=costs, volatility=sigma, dollar_volume=volume)
    for field in ("weights", "pre_trade", "traded", "capped", "turnover", "cost"):
        np.testing.assert_array_equal(getattr(alt, field)[: t + 1], getattr(base, field)[: t + 1],
                                      err_msg=field)


# --- performance_metrics additions -----------------------------------------------------------

def test_metrics_min_bars_for_sharpe() -> None:
    net = np.array([0.01, -0.01, 0.02, 0.0])
    sharpe = 0.005 / math.sqrt(500e-6 / 3) * math.sqrt(365.0)
    for min_bars in (2, 4):
        m = performance_metrics(net, 365.0, min_bars_for_sharpe=min_bars)
        assert m["sharpe"] == pytest.approx(sharpe, rel=1e-14)
        assert m["sortino"] == pytest.approx(math.sqrt(365.0), rel=1e-14)
    short = performance_metrics(net, 365.0, min_bars_for_sharpe=5)
    assert math.isnan(short["sharpe"]) and math.isnan(short["sortino"])
    # everything else does not depend on it
    assert short["annual_volatility"] == pytest.approx(math.sqrt(500e-6 / 3 * 365.0), rel=1e-14)
    assert short["total_return"] == performance_metrics(net, 365.0)["total_return"]
    for bad in (1, 0, 2.5, True):
        with pytest.raises(ValueError, match="min_bars_for_sharpe"):
            performance_metrics(net, 365.0, min_bars_for_sharpe=bad)  # type: ignore[arg-type]
    assert performance_metrics(net, 365.0, min_bars_for_sharpe=np.int64(3))["sharpe"] == (
        pytest.approx(sharpe, rel=1e-14))


def test_metrics_annual_volatility_and_cagr() -> None:
    net = np.array([0.02, -0.01, 0.03])
    m = performance_metrics(net, 8760.0)
    assert m["annual_volatility"] == pytest.approx(np.std(net, ddof=1) * math.sqrt(8760.0), rel=1e-14)
    assert m["cagr"] == m["annual_return"] == pytest.approx((1.02 * 0.99 * 1.03) ** (8760 / 3) - 1)
    one = performance_metrics(np.array([0.01]), 8760.0)
    assert math.isnan(one["annual_volatility"]) and math.isnan(one["sharpe"])
    assert performance_metrics(np.zeros(3), 8760.0)["annual_volatility"] == 0.0
