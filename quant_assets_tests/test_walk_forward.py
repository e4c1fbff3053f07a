"""The walk-forward core: strategies decide from the past only, selection reads the training
window only, the test window continues the training positions, benchmarks buy and hold."""

from datetime import datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quant_assets.quant.backtest_engine import CostModel
from quant_assets.quant.strategies import (
    Panel,
    PortfolioGrid,
    StrategySpec,
    decide,
    rebalance_bars,
    strategy_grid,
    training_ics,
)
from quant_assets.quant.walk_forward import OK, SKIPPED, FoldSetup, run_fold

N_BARS, N_SYMBOLS = 24 * 8, 5
GRID = PortfolioGrid(("mom", "rev"), ("mean_variance", "min_variance", "max_sharpe"), (1.0, 10.0),
                     ("long_only", "market_neutral"), cov_window=24, rebalance_bars=6, cap=0.6, gross=1.0,
                     beta_neutral=False, turnover_penalty=0.001, turnover_cap=2.0)


def make_panel(seed: int = 3, returns: np.ndarray | None = None) -> Panel:
    rng = np.random.default_rng(seed)
    drawn = rng.normal(0.0002, 0.01, (N_BARS, N_SYMBOLS))
    r = drawn if returns is None else returns
    ts = np.array([np.datetime64(datetime(2024, 3, 1) + timedelta(hours=i), "us") for i in range(N_BARS)])
    signals = {"long": np.ones((N_BARS, N_SYMBOLS)), "flip": np.sign(rng.normal(size=(N_BARS, N_SYMBOLS)))}
    factors = {"mom": rng.normal(size=(N_BARS, N_SYMBOLS)), "rev": rng.normal(size=(N_BARS, N_SYMBOLS))}
    return Panel(ts, tuple(f"S{j}/USDT" for j in range(N_SYMBOLS)), 60, r, np.full_like(r, 0.01),
                 np.full_like(r, 5e6), signals, factors)


SETUP = FoldSetup(costs={"clean": CostModel.clean(),
                         "realistic": CostModel(fee_bps=10, half_spread_bps=2, impact_k=1.0, participation_cap=0.1)},
                  bars_per_year=8760, min_train_days=2, market_index=0)


def specs() -> list[StrategySpec]:
    return strategy_grid(["long", "flip"], GRID)


def test_the_grid_names_every_point_once():
    names = [s.name for s in specs()]
    assert names == ["long", "flip", "pf_mean_variance_long_only_l1", "pf_mean_variance_long_only_l10",
                     "pf_mean_variance_market_neutral_l1", "pf_mean_variance_market_neutral_l10",
                     "pf_min_variance_long_only", "pf_max_sharpe_long_only"]
    assert len({s.config_json() for s in specs()}) == len(names)


def test_rule_weights_are_the_signal_over_n_and_portfolios_rebalance_on_the_epoch_grid():
    panel = make_panel()
    rule = decide(specs()[1], panel, 10, 20, (11, 15))
    assert np.array_equal(rule.weights, panel.signals["flip"][10:20] / N_SYMBOLS)
    bars = rebalance_bars(panel, 23, 60, 6)
    assert bars[0] == 23 and all((b + 1) % 6 == 0 for b in bars[1:])  # closes at 00:00, 06:00, ...
    portfolio = decide(specs()[2], panel, 23, 71, (24, 48))
    held = portfolio.weights[~np.isnan(portfolio.weights).all(axis=1)]
    assert held.shape[0] == len(rebalance_bars(panel, 23, 71, 6))
    assert np.allclose(held.sum(axis=1), 1.0, atol=1e-8) and np.all(held >= -1e-9) and np.all(held <= 0.6 + 1e-8)


def test_training_ics_never_read_the_bars_after_the_window():
    panel = make_panel()
    before = training_ics(panel, ["mom", "rev"], (24, 72), 6)
    later = panel.returns.copy()
    later[72:] = np.random.default_rng(9).normal(0, 0.05, later[72:].shape)
    after = training_ics(make_panel(returns=later), ["mom", "rev"], (24, 72), 6)
    assert before == after
    gap = panel.returns.copy()
    gap[40, 2] = np.nan  # forward returns across the gap are not used: the IC changes but stays finite
    assert all(np.isfinite(v) for v in training_ics(make_panel(returns=gap), ["mom", "rev"], (24, 72), 6).values())


def test_selection_ignores_the_test_window_and_the_test_continues_training():
    panel = make_panel()
    lo, split, hi = 24, 24 * 6, 24 * 7
    run = run_fold(panel, specs(), lo, split, hi, SETUP)
    assert run.status == OK and set(run.selections) == {"clean", "realistic"}
    shuffled = panel.returns.copy()
    rng = np.random.default_rng(1)
    shuffled[split:] = rng.permutation(shuffled[split:])
    shuffled[split:] *= 3.0
    other = run_fold(make_panel(returns=shuffled), specs(), lo, split, hi, SETUP)
    for mode in ("clean", "realistic"):
        assert other.selections[mode].name == run.selections[mode].name
        assert other.selections[mode].train_scores == run.selections[mode].train_scores
        a, b = run.selections[mode].path, other.selections[mode].path
        n = split - lo
        assert np.array_equal(a.net[:n], b.net[:n])  # the training window did not move
        assert np.array_equal(a.weights[: n + 1], b.weights[: n + 1])  # nor the first test bar's weights
    # the test window is one simulation with training: the first test bar trades from the last training weights
    path = run.selections["realistic"].path
    assert np.allclose(path.pre_trade[split - lo], path.weights[split - lo - 1] * (1 + panel.returns[split - 1])
                       / (1 + path.net[split - lo - 1]))


def test_kelly_sizing_scales_the_selected_weights_from_training_only():
    panel = make_panel()
    kelly = FoldSetup(**{**SETUP.__dict__, "sizing": "kelly", "kelly_fraction": 0.5, "max_leverage": 1.0})
    run = run_fold(panel, specs(), 24, 144, 168, kelly)
    for mode, chosen in run.selections.items():
        assert 0.0 <= chosen.leverage <= 1.0
        unit = run.runs[chosen.name].decisions.weights
        assert np.allclose(chosen.targets, unit * chosen.leverage, equal_nan=True), mode


def test_benchmarks_buy_and_hold_from_the_test_start():
    panel = make_panel()
    run = run_fold(panel, specs(), 24, 144, 168, SETUP)
    r = panel.returns[144:168]
    assert np.isclose(np.prod(1 + run.benchmark_market) - 1, np.prod(1 + r[:, 0]) - 1, rtol=0, atol=1e-12)
    equal = np.prod(1 + r, axis=0).mean() - 1  # equal weights at the start, then drifting
    assert np.isclose(np.prod(1 + run.benchmark_equal_weight) - 1, equal, rtol=0, atol=1e-12)


def test_a_fold_with_too_little_training_history_is_skipped():
    panel = make_panel()
    empty = Panel(panel.ts, panel.symbols, 60, panel.returns, panel.volatility, panel.dollar_volume,
                  {k: np.full_like(v, np.nan) for k, v in panel.signals.items()},
                  {k: np.full_like(v, np.nan) for k, v in panel.factors.items()})
    assert run_fold(empty, specs(), 24, 144, 168, SETUP).status == SKIPPED
    with pytest.raises(ValueError, match="do not fit"):
        run_fold(panel, specs(), 0, 144, 168, SETUP)


def test_the_vectorised_rank_ic_equals_scipy_spearman_row_by_row():
    from scipy.stats import spearmanr

    from quant_assets.quant.strategies import _mean_rank_ic

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 8)), rng.normal(size=(300, 8))
    y += 0.3 * x
    x[rng.random(x.shape) < 0.1] = np.nan
    y[rng.random(y.shape) < 0.05] = np.nan
    x[5], x[7, :6], x[9] = 1.0, np.nan, np.round(x[9])  # a constant row, a row of two pairs, ties
    expected = []
    for a, b in zip(x, y, strict=True):
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() >= 3 and np.ptp(a[ok]) > 0 and np.ptp(b[ok]) > 0:
            expected.append(spearmanr(a[ok], b[ok]).statistic)
    assert abs(_mean_rank_ic(x, y) - np.mean(expected)) < 1e-15


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.1, 10.0), split_day=st.integers(3, 6))
def test_no_test_bar_reaches_the_selection_or_the_training_path(seed, scale, split_day):
    """Property: whatever the out-of-sample returns are, the choice, its in-sample scores, the
    training path and the first test bar's weights stay as they were."""
    rng = np.random.default_rng(seed)
    panel = make_panel(seed)
    rules = [StrategySpec(name, "rule", {"signal": name}) for name in ("long", "flip")]
    lo, split, hi = 24, 24 * split_day, 24 * split_day + 24
    base = run_fold(panel, rules, lo, split, hi, SETUP)
    future = panel.returns.copy()
    future[split:] = rng.normal(0, 0.02 * scale, future[split:].shape)
    other = run_fold(make_panel(seed, returns=future), rules, lo, split, hi, SETUP)
    n = split - lo
    for mode in ("clean", "realistic"):
        a, b = base.selections[mode], other.selections[mode]
        assert (a.name, a.train_scores) == (b.name, b.train_scores)
        assert np.array_equal(a.path.net[:n], b.path.net[:n])
        assert np.array_equal(a.path.weights[: n + 1], b.path.weights[: n + 1])
