"""The portfolio core: parity with PyPortfolioOpt, Ledoit-Wolf equal to scikit-learn, turnover,
beta-neutral and cap constraints, the solver fallback (never NaN), Kelly and Grinold by hand."""

import math

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pypfopt import EfficientFrontier
from sklearn.covariance import LedoitWolf

from quant_assets.quant import portfolio
from quant_assets.quant.portfolio import (
    OBJECTIVES,
    SOLVER_ORDER,
    composite_expected_returns,
    kelly_fraction,
    ledoit_wolf_covariance,
    optimize_weights,
)

CASES = [(seed, n) for seed in range(4) for n in (5, 9, 14, 20)]


def _simulated_returns(seed: int, n_assets: int, bars: int = 500) -> np.ndarray:
    """Per-bar returns of a three-factor market: correlated, ~1-2% per bar."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(0.0, 0.01, (bars, 3))
    loadings = rng.normal(1.0, 0.5, (n_assets, 3))
    return 0.5 * factors @ loadings.T + rng.normal(0.0, 0.01, (bars, n_assets))


def _moments(seed: int, n_assets: int) -> tuple[np.ndarray, np.ndarray]:
    """Expected returns (some negative) and the Ledoit-Wolf covariance of simulated returns."""
    sigma = LedoitWolf().fit(_simulated_returns(seed, n_assets)).covariance_
    mu = np.random.default_rng(seed + 1000).normal(0.0005, 0.001, n_assets)
    return mu, sigma


def _interior(weights: np.ndarray, lower: float, upper: float) -> int:
    """How many weights lie strictly inside their bounds (the parity is not decided by corners)."""
    return int(np.sum((weights > lower + 1e-6) & (weights < upper - 1e-6) & (np.abs(weights) > 1e-6)))


def _pypfopt_weights(objective: str, mu, sigma, cap: float, risk_aversion: float, neutral: bool):
    lower = -cap if neutral else 0.0
    frontier = EfficientFrontier(mu, sigma, weight_bounds=(lower, cap))
    if objective == "mean_variance":
        frontier.max_quadratic_utility(risk_aversion=2 * risk_aversion, market_neutral=neutral)
    elif objective == "min_variance":
        frontier.min_volatility()
    else:
        frontier.max_sharpe(risk_free_rate=0.0)
    return np.asarray(frontier.weights, dtype=float)


@pytest.mark.parametrize(
    ("objective", "neutral"),
    [("mean_variance", False), ("min_variance", False), ("max_sharpe", False), ("mean_variance", True)],
)
def test_weights_equal_pypfopt(objective: str, neutral: bool) -> None:
    """Same mu and Sigma, same bounds: each weight within 1e-4 of PyPortfolioOpt's.

    PyPortfolioOpt's delta is 2 * risk_aversion. Market-neutral: PyPortfolioOpt has no gross
    limit, so gross = N * cap + 1, which |w|_1 <= N * cap can never reach (it does not bind).
    """
    cap, worst, interior = 0.3, 0.0, 0
    for seed, n_assets in CASES:
        mu, sigma = _moments(seed, n_assets)
        for risk_aversion in (2.0, 10.0) if objective == "mean_variance" else (1.0,):
            ours = optimize_weights(
                objective=objective, expected_returns=mu, covariance=sigma, risk_aversion=risk_aversion,
                long_only=not neutral, cap=cap, gross=n_assets * cap + 1,
            )
            theirs = _pypfopt_weights(objective, mu, sigma, cap, risk_aversion, neutral)
            assert ours.status == "optimal" and ours.solver == "CLARABEL"
            worst = max(worst, float(np.abs(ours.weights - theirs).max()))
            interior += _interior(theirs, -cap if neutral else 0.0, cap)
    assert worst < 1e-4, worst
    assert interior >= len(CASES), "the cases should not be decided by the bounds alone"


def test_max_sharpe_objective_is_the_sharpe_ratio() -> None:
    mu, sigma = _moments(7, 8)
    result = optimize_weights(objective="max_sharpe", expected_returns=mu, covariance=sigma)
    w = result.weights
    assert result.objective_value == pytest.approx(w @ mu / math.sqrt(w @ sigma @ w), rel=1e-12)
    for other in np.random.default_rng(0).dirichlet(np.ones(8), 200):
        assert other @ mu / math.sqrt(other @ sigma @ other) <= result.objective_value + 1e-9


def test_ledoit_wolf_equals_sklearn_and_drops_nan_rows() -> None:
    returns = _simulated_returns(3, 6, bars=120)
    np.testing.assert_array_equal(ledoit_wolf_covariance(returns), LedoitWolf().fit(returns).covariance_)
    holed = returns.copy()
    holed[[4, 50, 51], [0, 3, 5]] = np.nan
    kept = np.delete(returns, [4, 50, 51], axis=0)
    np.testing.assert_array_equal(ledoit_wolf_covariance(holed), LedoitWolf().fit(kept).covariance_)


def test_ledoit_wolf_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=">= 2 rows without NaN"):
        ledoit_wolf_covariance(np.array([[0.01, np.nan], [0.02, 0.01], [np.nan, 0.0]]))
    with pytest.raises(ValueError, match="2-D"):
        ledoit_wolf_covariance(np.zeros(5))
    with pytest.raises(ValueError, match="infinite"):
        ledoit_wolf_covariance(np.array([[0.01, np.inf], [0.02, 0.01], [0.0, 0.0]]))


def test_default_moments_come_from_returns() -> None:
    returns = _simulated_returns(5, 6, bars=200) + 0.001
    returns[[3, 9], [1, 2]] = np.nan
    complete = returns[~np.isnan(returns).any(axis=1)]
    from_returns = optimize_weights(returns, risk_aversion=3.0, cap=0.5)
    explicit = optimize_weights(
        expected_returns=complete.mean(axis=0), covariance=LedoitWolf().fit(complete).covariance_,
        risk_aversion=3.0, cap=0.5,
    )
    np.testing.assert_allclose(from_returns.weights, explicit.weights, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("objective", "long_only"), [
    ("mean_variance", True), ("min_variance", True), ("mean_variance", False), ("min_variance", False),
])
def test_large_turnover_penalty_stays_at_previous(objective: str, long_only: bool) -> None:
    mu, sigma = _moments(11, 8)
    rng = np.random.default_rng(2)
    previous = rng.dirichlet(np.ones(8)) * 0.9 + 0.1 / 8
    if not long_only:
        previous = (previous - previous.mean()) * 0.5
    free = optimize_weights(objective=objective, expected_returns=mu, covariance=sigma,
                            long_only=long_only, cap=0.5, gross=2.0)
    held = optimize_weights(objective=objective, expected_returns=mu, covariance=sigma,
                            long_only=long_only, cap=0.5, gross=2.0, previous=previous, turnover_penalty=1.0)
    assert np.abs(free.weights - previous).sum() > 0.1
    assert held.status == "optimal"
    np.testing.assert_allclose(held.weights, previous, atol=1e-7)


@pytest.mark.parametrize(("objective", "long_only"), [
    ("mean_variance", True), ("min_variance", True), ("max_sharpe", True), ("mean_variance", False),
])
def test_turnover_cap_bounds_the_trade(objective: str, long_only: bool) -> None:
    mu, sigma = _moments(12, 10)
    previous = np.full(10, 0.1) if long_only else np.linspace(-0.1, 0.1, 10)
    common = dict(objective=objective, expected_returns=mu, covariance=sigma, long_only=long_only,
                  cap=0.4, gross=1.5, previous=previous)
    free = optimize_weights(**common)
    for limit in (0.05, 0.2, 0.5):
        capped = optimize_weights(**common, turnover_cap=limit)
        assert np.abs(free.weights - previous).sum() > limit, "the cap must bind to test anything"
        assert capped.status == "optimal"
        assert np.abs(capped.weights - previous).sum() <= limit + 1e-8


def test_beta_neutral_caps_sum_and_gross() -> None:
    for seed, n_assets in CASES:
        mu, sigma = _moments(seed, n_assets)
        betas = np.random.default_rng(seed).normal(1.0, 0.3, n_assets)
        result = optimize_weights(objective="mean_variance", expected_returns=mu, covariance=sigma,
                                  risk_aversion=1.0, long_only=False, cap=0.2, gross=1.0, betas=betas)
        w = result.weights
        assert result.status == "optimal"
        assert abs(w @ betas) < 1e-8
        assert abs(w.sum()) < 1e-8
        assert np.all(np.abs(w) <= 0.2 + 1e-8)
        assert np.abs(w).sum() <= 1.0 + 1e-8
        assert np.abs(w).sum() > 0.5


def test_long_only_caps_and_sum() -> None:
    for seed, n_assets in CASES:
        mu, sigma = _moments(seed, n_assets)
        cap = 1.5 / n_assets
        for objective in OBJECTIVES:
            w = optimize_weights(objective=objective, expected_returns=mu, covariance=sigma, cap=cap).weights
            assert abs(w.sum() - 1.0) < 1e-12
            assert w.min() >= 0.0 and w.max() <= cap


def test_infeasible_keeps_previous_or_goes_flat() -> None:
    mu, sigma = _moments(1, 5)
    previous = np.full(5, 0.2)
    kept = optimize_weights(expected_returns=mu, covariance=sigma, cap=0.15, previous=previous)
    assert kept.status == "infeasible: kept previous" and kept.solver == "none"
    assert math.isnan(kept.objective_value)
    np.testing.assert_array_equal(kept.weights, previous)
    assert len(kept.attempts) == len(SOLVER_ORDER)
    flat = optimize_weights(expected_returns=mu, covariance=sigma, cap=0.15)
    assert flat.status == "infeasible: flat"
    np.testing.assert_array_equal(flat.weights, np.zeros(5))


def test_max_sharpe_without_positive_mean_is_infeasible() -> None:
    mu, sigma = _moments(1, 5)
    result = optimize_weights(objective="max_sharpe", expected_returns=-np.abs(mu), covariance=sigma)
    assert result.status == "infeasible: flat"
    np.testing.assert_array_equal(result.weights, np.zeros(5))


def test_unknown_solver_falls_through() -> None:
    mu, sigma = _moments(2, 6)
    result = optimize_weights(expected_returns=mu, covariance=sigma, solvers=("NOT_A_SOLVER", "CLARABEL"))
    assert result.solver == "CLARABEL" and result.status == "optimal"
    assert result.attempts == ("NOT_A_SOLVER: not installed", "CLARABEL: optimal")


def _failing_solve(monkeypatch: pytest.MonkeyPatch, failing: set[str], inaccurate: set[str] = frozenset()):
    """Make ``Problem.solve`` raise for the ``failing`` solvers and report ``optimal_inaccurate``
    (after a real solve) for the ``inaccurate`` ones; record which solvers were called."""
    original = cp.Problem.solve
    called: list[str] = []

    def solve(self, *args, **kwargs):
        solver = kwargs.get("solver")
        called.append(solver)
        if solver in failing:
            raise cp.error.SolverError(f"{solver} made to fail")
        value = original(self, *args, **kwargs)
        if solver in inaccurate:
            self._status = cp.OPTIMAL_INACCURATE
        return value

    monkeypatch.setattr(cp.Problem, "solve", solve)
    return called


def test_raising_solvers_fall_through_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    mu, sigma = _moments(4, 7)
    reference = optimize_weights(expected_returns=mu, covariance=sigma, risk_aversion=5.0, cap=0.4)
    called = _failing_solve(monkeypatch, {"CLARABEL"})
    osqp = optimize_weights(expected_returns=mu, covariance=sigma, risk_aversion=5.0, cap=0.4)
    assert called == ["CLARABEL", "OSQP"] and osqp.solver == "OSQP" and osqp.status == "optimal"
    assert osqp.attempts[0] == "CLARABEL: raised SolverError"
    np.testing.assert_allclose(osqp.weights, reference.weights, atol=1e-6)

    called = _failing_solve(monkeypatch, {"CLARABEL", "OSQP"})
    scs = optimize_weights(expected_returns=mu, covariance=sigma, risk_aversion=5.0, cap=0.4)
    assert called[-3:] == ["CLARABEL", "OSQP", "SCS"] and scs.solver == "SCS"
    np.testing.assert_allclose(scs.weights, reference.weights, atol=1e-6)

    _failing_solve(monkeypatch, set(SOLVER_ORDER))
    previous = np.full(7, 1 / 7)
    failed = optimize_weights(expected_returns=mu, covariance=sigma, cap=0.4, previous=previous)
    assert failed.status == "failed: kept previous" and failed.solver == "none"
    np.testing.assert_array_equal(failed.weights, previous)
    flat = optimize_weights(expected_returns=mu, covariance=sigma, cap=0.4)
    assert flat.status == "failed: flat" and not np.any(np.isnan(flat.weights))


def test_non_optimal_status_falls_through(monkeypatch: pytest.MonkeyPatch) -> None:
    mu, sigma = _moments(4, 7)
    original = cp.Problem.solve

    def one_iteration_clarabel(self, *args, **kwargs):
        if kwargs.get("solver") == "CLARABEL":
            kwargs["max_iter"] = 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cp.Problem, "solve", one_iteration_clarabel)
    result = optimize_weights(expected_returns=mu, covariance=sigma, cap=0.4)
    assert result.attempts == ("CLARABEL: user_limit", "OSQP: optimal") and result.solver == "OSQP"


def test_inaccurate_answer_is_kept_only_when_nothing_better(monkeypatch: pytest.MonkeyPatch) -> None:
    mu, sigma = _moments(4, 7)
    _failing_solve(monkeypatch, set(), inaccurate={"CLARABEL"})
    better = optimize_weights(expected_returns=mu, covariance=sigma, cap=0.4)
    assert better.solver == "OSQP" and better.status == "optimal"
    _failing_solve(monkeypatch, {"OSQP", "SCS"}, inaccurate={"CLARABEL"})
    kept = optimize_weights(expected_returns=mu, covariance=sigma, cap=0.4)
    assert kept.solver == "CLARABEL" and kept.status == "optimal_inaccurate"
    assert math.isfinite(kept.objective_value)


def test_cached_problem_is_refreshed_not_stale() -> None:
    """Re-solving a cached shape with other data gives what a fresh problem gives."""
    mu_a, sigma_a = _moments(20, 8)
    mu_b, sigma_b = _moments(21, 8)
    first = optimize_weights(expected_returns=mu_a, covariance=sigma_a, cap=0.3, risk_aversion=4.0)
    hits = portfolio._compiled_problem.cache_info().hits
    other = optimize_weights(expected_returns=mu_b, covariance=sigma_b, cap=0.5, risk_aversion=2.0)
    again = optimize_weights(expected_returns=mu_a, covariance=sigma_a, cap=0.3, risk_aversion=4.0)
    assert portfolio._compiled_problem.cache_info().hits >= hits + 2
    assert np.abs(other.weights - first.weights).max() > 1e-3
    np.testing.assert_allclose(again.weights, first.weights, atol=1e-9)
    portfolio._compiled_problem.cache_clear()
    fresh = optimize_weights(expected_returns=mu_b, covariance=sigma_b, cap=0.5, risk_aversion=2.0)
    np.testing.assert_allclose(fresh.weights, other.weights, atol=1e-9)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"objective": "max_return"}, "objective must be one of"),
    ({"objective": "max_sharpe", "long_only": False}, "long-only"),
    ({"objective": "max_sharpe", "turnover_penalty": 0.1}, "turnover_cap, not a turnover_penalty"),
    ({"risk_aversion": 0.0}, "risk_aversion"),
    ({"cap": -0.1}, "cap must be"),
    ({"turnover_cap": math.nan}, "turnover_cap"),
    ({"previous": np.ones(3)}, r"previous must have shape \(4,\)"),
    ({"previous": np.array([0.5, np.nan, 0.5, 0.0])}, "previous must be finite"),
    ({"betas": np.ones(4)}, "long_only=False"),
    ({"covariance": -np.eye(4)}, "positive semi-definite"),
    ({"covariance": np.eye(4) + np.triu(np.ones((4, 4)), 1) * 0.1}, "symmetric"),
    ({"expected_returns": np.ones(5)}, r"expected_returns must have shape \(4,\)"),
    ({"solvers": ()}, "solvers"),
])
def test_bad_input_raises(kwargs: dict, message: str) -> None:
    base = {"expected_returns": np.full(4, 0.001), "covariance": np.eye(4) * 1e-4}
    with pytest.raises(ValueError, match=message):
        optimize_weights(**(base | kwargs))


def test_moments_are_required() -> None:
    with pytest.raises(ValueError, match="give returns"):
        optimize_weights(expected_returns=np.ones(4))


@st.composite
def _problems(draw):
    n_assets = draw(st.integers(2, 6))
    rank = draw(st.integers(1, n_assets))
    loadings = draw(hnp.arrays(float, (n_assets, rank), elements=st.floats(-1, 1)))
    sigma = draw(st.floats(1e-5, 1e-2)) * (loadings @ loadings.T + draw(st.sampled_from([0.0, 1e-3])) * np.eye(n_assets))
    mu = draw(hnp.arrays(float, n_assets, elements=st.floats(-0.01, 0.01)))
    long_only = draw(st.booleans())
    objective = draw(st.sampled_from(OBJECTIVES if long_only else OBJECTIVES[:2]))
    kwargs = dict(objective=objective, expected_returns=mu, covariance=sigma, long_only=long_only,
                  risk_aversion=draw(st.floats(0.1, 50)), cap=draw(st.floats(0.1, 1.0)),
                  gross=draw(st.floats(0.2, 2.0)))
    if not long_only and draw(st.booleans()):
        kwargs["betas"] = draw(hnp.arrays(float, n_assets, elements=st.floats(0.0, 2.0)))
    if draw(st.booleans()):
        kwargs["previous"] = draw(hnp.arrays(float, n_assets, elements=st.floats(-0.5, 0.5)))
        if objective != "max_sharpe":
            kwargs["turnover_penalty"] = draw(st.sampled_from([0.0, 1e-4, 1e-2]))
        if draw(st.booleans()):
            kwargs["turnover_cap"] = draw(st.floats(0.0, 2.0))
    return kwargs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_problems())
def test_weights_always_finite_and_within_constraints(kwargs: dict) -> None:
    result = optimize_weights(**kwargs)
    w = result.weights
    assert np.all(np.isfinite(w))
    if result.solver == "none":
        expected = kwargs.get("previous", np.zeros_like(w))
        np.testing.assert_array_equal(w, expected)
        assert math.isnan(result.objective_value)
        return
    cap = kwargs["cap"]
    if kwargs["long_only"]:
        assert abs(w.sum() - 1.0) < 1e-8 and w.min() >= 0.0 and w.max() <= cap
    else:
        assert abs(w.sum()) < 1e-8 and np.abs(w).max() <= cap and np.abs(w).sum() <= kwargs["gross"] + 1e-12
    if "betas" in kwargs:
        assert abs(w @ kwargs["betas"]) < 1e-8
    if "turnover_cap" in kwargs:
        previous = kwargs["previous"]
        assert np.abs(w - previous).sum() <= kwargs["turnover_cap"] + 1e-8


def test_feasible_long_only_problems_are_solved() -> None:
    """With cap * N > 1 and no turnover cap a long-only mean-variance problem is feasible."""
    rng = np.random.default_rng(9)
    for n_assets in (2, 3, 7):
        for _ in range(10):
            a = rng.normal(size=(n_assets, max(1, n_assets - 1)))
            result = optimize_weights(expected_returns=rng.normal(0, 0.01, n_assets),
                                      covariance=1e-4 * a @ a.T, cap=1.01 / n_assets + 0.1)
            assert result.status == "optimal"


def test_composite_expected_returns_by_hand() -> None:
    exposures = np.array([[1.0, -1.0], [np.nan, 2.0], [0.5, 0.5]])
    mu = composite_expected_returns(exposures, [0.1, 0.05], [0.02, 0.01, np.nan])
    np.testing.assert_allclose(mu, [0.02 * (0.1 - 0.05) / 2, 0.01 * (2 * 0.05) / 2, 0.0], rtol=1e-15)
    with pytest.raises(ValueError, match="ics must have shape"):
        composite_expected_returns(exposures, [0.1], [0.02, 0.01, 0.01])
    with pytest.raises(ValueError, match="volatility must have shape"):
        composite_expected_returns(exposures, [0.1, 0.1], [0.02, 0.01])
    with pytest.raises(ValueError, match="2-D"):
        composite_expected_returns(np.ones(3), [0.1], [0.02, 0.01, 0.01])
    with pytest.raises(ValueError, match="non-negative"):
        composite_expected_returns(exposures, [0.1, 0.1], [0.02, -0.01, 0.01])


def test_kelly_fraction_by_hand() -> None:
    assert kelly_fraction(1e-4, 1e-3, fraction=1.0) == pytest.approx(0.1)
    assert kelly_fraction(1e-4, 1e-3) == pytest.approx(0.05)
    assert kelly_fraction(1e-3, 4e-4) == 1.0  # half Kelly 1.25, clipped to max_leverage 1
    assert kelly_fraction(1e-3, 4e-4, max_leverage=2.0) == pytest.approx(1.25)
    assert kelly_fraction(-1e-3, 4e-4) == 0.0
    assert kelly_fraction(1e-3, 0.0) == 0.0
    assert kelly_fraction(1e-3, math.nan) == 0.0
    assert kelly_fraction(1e-3, math.inf) == 0.0
    assert kelly_fraction(math.nan, 1e-4) == 0.0
    for bad in ({"fraction": 0.0}, {"fraction": 1.5}, {"max_leverage": -1.0}):
        with pytest.raises(ValueError):
            kelly_fraction(1e-3, 1e-4, **bad)
    with pytest.raises(ValueError, match="variance"):
        kelly_fraction(1e-3, -1e-4)


@pytest.mark.parametrize("long_only", [True, False])
def test_a_solve_does_not_depend_on_what_was_solved_before(long_only: bool) -> None:
    """Bit for bit: the same problem after others, as in a re-run or another build order."""
    options = {"risk_aversion": 10.0, "long_only": long_only, "cap": 0.5, "gross": 1.0}
    mu, sigma = _moments(3, 10)
    first = optimize_weights(expected_returns=mu, covariance=sigma, **options).weights
    for seed in range(20, 26):
        other_mu, other_sigma = _moments(seed, 10)
        optimize_weights(expected_returns=other_mu, covariance=other_sigma, **options)
        assert np.array_equal(optimize_weights(expected_returns=mu, covariance=sigma, **options).weights, first)
