"""Portfolio construction: Ledoit-Wolf covariance, Grinold composite alphas, a cvxpy QP with a
solver fallback that never yields NaN weights, and fractional Kelly sizing.

Units and conventions. Every return is a **per-bar simple return** (a fraction per bar, not
annualised): ``mu`` is a vector of expected next-bar returns, ``Sigma`` the covariance of per-bar
returns, weights are fractions of equity (long-only weights sum to 1, market-neutral weights sum
to 0 and their absolute values to at most ``gross``).

Objectives of :func:`optimize_weights` (``w_prev`` = ``previous``, or zeros):

* ``mean_variance``: maximise ``w'mu - risk_aversion * w'Sigma w - turnover_penalty * |w - w_prev|_1``.
  PyPortfolioOpt's ``max_quadratic_utility`` maximises ``w'mu - delta/2 * w'Sigma w``, so its
  ``delta`` is ``2 * risk_aversion`` here.
* ``min_variance``: minimise ``w'Sigma w + turnover_penalty * |w - w_prev|_1``
  (PyPortfolioOpt ``min_volatility``).
* ``max_sharpe``: maximise ``w'mu / sqrt(w'Sigma w)`` (risk-free rate 0), long-only, solved by the
  homogenisation of Cornuejols & Tutuncu, *Optimization Methods in Finance* (2006), section 8.2:
  minimise ``y'Sigma y`` subject to ``mu'y = 1``, ``sum y = kappa >= 0``, ``0 <= y <= cap * kappa``
  (and ``|y - kappa * w_prev|_1 <= turnover_cap * kappa``), then ``w = y / kappa``
  (PyPortfolioOpt ``max_sharpe``). With every ``mu <= 0`` no ``y`` meets ``mu'y = 1``: the problem
  is infeasible and the fallback applies. A turnover *penalty* has no exact homogenised form and
  is refused for this objective; the turnover *cap* is exact.

Constraints. Long-only: ``0 <= w <= cap``, ``sum w = 1`` (``gross`` is then 1 by construction and
ignored). Market-neutral (``long_only=False``): ``sum w = 0``, ``|w|_1 <= gross``,
``-cap <= w <= cap`` and ``w'betas = 0`` when ``betas`` is given (beta-neutral). Turnover cap:
``|w - w_prev|_1 <= turnover_cap``.

Numerics. The problem is solved on ``Sigma / s`` with ``s = trace(Sigma) / N`` (and, for
max-Sharpe, ``mu / max|mu|``), which has the same optimum and keeps the solvers' absolute
tolerances meaningful for per-bar magnitudes (``Sigma`` ~ 1e-4). ``w'Sigma w`` is written
``|F w|^2`` with ``F'F = Sigma / s`` (``F`` from the eigen-decomposition, negative round-off
eigenvalues set to 0) so that every data input is a cvxpy ``Parameter`` and the problem is DPP:
it is compiled once per (N, objective, mode, which optional terms, solver) and cached, and a
re-solve only refreshes parameter values. Solvers are tried in order (:data:`SOLVER_ORDER`); an
``optimal`` answer is taken at once, an ``optimal_inaccurate`` one only if no later solver is
optimal, and an answer that violates a constraint by more than ``1e-8`` is discarded. The kept
answer is cleaned of round-off: clipped to the box, then the sum is restored to exactly 1 (or 0)
by moving the residual onto the assets that have room before their bound (so caps still hold),
beta-neutrality by an exact projection first, gross by a final shrink.
"""

from __future__ import annotations

import functools
import math
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np
from numpy.typing import ArrayLike

SOLVER_ORDER = ("CLARABEL", "OSQP", "SCS")
OBJECTIVES = ("mean_variance", "min_variance", "max_sharpe")

CONSTRAINT_TOLERANCE = 1e-8
"""Largest constraint violation (in weight units) accepted from a solver before cleaning."""

_SOLVER_OPTIONS: dict[str, dict[str, float | int | bool]] = {
    "CLARABEL": {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10},
    "OSQP": {"eps_abs": 1e-9, "eps_rel": 1e-9, "max_iter": 200_000, "polishing": True},
    "SCS": {"eps_abs": 1e-9, "eps_rel": 1e-9, "max_iters": 200_000},
}
_INFEASIBLE = (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE)


@dataclass(frozen=True)
class OptimizationResult:
    """Weights (always finite), the solver that produced them (``"none"`` on fallback), the
    status (``"optimal"``, ``"optimal_inaccurate"``, or ``"infeasible: kept previous"``,
    ``"infeasible: flat"``, ``"failed: kept previous"``, ``"failed: flat"``), the objective at the
    returned weights in per-bar units (the Sharpe ratio per bar for ``max_sharpe``; NaN when no
    solve succeeded) and one ``"SOLVER: outcome"`` line per solver tried."""

    weights: np.ndarray
    solver: str
    status: str
    objective_value: float
    attempts: tuple[str, ...] = field(default=())


def ledoit_wolf_covariance(returns: ArrayLike) -> np.ndarray:
    """Ledoit-Wolf shrunk covariance of per-bar simple returns, ``(T, N) -> (N, N)``.

    Exactly ``sklearn.covariance.LedoitWolf().fit(complete_rows).covariance_`` (Ledoit & Wolf,
    "A well-conditioned estimator for large-dimensional covariance matrices", 2004: shrinkage
    towards a scaled identity, sample mean removed). Rows (bars) with any NaN are dropped first,
    so every asset's statistics come from the same bars; at least 2 complete rows are needed.
    """
    complete = _complete_rows(returns)
    from sklearn.covariance import LedoitWolf  # deferred: scikit-learn takes a second to import

    return np.asarray(LedoitWolf().fit(complete).covariance_, dtype=float)


def composite_expected_returns(exposures: ArrayLike, ics: ArrayLike, volatility: ArrayLike) -> np.ndarray:
    """Expected per-bar returns from factor z-scores by Grinold's rule ``alpha = IC * vol * score``.

    Grinold & Kahn, *Active Portfolio Management* (2000), ch. 10: a forecast of a standardised
    score ``z`` with information coefficient ``IC`` has expected residual return
    ``IC * sigma * z``. With ``K`` factors the per-factor alphas are averaged:
    ``mu_i = vol_i * sum_k ics_k * z_ik / K``. Averaging (rather than summing) is the
    equal-weight composite: it keeps ``mu`` at the scale of one factor's forecast however many
    factors there are, and does not pretend the factors are independent sources of skill.

    ``exposures``: ``(N assets, K factors)`` z-scores at the rebalance bar, NaN = no contribution.
    ``ics``: ``(K,)`` ICs against the next-bar return measured on the training window (NaN = no
    contribution). ``volatility``: ``(N,)`` per-bar return standard deviation, NaN -> ``mu`` 0.
    Result: ``(N,)`` expected next-bar simple returns, always finite.
    """
    z = np.asarray(exposures, dtype=float)
    ic = np.asarray(ics, dtype=float)
    vol = np.asarray(volatility, dtype=float)
    if z.ndim != 2 or z.shape[1] == 0:
        raise ValueError(f"exposures must be 2-D (N assets, K >= 1 factors), got shape {z.shape}")
    if ic.shape != (z.shape[1],):
        raise ValueError(f"ics must have shape ({z.shape[1]},), got {ic.shape}")
    if vol.shape != (z.shape[0],):
        raise ValueError(f"volatility must have shape ({z.shape[0]},), got {vol.shape}")
    if np.any(np.isinf(z)) or np.any(np.isinf(ic)) or np.any(np.isinf(vol)):
        raise ValueError("exposures, ics and volatility must not be infinite")
    if np.any(vol < 0):
        raise ValueError("volatility must be non-negative")
    score = np.where(np.isnan(z), 0.0, z) @ np.where(np.isnan(ic), 0.0, ic) / z.shape[1]
    return np.where(np.isnan(vol), 0.0, vol * score)


def kelly_fraction(mean: float, variance: float, *, fraction: float = 0.5, max_leverage: float = 1.0) -> float:
    """Fractional Kelly leverage for a strategy with per-bar return ``mean`` and ``variance``.

    For a continuous (Gaussian-approximated) return stream the growth-optimal leverage is
    ``f* = mean / variance`` (Kelly, "A new interpretation of information rate", 1956; Thorp,
    "The Kelly criterion in blackjack, sports betting and the stock market", 2006, section 7).
    The result is ``fraction * f*`` clipped to ``[0, max_leverage]``: a negative edge is not
    traded (not shorted); 0 when the variance is 0 or either moment is not finite.
    """
    if not math.isfinite(fraction) or not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if not math.isfinite(max_leverage) or max_leverage < 0:
        raise ValueError(f"max_leverage must be a non-negative finite number, got {max_leverage}")
    if math.isfinite(variance) and variance < 0:
        raise ValueError(f"variance must be non-negative, got {variance}")
    if not (math.isfinite(mean) and math.isfinite(variance)) or variance == 0:
        return 0.0
    return float(min(max(fraction * mean / variance, 0.0), max_leverage))


@dataclass(frozen=True)
class _Spec:
    """The constraints of one problem, in weight units, for checking and cleaning answers."""

    long_only: bool
    cap: float
    gross: float
    betas: np.ndarray | None
    previous: np.ndarray
    turnover_cap: float | None


def optimize_weights(
    returns: ArrayLike | None = None,
    *,
    objective: str = "mean_variance",
    expected_returns: ArrayLike | None = None,
    covariance: ArrayLike | None = None,
    risk_aversion: float = 1.0,
    long_only: bool = True,
    cap: float = 1.0,
    gross: float = 1.0,
    betas: ArrayLike | None = None,
    previous: ArrayLike | None = None,
    turnover_penalty: float = 0.0,
    turnover_cap: float | None = None,
    solvers: Sequence[str] = SOLVER_ORDER,
) -> OptimizationResult:
    """Optimal weights under the module's objectives and constraints (see the module docstring).

    ``mu`` defaults to the column means of ``returns`` over its complete rows (the rows
    :func:`ledoit_wolf_covariance` keeps), ``Sigma`` to ``ledoit_wolf_covariance(returns)``.
    When every solver fails or the problem is infeasible, the weights are ``previous`` (when
    given) else zeros, with solver ``"none"`` and NaN objective: never NaN weights.
    """
    mu, sigma = _moments(returns, expected_returns, covariance, objective)
    n_assets = sigma.shape[0]
    _check_scalars(objective, risk_aversion, long_only, cap, gross, turnover_penalty, turnover_cap)
    beta = None if betas is None else _vector(betas, n_assets, "betas")
    if beta is not None and long_only:
        raise ValueError("betas (beta-neutral) need long_only=False")
    prev = None if previous is None else _vector(previous, n_assets, "previous")
    solver_names = _solver_names(solvers)
    spec = _Spec(long_only, float(cap), float(gross), beta,
                 np.zeros(n_assets) if prev is None else prev, turnover_cap)

    key = (n_assets, objective, long_only, beta is not None, turnover_penalty > 0, turnover_cap is not None)
    values = _parameter_values(objective, mu, sigma, risk_aversion, spec, turnover_penalty)
    attempts: list[str] = []
    inaccurate: tuple[str, np.ndarray] | None = None
    for solver in solver_names:
        outcome, weights = _attempt(key, solver, values, spec)
        attempts.append(f"{solver}: {outcome}")
        if weights is not None and outcome == cp.OPTIMAL:
            return _result(weights, solver, outcome, objective, mu, sigma, risk_aversion, spec,
                           turnover_penalty, attempts)
        if weights is not None and inaccurate is None:
            inaccurate = (solver, weights)
    if inaccurate is not None:
        return _result(inaccurate[1], inaccurate[0], cp.OPTIMAL_INACCURATE, objective, mu, sigma,
                       risk_aversion, spec, turnover_penalty, attempts)
    infeasible = any(line.split(": ", 1)[1] in _INFEASIBLE for line in attempts)
    kind = "infeasible" if infeasible else "failed"
    kept = "kept previous" if prev is not None else "flat"
    fallback = prev.copy() if prev is not None else np.zeros(n_assets)
    return OptimizationResult(fallback, "none", f"{kind}: {kept}", math.nan, tuple(attempts))


def _complete_rows(returns: ArrayLike) -> np.ndarray:
    """The rows of a ``(T, N)`` returns array without NaN; at least two of them."""
    r = np.asarray(returns, dtype=float)
    if r.ndim != 2 or r.shape[1] == 0:
        raise ValueError(f"returns must be 2-D (T bars, N >= 1 assets), got shape {r.shape}")
    if np.any(np.isinf(r)):
        raise ValueError("returns must not be infinite")
    complete = r[~np.isnan(r).any(axis=1)]
    if complete.shape[0] < 2:
        raise ValueError(f"returns need >= 2 rows without NaN, got {complete.shape[0]}")
    return complete


def _moments(
    returns: ArrayLike | None, expected_returns: ArrayLike | None, covariance: ArrayLike | None,
    objective: str,
) -> tuple[np.ndarray, np.ndarray]:
    """``mu`` and ``Sigma`` from the arguments, defaulting to estimates from ``returns``."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    if (expected_returns is None or covariance is None) and returns is None:
        raise ValueError("give returns, or both expected_returns and covariance")
    if covariance is None:
        sigma = ledoit_wolf_covariance(returns)
    else:
        sigma = np.asarray(covariance, dtype=float)
        _check_covariance(sigma)
    if expected_returns is None:
        mu = _complete_rows(returns).mean(axis=0)
        if mu.shape != (sigma.shape[0],):
            raise ValueError(f"returns have {mu.shape[0]} assets but covariance has {sigma.shape[0]}")
    else:
        mu = _vector(expected_returns, sigma.shape[0], "expected_returns")
    return mu, (sigma + sigma.T) / 2


def _check_covariance(sigma: np.ndarray) -> None:
    """A finite, symmetric, positive semi-definite ``(N, N)`` matrix with N >= 1."""
    if sigma.ndim != 2 or sigma.shape[0] != sigma.shape[1] or sigma.shape[0] == 0:
        raise ValueError(f"covariance must be square (N, N) with N >= 1, got shape {sigma.shape}")
    if not np.all(np.isfinite(sigma)):
        raise ValueError("covariance must be finite")
    scale = max(float(np.abs(sigma).max()), np.finfo(float).tiny)
    if not np.allclose(sigma, sigma.T, rtol=1e-8, atol=1e-12 * scale):
        raise ValueError("covariance must be symmetric")
    if np.linalg.eigvalsh((sigma + sigma.T) / 2).min() < -1e-8 * scale:
        raise ValueError("covariance must be positive semi-definite")


def _vector(values: ArrayLike, n_assets: int, name: str) -> np.ndarray:
    """A finite float vector of length ``n_assets``."""
    v = np.asarray(values, dtype=float)
    if v.shape != (n_assets,):
        raise ValueError(f"{name} must have shape ({n_assets},), got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite")
    return v


def _check_scalars(
    objective: str, risk_aversion: float, long_only: bool, cap: float, gross: float,
    turnover_penalty: float, turnover_cap: float | None,
) -> None:
    """One-line ValueErrors for out-of-range numbers and unsupported combinations."""
    if objective == "mean_variance" and not (math.isfinite(risk_aversion) and risk_aversion > 0):
        raise ValueError(f"risk_aversion must be a positive finite number, got {risk_aversion}")
    for name, value in (("cap", cap), ("gross", gross)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive finite number, got {value}")
    if not (math.isfinite(turnover_penalty) and turnover_penalty >= 0):
        raise ValueError(f"turnover_penalty must be a non-negative finite number, got {turnover_penalty}")
    if turnover_cap is not None and not (math.isfinite(turnover_cap) and turnover_cap >= 0):
        raise ValueError(f"turnover_cap must be None or a non-negative finite number, got {turnover_cap}")
    if objective == "max_sharpe" and not long_only:
        raise ValueError("max_sharpe is long-only (long_only=True)")
    if objective == "max_sharpe" and turnover_penalty > 0:
        raise ValueError("max_sharpe takes a turnover_cap, not a turnover_penalty")


def _solver_names(solvers: Sequence[str]) -> tuple[str, ...]:
    """Upper-case solver names, at least one."""
    if isinstance(solvers, str) or len(solvers) == 0:
        raise ValueError("solvers must be a non-empty sequence of solver names")
    return tuple(str(name).upper() for name in solvers)


def _parameter_values(
    objective: str, mu: np.ndarray, sigma: np.ndarray, risk_aversion: float, spec: _Spec,
    turnover_penalty: float,
) -> dict[str, np.ndarray | float]:
    """Values of the cached problem's parameters: the problem scaled by ``s = trace(Sigma)/N``."""
    scale = float(np.trace(sigma)) / sigma.shape[0]
    scale = scale if scale > 0 else 1.0
    eigenvalues, eigenvectors = np.linalg.eigh(sigma / scale)
    factor = np.sqrt(np.clip(eigenvalues, 0.0, None))[:, None] * eigenvectors.T
    values: dict[str, np.ndarray | float] = {"cap": spec.cap, "previous": spec.previous}
    if objective == "mean_variance":
        values |= {"factor": math.sqrt(risk_aversion) * factor, "mu": mu / scale}
    elif objective == "min_variance":
        values["factor"] = factor
    else:
        top = float(np.abs(mu).max())
        values |= {"factor": factor, "mu": mu / top if top > 0 else mu}
    values |= {"penalty": turnover_penalty / scale, "gross": spec.gross,
               "turnover_cap": 0.0 if spec.turnover_cap is None else spec.turnover_cap,
               "betas": np.zeros(sigma.shape[0]) if spec.betas is None else spec.betas}
    return values


@dataclass
class _Compiled:
    """A cached DPP problem, its parameters by name and how to read weights from its solution."""

    problem: cp.Problem
    parameters: dict[str, cp.Parameter]
    weights: cp.Expression | None
    numerator: cp.Variable | None
    kappa: cp.Variable | None
    lock: threading.Lock = field(default_factory=threading.Lock)


def _attempt(
    key: tuple, solver: str, values: dict[str, np.ndarray | float], spec: _Spec,
) -> tuple[str, np.ndarray | None]:
    """Solve with one solver: (outcome, weights or None). Never raises for a solver's sake."""
    if solver not in _installed_solvers():
        return "not installed", None
    compiled = _compiled_problem(*key, solver)
    with compiled.lock:
        for name, parameter in compiled.parameters.items():
            parameter.value = values[name]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "may be inaccurate": the status says so
                # warm_start=False: cvxpy otherwise re-uses the previous solve's solver object (Clarabel's
                # update()), whose state makes the last bits, up to 2e-11 of a Sharpe, depend on which
                # problems were solved before in the process, so on build order and on a re-run.
                compiled.problem.solve(solver=solver, warm_start=False, **_SOLVER_OPTIONS.get(solver, {}))
        except Exception as error:  # noqa: BLE001 - any solver error means: try the next solver
            return f"raised {type(error).__name__}", None
        status = str(compiled.problem.status)
        weights = _read_weights(compiled)
    if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        return status, None
    if weights is None or not np.all(np.isfinite(weights)):
        return f"{status} without finite weights", None
    violation = _violation(weights, spec)
    if violation > CONSTRAINT_TOLERANCE:
        return f"{status} but violates constraints by {violation:.1e}", None
    return status, weights


@functools.cache
def _installed_solvers() -> frozenset[str]:
    """cvxpy's installed solvers, asked once: the question imports every solver module (~8 ms)."""
    return frozenset(cp.installed_solvers())


def _read_weights(compiled: _Compiled) -> np.ndarray | None:
    """Weights of the solved problem (``y / kappa`` for the homogenised max-Sharpe problem)."""
    if compiled.kappa is None:
        value = compiled.weights.value
        return None if value is None else np.array(value, dtype=float)
    y, kappa = compiled.numerator.value, compiled.kappa.value
    if y is None or kappa is None or not float(kappa) > 0:
        return None
    return np.array(y, dtype=float) / float(kappa)


@functools.lru_cache(maxsize=256)
def _compiled_problem(
    n_assets: int, objective: str, long_only: bool, has_betas: bool, has_penalty: bool,
    has_turnover_cap: bool, solver: str,
) -> _Compiled:
    """Build the DPP problem for one shape; cvxpy compiles it on its first solve and reuses that.

    ``solver`` is part of the key because a cvxpy problem keeps the compilation of the last
    solver it was solved with.
    """
    del solver
    params = {
        "factor": cp.Parameter((n_assets, n_assets), name="factor"),
        "cap": cp.Parameter(nonneg=True, name="cap"),
    }
    if objective != "min_variance":
        params["mu"] = cp.Parameter(n_assets, name="mu")
    if has_penalty or has_turnover_cap:
        params["previous"] = cp.Parameter(n_assets, name="previous")
    if has_turnover_cap:
        params["turnover_cap"] = cp.Parameter(nonneg=True, name="turnover_cap")
    if objective == "max_sharpe":
        return _max_sharpe_problem(n_assets, params, has_turnover_cap)
    if has_penalty:
        params["penalty"] = cp.Parameter(nonneg=True, name="penalty")
    if not long_only:
        params["gross"] = cp.Parameter(nonneg=True, name="gross")
    if has_betas:
        params["betas"] = cp.Parameter(n_assets, name="betas")
    return _quadratic_problem(n_assets, objective, long_only, params)


def _quadratic_problem(
    n_assets: int, objective: str, long_only: bool, params: dict[str, cp.Parameter],
) -> _Compiled:
    """Mean-variance or minimum-variance: ``|F w|^2`` (F'F = risk_aversion * Sigma / s)."""
    w = cp.Variable(n_assets, name="weights")
    cost = cp.sum_squares(params["factor"] @ w)
    constraints = [w <= params["cap"]]
    if long_only:
        constraints += [cp.sum(w) == 1, w >= 0]
    else:
        constraints += [cp.sum(w) == 0, w >= -params["cap"], cp.norm1(w) <= params["gross"]]
    if "betas" in params:
        constraints.append(params["betas"] @ w == 0)
    if "previous" in params:
        # |w - w_prev| as a variable: penalty * sum(trade) stays DPP (parameter times variable).
        trade = cp.Variable(n_assets, nonneg=True, name="trade")
        constraints += [trade >= w - params["previous"], trade >= params["previous"] - w]
        if "penalty" in params:
            cost = cost + params["penalty"] * cp.sum(trade)
        if "turnover_cap" in params:
            constraints.append(cp.sum(trade) <= params["turnover_cap"])
    if objective == "mean_variance":
        cost = cost - params["mu"] @ w
    problem = cp.Problem(cp.Minimize(cost), constraints)
    return _Compiled(problem, params, w, None, None)


def _max_sharpe_problem(
    n_assets: int, params: dict[str, cp.Parameter], has_turnover_cap: bool,
) -> _Compiled:
    """Cornuejols-Tutuncu homogenisation: min |F y|^2, mu'y = 1, sum y = kappa, 0 <= y <= cap*kappa."""
    y = cp.Variable(n_assets, name="scaled_weights")
    kappa = cp.Variable(nonneg=True, name="kappa")
    constraints = [params["mu"] @ y == 1, cp.sum(y) == kappa, y >= 0, y <= params["cap"] * kappa]
    if has_turnover_cap:
        constraints.append(cp.norm1(y - kappa * params["previous"]) <= params["turnover_cap"] * kappa)
    problem = cp.Problem(cp.Minimize(cp.sum_squares(params["factor"] @ y)), constraints)
    return _Compiled(problem, params, None, y, kappa)


def _violation(weights: np.ndarray, spec: _Spec) -> float:
    """Largest violation of any constraint of ``spec`` by ``weights`` (weight units)."""
    lower = 0.0 if spec.long_only else -spec.cap
    gaps = [
        float(np.max(lower - weights, initial=0.0)),
        float(np.max(weights - spec.cap, initial=0.0)),
        abs(float(weights.sum()) - (1.0 if spec.long_only else 0.0)),
    ]
    if not spec.long_only:
        gaps.append(max(float(np.abs(weights).sum()) - spec.gross, 0.0))
    if spec.betas is not None:
        gaps.append(abs(float(weights @ spec.betas)))
    if spec.turnover_cap is not None:
        gaps.append(max(float(np.abs(weights - spec.previous).sum()) - spec.turnover_cap, 0.0))
    return max(gaps)


def _clean(weights: np.ndarray, spec: _Spec) -> np.ndarray:
    """Remove solver round-off: box and sum exact, beta-neutral and gross exact (see module doc)."""
    w = weights.copy()
    if spec.betas is not None:
        rows = np.vstack([np.ones_like(w), spec.betas])
        w = w - rows.T @ np.linalg.lstsq(rows @ rows.T, rows @ w, rcond=None)[0]
    lower = 0.0 if spec.long_only else -spec.cap
    w = np.clip(w, lower, spec.cap)
    w = _restore_sum(w, 1.0 if spec.long_only else 0.0, lower, spec.cap)
    if not spec.long_only:
        l1 = float(np.abs(w).sum())
        if l1 > spec.gross:
            w = w * (spec.gross / l1)
    return w


def _restore_sum(w: np.ndarray, target: float, lower: float, upper: float) -> np.ndarray:
    """Move ``target - sum(w)`` onto the assets in proportion to their room before the bound it
    pushes towards, so the box ``[lower, upper]`` still holds."""
    residual = target - float(w.sum())
    if residual == 0:
        return w
    room = (upper - w) if residual > 0 else (w - lower)
    total = float(room.sum())
    if total <= 0:
        return w
    moved = w + residual * room / total
    return np.clip(moved, lower, upper)


def _result(
    raw_weights: np.ndarray, solver: str, status: str, objective: str, mu: np.ndarray,
    sigma: np.ndarray, risk_aversion: float, spec: _Spec, turnover_penalty: float,
    attempts: list[str],
) -> OptimizationResult:
    """The cleaned weights and the objective evaluated at them in per-bar units."""
    w = _clean(raw_weights, spec)
    variance = float(w @ sigma @ w)
    turnover = float(np.abs(w - spec.previous).sum())
    if objective == "mean_variance":
        value = float(w @ mu) - risk_aversion * variance - turnover_penalty * turnover
    elif objective == "min_variance":
        value = variance + turnover_penalty * turnover
    else:
        value = float(w @ mu) / math.sqrt(variance) if variance > 0 else math.inf
    return OptimizationResult(w, solver, status, value, tuple(attempts))
