"""Calibrating a signal into ``P(next-bar return > 0)``, scored out of sample.

A calibrator maps a signal value ``x`` known at a bar's close to the probability that the
outcome ``y = 1{next-bar return > 0}`` is 1. It is fitted on a training window only; the
caller passes the test window separately and nothing from it reaches the fit.

**Methods** (scikit-learn):

- ``logistic``: ``p = sigmoid(a + b x)``, the maximum-likelihood logistic regression on the
  single feature (Platt 1999, "Probabilistic outputs for support vector machines"). scikit-learn's
  ``LogisticRegression`` with ``solver="lbfgs"``, ``tol = 1e-10`` and an L2 penalty with
  ``C = 1e6``: it minimises the summed log loss plus ``|w|^2 / (2 C)``, effectively unpenalised
  (``w`` is the slope on the standardised signal, of order 1, against a summed loss of order n). The model is fitted on the *standardised* signal ``z = (x - m) / s`` (``m``, ``s``:
  the training mean and population std, ddof 0; ``s = 1`` for a constant signal), so that neither
  the penalty nor lbfgs' stopping rule depends on the signal's units; ``Calibrator.intercept``
  and ``Calibrator.slope`` give ``a`` and ``b`` in the signal's own units.
- ``isotonic``: the least-squares monotone step function of ``x`` (Zadrozny & Elkan 2002,
  "Transforming classifier scores into accurate multiclass probability estimates").
  ``IsotonicRegression(increasing="auto", out_of_bounds="clip", y_min=0, y_max=1)`` on the raw
  signal: the direction is the sign of the training Spearman correlation (scikit-learn warns
  when its 95% interval spans zero); signals outside the training range get the end values.

**Scores**, on pairs with neither value NaN:

- Brier score ``mean((p - y)^2)`` (Brier 1950), as ``sklearn.metrics.brier_score_loss``.
- Log loss ``-mean(y ln p + (1 - y) ln(1 - p))`` with ``p`` clipped to ``[eps, 1 - eps]``
  (``sklearn.metrics.log_loss`` clips to the float64 machine epsilon, 2.2e-16; pass that ``eps``
  to agree with it at ``p`` = 0 or 1).
- Reliability table: equal-width probability buckets with scikit-learn's
  ``calibration_curve(strategy="uniform")`` edges and boundary rule (see :func:`reliability_table`).
- Base-rate Brier: the Brier score of always predicting the training base rate (the fraction of
  training outcomes that are 1), scored on the same test rows; a calibrated signal with skill
  scores below it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import ArrayLike

METHODS = ("logistic", "isotonic")
MIN_OBSERVATIONS = 10
LOGISTIC_C = 1e6
LOGISTIC_TOL = 1e-10
LOGISTIC_MAX_ITER = 10_000
RELIABILITY_SCHEMA = {
    "bucket": pl.Int32, "lower": pl.Float64, "upper": pl.Float64, "n": pl.Int64,
    "predicted_mean": pl.Float64, "realised_rate": pl.Float64,
}


def _vector(values: ArrayLike, name: str) -> np.ndarray:
    """``values`` as a 1-D float64 array (bools become 0.0 / 1.0)."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"{name} must be numeric or bool, got dtype {array.dtype}")
    return array.astype(np.float64)


def _check_outcome(outcome: np.ndarray, name: str = "outcome") -> None:
    present = outcome[~np.isnan(outcome)]
    if not np.isin(present, (0.0, 1.0)).all():
        raise ValueError(f"{name} must hold 0/1 or bool values (NaN = unknown)")


def _check_probability(predicted: np.ndarray) -> None:
    present = predicted[~np.isnan(predicted)]
    if ((present < 0.0) | (present > 1.0)).any():
        raise ValueError("predicted must lie in [0, 1] (NaN = no prediction)")


def _pairs(first: ArrayLike, outcome: ArrayLike, first_name: str) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of ``first`` and ``outcome`` with neither value NaN, validated."""
    x, y = _vector(first, first_name), _vector(outcome, "outcome")
    if x.shape != y.shape:
        raise ValueError(f"{first_name} has {x.size} values but outcome has {y.size}")
    _check_outcome(y)
    keep = ~(np.isnan(x) | np.isnan(y))
    return x[keep], y[keep]


def _scored_pairs(predicted: ArrayLike, outcome: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p, y = _pairs(predicted, outcome, "predicted")
    _check_probability(p)
    if p.size == 0:
        raise ValueError("no (predicted, outcome) pair without NaN to score")
    return p, y


@dataclass(frozen=True)
class Calibrator:
    """A fitted calibrator; build it with :func:`fit_calibrator`.

    ``model``: the fitted ``LogisticRegression`` (on the standardised signal
    ``(x - signal_mean) / signal_scale``) or ``IsotonicRegression`` (on the raw signal, for which
    ``signal_mean = 0`` and ``signal_scale = 1``)."""

    method: str
    model: Any
    signal_mean: float = 0.0
    signal_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown calibration method {self.method!r}; expected one of {METHODS}")

    @property
    def intercept(self) -> float:
        """Logistic ``a`` of ``p = sigmoid(a + b x)``, in the signal's units (log-odds)."""
        slope_z, intercept_z = self._logistic_coefficients()
        return intercept_z - slope_z * self.signal_mean / self.signal_scale

    @property
    def slope(self) -> float:
        """Logistic ``b`` of ``p = sigmoid(a + b x)``: log-odds per unit of signal."""
        slope_z, _ = self._logistic_coefficients()
        return slope_z / self.signal_scale

    def _logistic_coefficients(self) -> tuple[float, float]:
        if self.method != "logistic":
            raise ValueError(f"intercept and slope exist for the logistic method, not {self.method!r}")
        return float(self.model.coef_[0, 0]), float(self.model.intercept_[0])

    def predict(self, signal: ArrayLike) -> np.ndarray:
        """``P(outcome = 1)`` in ``[0, 1]`` for each value of ``signal`` (1-D); NaN gives NaN."""
        x = _vector(signal, "signal")
        if np.isinf(x).any():
            raise ValueError("signal must be finite or NaN, got an infinite value")
        predicted = np.full(x.shape, np.nan)
        known = ~np.isnan(x)
        if known.any():
            predicted[known] = self._predict_known(x[known])
        return predicted

    def _predict_known(self, x: np.ndarray) -> np.ndarray:
        if self.method == "isotonic":
            return np.asarray(self.model.predict(x), dtype=np.float64)
        z = (x - self.signal_mean) / self.signal_scale
        positive = list(self.model.classes_).index(1)
        return self.model.predict_proba(z[:, None])[:, positive]


def fit_calibrator(signal: ArrayLike, outcome: ArrayLike, method: str = "logistic") -> Calibrator:
    """Fit ``method`` (one of ``METHODS``) to map ``signal`` to ``P(outcome = 1)``.

    ``signal``: (n,) floats, NaN = no signal; ``outcome``: (n,) bool or 0/1, ``1{next-bar return
    > 0}`` (NaN = unknown). Pairs with a NaN are dropped; at least ``MIN_OBSERVATIONS`` pairs and
    both outcome classes must remain. A constant signal gives the base rate everywhere. See the
    module for each method's model and settings."""
    # deferred: scikit-learn takes a second to import, and most commands never calibrate
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}; expected one of {METHODS}")
    x, y = _pairs(signal, outcome, "signal")
    if np.isinf(x).any():
        raise ValueError("signal must be finite or NaN, got an infinite value")
    if x.size < MIN_OBSERVATIONS:
        raise ValueError(f"need at least {MIN_OBSERVATIONS} (signal, outcome) pairs without NaN, got {x.size}")
    if np.unique(y).size < 2:
        raise ValueError(f"outcome has one class only ({int(y[0])}); need both 0 and 1 to calibrate")
    if method == "isotonic":
        model = IsotonicRegression(increasing="auto", out_of_bounds="clip", y_min=0.0, y_max=1.0)
        return Calibrator(method, model.fit(x, y))
    mean, std = float(x.mean()), float(x.std())
    scale = std if std > 0.0 else 1.0
    model = LogisticRegression(C=LOGISTIC_C, solver="lbfgs", tol=LOGISTIC_TOL, max_iter=LOGISTIC_MAX_ITER)
    model.fit(((x - mean) / scale)[:, None], y.astype(np.int64))
    return Calibrator(method, model, mean, scale)


def brier_score(predicted: ArrayLike, outcome: ArrayLike) -> float:
    """Brier score ``mean((p - y)^2)`` over the pairs without NaN; 0 is perfect, 1 the worst."""
    p, y = _scored_pairs(predicted, outcome)
    return float(np.mean((p - y) ** 2))


def log_loss(predicted: ArrayLike, outcome: ArrayLike, eps: float = 1e-15) -> float:
    """Mean negative log-likelihood ``-mean(y ln p + (1 - y) ln(1 - p))`` in nats, ``p`` clipped
    to ``[eps, 1 - eps]``, over the pairs without NaN."""
    if not 0.0 < eps < 0.5:
        raise ValueError(f"eps must lie in (0, 0.5), got {eps!r}")
    p, y = _scored_pairs(predicted, outcome)
    p = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def reliability_table(predicted: ArrayLike, outcome: ArrayLike, n_buckets: int = 10) -> pl.DataFrame:
    """Predicted against realised frequency per probability bucket (``RELIABILITY_SCHEMA``).

    Bucket ``k`` (1..``n_buckets``) spans ``lower = edges[k-1]`` to ``upper = edges[k]`` with
    ``edges = numpy.linspace(0, 1, n_buckets + 1)`` and holds ``lower < p <= upper`` (the first
    bucket also holds ``p = 0``): scikit-learn's ``calibration_curve(strategy="uniform")`` rule
    (``searchsorted`` on the inner edges, side left), so a ``p`` on an inner edge belongs to the
    bucket below it. ``n``: pairs in the bucket; ``predicted_mean``: their mean ``p``;
    ``realised_rate``: the fraction with outcome 1. Pairs with a NaN are dropped; empty buckets
    are omitted (no row), as ``calibration_curve`` omits them."""
    if isinstance(n_buckets, bool) or not isinstance(n_buckets, int | np.integer) or n_buckets < 1:
        raise ValueError(f"n_buckets must be an integer >= 1, got {n_buckets!r}")
    p, y = _scored_pairs(predicted, outcome)
    edges = np.linspace(0.0, 1.0, n_buckets + 1)
    bucket = np.searchsorted(edges[1:-1], p, side="left")
    count = np.bincount(bucket, minlength=n_buckets)
    p_sum = np.bincount(bucket, weights=p, minlength=n_buckets)
    y_sum = np.bincount(bucket, weights=y, minlength=n_buckets)
    filled = count > 0
    return pl.DataFrame({
        "bucket": np.flatnonzero(filled) + 1,
        "lower": edges[:-1][filled],
        "upper": edges[1:][filled],
        "n": count[filled],
        "predicted_mean": p_sum[filled] / count[filled],
        "realised_rate": y_sum[filled] / count[filled],
    }, schema=RELIABILITY_SCHEMA)


@dataclass(frozen=True)
class CalibrationResult:
    """Out-of-sample scores of a calibrator fitted on the training window (see :func:`calibrate`)."""

    method: str
    n_train: int
    n_test: int
    brier: float
    log_loss: float
    base_rate_brier: float
    reliability: pl.DataFrame


def calibrate(train_signal: ArrayLike, train_outcome: ArrayLike, test_signal: ArrayLike,
              test_outcome: ArrayLike, *, method: str = "logistic", n_buckets: int = 10) -> CalibrationResult:
    """Fit ``method`` on the training window only, then score it on the test window.

    ``n_train``: training pairs without NaN (those fitted); ``n_test``: test pairs with a
    prediction (signal not NaN) and a known outcome (those scored). ``brier``, ``log_loss``
    (``eps = 1e-15``) and ``reliability`` (``n_buckets`` buckets) are on those test pairs;
    ``base_rate_brier`` is the Brier score there of the constant training base rate."""
    for name, signal, outcome in (("train", train_signal, train_outcome), ("test", test_signal, test_outcome)):
        if np.size(signal) != np.size(outcome):
            raise ValueError(f"{name}_signal has {np.size(signal)} values but {name}_outcome has {np.size(outcome)}")
    calibrator = fit_calibrator(train_signal, train_outcome, method)
    _, fitted_outcome = _pairs(train_signal, train_outcome, "signal")
    base_rate = float(fitted_outcome.mean())
    predicted, realised = _pairs(calibrator.predict(test_signal), test_outcome, "predicted")
    if predicted.size == 0:
        raise ValueError("the test window has no (signal, outcome) pair without NaN to score")
    return CalibrationResult(
        method=method,
        n_train=int(fitted_outcome.size),
        n_test=int(predicted.size),
        brier=brier_score(predicted, realised),
        log_loss=log_loss(predicted, realised),
        base_rate_brier=brier_score(np.full(predicted.shape, base_rate), realised),
        reliability=reliability_table(predicted, realised, n_buckets),
    )
