"""The calibration core against scikit-learn's own metrics and calibration curve, a hand-written
Newton-Raphson logistic MLE, simulated signals with a known link, and properties."""

import warnings

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn import metrics
from sklearn.calibration import calibration_curve

from quant_assets.quant.calibration import (
    METHODS,
    RELIABILITY_SCHEMA,
    Calibrator,
    brier_score,
    calibrate,
    fit_calibrator,
    log_loss,
    reliability_table,
)

MACHINE_EPS = float(np.finfo(np.float64).eps)
SPEARMAN_WARNING = "Confidence interval of the Spearman"


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _logistic_sample(seed: int, n: int, a: float, b: float, loc: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``x ~ N(loc, 1)``, ``y ~ Bernoulli(sigmoid(a + b x))``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(loc, 1.0, n)
    return x, rng.random(n) < _sigmoid(a + b * x)


def _newton_logistic(x: np.ndarray, y: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """Unpenalised logistic MLE ``(a, b)`` by Newton-Raphson: ``beta += (X'WX)^-1 X'(y - p)``."""
    design = np.column_stack([np.ones_like(x), x])
    beta = np.zeros(2)
    for _ in range(iterations):
        p = _sigmoid(design @ beta)
        hessian = design.T @ (design * (p * (1 - p))[:, None])
        beta = beta + np.linalg.solve(hessian, design.T @ (y - p))
    return float(beta[0]), float(beta[1])


def _probabilities(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(0.7, 0.7, n)
    return p, (rng.random(n) < p).astype(float)


# --- scores against sklearn.metrics -------------------------------------------------------------

def test_brier_and_log_loss_by_hand():
    assert brier_score([0.1, 0.9], [0, 1]) == pytest.approx(0.01, abs=1e-15)
    assert brier_score([1.0, 0.0], [0, 1]) == 1.0
    assert log_loss([0.5, 0.5, 0.5], [True, False, True]) == pytest.approx(np.log(2), abs=1e-15)
    assert log_loss([0.8, 0.25], [1, 0]) == pytest.approx(-(np.log(0.8) + np.log(0.75)) / 2, abs=1e-15)
    assert log_loss([0.0], [1], eps=1e-15) == pytest.approx(-np.log(1e-15), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_equal_sklearn(seed):
    p, y = _probabilities(seed, 2000)
    assert abs(brier_score(p, y) - metrics.brier_score_loss(y, p)) <= 1e-12
    assert abs(log_loss(p, y) - metrics.log_loss(y, p)) <= 1e-12


def test_log_loss_at_certain_predictions_equals_sklearn_with_its_eps():
    p, y = _probabilities(3, 500)
    p[:20], p[20:40] = 0.0, 1.0  # confident and sometimes wrong: the clip decides the value
    ours, theirs = log_loss(p, y, eps=MACHINE_EPS), metrics.log_loss(y, p)
    assert abs(ours - theirs) <= 1e-12
    assert abs(log_loss(p, y) - theirs) > 1e-3  # the default eps 1e-15 clips differently


def test_scores_drop_nan_pairs():
    p, y = _probabilities(4, 300)
    p_nan, y_nan = p.copy(), y.copy()
    p_nan[::7], y_nan[3::11] = np.nan, np.nan
    keep = ~(np.isnan(p_nan) | np.isnan(y_nan))
    assert brier_score(p_nan, y_nan) == pytest.approx(metrics.brier_score_loss(y[keep], p[keep]), abs=1e-12)
    assert log_loss(p_nan, y_nan) == pytest.approx(metrics.log_loss(y[keep], p[keep]), abs=1e-12)


# --- reliability table against sklearn.calibration.calibration_curve ----------------------------

def _assert_matches_calibration_curve(p: np.ndarray, y: np.ndarray, n_buckets: int) -> pl.DataFrame:
    table = reliability_table(p, y, n_buckets)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_buckets, strategy="uniform")
    assert table.schema == pl.Schema(RELIABILITY_SCHEMA)
    np.testing.assert_allclose(table["realised_rate"].to_numpy(), prob_true, rtol=0, atol=1e-12)
    np.testing.assert_allclose(table["predicted_mean"].to_numpy(), prob_pred, rtol=0, atol=1e-12)
    assert table["n"].sum() == len(p)
    return table


@pytest.mark.parametrize(("seed", "n_buckets"), [(0, 10), (1, 5), (2, 20), (3, 3), (4, 1)])
def test_reliability_equals_calibration_curve(seed, n_buckets):
    p, y = _probabilities(seed, 1500)
    table = _assert_matches_calibration_curve(p, y, n_buckets)
    for row in table.iter_rows(named=True):
        inside = (p > row["lower"]) & (p <= row["upper"]) | ((row["bucket"] == 1) & (p == 0.0))
        assert row["n"] == inside.sum()


def test_reliability_on_bucket_edges_follows_calibration_curve():
    # step values on the edges, as an isotonic calibrator gives: an inner edge goes to the bucket below
    p = np.array([0.0, 0.1, 0.1, 0.2, 0.5, 0.5, 0.55, 0.9, 1.0, 1.0, 0.3, 0.7])
    y = np.array([0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1], dtype=float)
    table = _assert_matches_calibration_curve(p, y, 10)
    assert table["bucket"].to_list() == [1, 2, 3, 5, 6, 7, 9, 10]
    assert table["n"].to_list() == [3, 1, 1, 2, 1, 1, 1, 2]
    assert table.filter(pl.col("bucket") == 1)["realised_rate"].item() == pytest.approx(1 / 3)
    assert table.filter(pl.col("bucket") == 5)["upper"].item() == 0.5


def test_reliability_omits_empty_buckets_and_drops_nan():
    table = reliability_table([0.05, 0.07, np.nan, 0.95], [0, 1, 1, 1], n_buckets=10)
    assert table["bucket"].to_list() == [1, 10]
    assert table["n"].to_list() == [2, 1]
    assert table["predicted_mean"].to_list() == pytest.approx([0.06, 0.95])
    assert table["realised_rate"].to_list() == [0.5, 1.0]


# --- fitting: known link, pure noise, leakage, monotonicity -------------------------------------

def test_logistic_is_the_unpenalised_mle_in_the_signal_units():
    x, y = _logistic_sample(5, 4000, a=-0.4, b=0.9, loc=2.0)
    a_ref, b_ref = _newton_logistic(x, y.astype(float))
    for scale in (1e-4, 1.0, 1e4):  # standardised inside: neither penalty nor stopping rule sees units
        calibrator = fit_calibrator(x * scale, y)
        assert calibrator.intercept == pytest.approx(a_ref, abs=1e-6)
        assert calibrator.slope * scale == pytest.approx(b_ref, abs=1e-6)
        np.testing.assert_allclose(calibrator.predict(x[:50] * scale), _sigmoid(a_ref + b_ref * x[:50]), atol=1e-7)


def test_known_logistic_link_is_recovered_and_calibrated_out_of_sample():
    a, b = 0.2, 1.5
    x, y = _logistic_sample(6, 40_000, a, b)
    train, test = slice(0, 20_000), slice(20_000, None)
    calibrator = fit_calibrator(x[train], y[train])
    assert calibrator.intercept == pytest.approx(a, abs=0.08)  # standard errors ~0.02
    assert calibrator.slope == pytest.approx(b, abs=0.1)
    result = calibrate(x[train], y[train], x[test], y[test], method="logistic")
    assert (result.n_train, result.n_test) == (20_000, 20_000)
    assert result.brier < result.base_rate_brier - 0.05
    for row in result.reliability.filter(pl.col("n") >= 100).iter_rows(named=True):
        p, n = row["predicted_mean"], row["n"]
        assert abs(row["realised_rate"] - p) <= 4 * np.sqrt(p * (1 - p) / n) + 0.01, row
    assert result.reliability["n"].sum() == 20_000


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pure_noise_has_no_skill_over_the_base_rate(method, seed):
    rng = np.random.default_rng(100 + seed)
    x, y = rng.normal(size=6000), rng.random(6000) < 0.53
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=SPEARMAN_WARNING)
        result = calibrate(x[:4000], y[:4000], x[4000:], y[4000:], method=method)
    base_rate = y[:4000].mean()
    assert result.base_rate_brier == pytest.approx(np.mean((base_rate - y[4000:]) ** 2), abs=1e-15)
    assert result.brier >= result.base_rate_brier - 0.002
    assert result.brier <= result.base_rate_brier + 0.01


@pytest.mark.parametrize("method", METHODS)
def test_test_outcomes_do_not_reach_the_fit(method):
    x, y = _logistic_sample(7, 3000, a=0.0, b=1.0)
    train_x, train_y, test_x, test_y = x[:2000], y[:2000], x[2000:], y[2000:]
    flipped = ~test_y
    first = calibrate(train_x, train_y, test_x, test_y, method=method)
    second = calibrate(train_x, train_y, test_x, flipped, method=method)
    # the same predictions on the test signal, whatever its outcomes ...
    same = ["bucket", "n", "predicted_mean"]
    assert first.reliability.select(same).equals(second.reliability.select(same))
    assert not first.reliability["realised_rate"].equals(second.reliability["realised_rate"])
    # ... and they are the training-only calibrator's
    predicted = fit_calibrator(train_x, train_y, method).predict(test_x)
    assert first.brier == brier_score(predicted, test_y)
    assert second.brier == brier_score(predicted, flipped)
    assert second.log_loss == log_loss(predicted, flipped)


@pytest.mark.parametrize(("b", "direction"), [(1.3, 1), (-1.3, -1)])
def test_isotonic_is_monotone_in_the_signal(b, direction):
    x, y = _logistic_sample(8, 3000, a=0.1, b=b)
    calibrator = fit_calibrator(x, y, "isotonic")
    grid = np.linspace(x.min() - 1.0, x.max() + 1.0, 2001)
    predicted = calibrator.predict(grid)
    assert (direction * np.diff(predicted) >= 0).all()
    assert direction * (predicted[-1] - predicted[0]) > 0.5
    # out of the training range: clipped to the end values
    assert calibrator.predict([x.min() - 100.0])[0] == predicted[0]
    assert calibrator.predict([x.max() + 100.0])[0] == predicted[-1]


@pytest.mark.parametrize("method", METHODS)
def test_nan_signals_are_dropped_from_the_fit_and_predicted_as_nan(method):
    x, y = _logistic_sample(9, 500, a=0.0, b=1.0)
    x_nan = x.copy()
    x_nan[::5] = np.nan
    keep = ~np.isnan(x_nan)
    with_nan, without = fit_calibrator(x_nan, y, method), fit_calibrator(x[keep], y[keep], method)
    probe = np.array([-1.0, np.nan, 0.3, 2.0])
    np.testing.assert_array_equal(with_nan.predict(probe), without.predict(probe))
    assert np.isnan(with_nan.predict(probe)[1])
    result = calibrate(x_nan, y, np.array([0.1, np.nan, 0.2]), np.array([1.0, 0.0, np.nan]), method=method)
    assert (result.n_train, result.n_test) == (keep.sum(), 1)


@pytest.mark.parametrize("method", METHODS)
def test_constant_signal_predicts_the_base_rate(method):
    y = np.arange(50) % 3 == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy: Spearman of a constant; sklearn: direction suspect
        calibrator = fit_calibrator(np.full(50, 4.0), y, method)
    np.testing.assert_allclose(calibrator.predict([4.0, -3.0, 9.0]), y.mean(), atol=1e-6)


# --- bad input ---------------------------------------------------------------------------------

def _one_line_value_error(call, match: str) -> None:
    with pytest.raises(ValueError, match=match) as caught:
        call()
    assert "\n" not in str(caught.value)


def test_bad_input_raises_one_line_value_errors():
    x, y = _logistic_sample(10, 100, a=0.0, b=1.0)
    _one_line_value_error(lambda: fit_calibrator(x, np.ones(100)), "one class only")
    _one_line_value_error(lambda: fit_calibrator(x, np.zeros(100, bool), "isotonic"), "one class only")
    few = np.r_[x[:9], np.nan, np.nan]
    _one_line_value_error(lambda: fit_calibrator(few, np.r_[y[:9], True, False]), "at least 10")
    _one_line_value_error(lambda: fit_calibrator(x, y, "platt"), "unknown calibration method 'platt'")
    _one_line_value_error(lambda: calibrate(x, y, x, y, method="beta"), "unknown calibration method")
    _one_line_value_error(lambda: Calibrator("spline", None), "unknown calibration method")
    _one_line_value_error(lambda: fit_calibrator(x, y[:-1]), "100 values but outcome has 99")
    _one_line_value_error(lambda: calibrate(x, y, x[:5], y[:6]), "test_signal has 5")
    _one_line_value_error(lambda: fit_calibrator(x, np.where(y, 2.0, 0.0)), "0/1 or bool")
    _one_line_value_error(lambda: fit_calibrator(np.r_[x[:-1], np.inf], y), "finite")
    _one_line_value_error(lambda: fit_calibrator(x.reshape(10, 10), y.reshape(10, 10)), "1-D")
    _one_line_value_error(lambda: fit_calibrator(x.astype(str), y), "numeric or bool")
    _one_line_value_error(lambda: fit_calibrator(x, y).predict([np.inf]), "finite")
    _one_line_value_error(lambda: calibrate(x, y, [np.nan, 1.0], [1, np.nan]), "no .* pair")
    _one_line_value_error(lambda: brier_score([0.5, 1.2], [0, 1]), r"\[0, 1\]")
    _one_line_value_error(lambda: brier_score([np.nan], [1]), "no .* pair")
    _one_line_value_error(lambda: log_loss([0.5], [1], eps=0.0), "eps")
    _one_line_value_error(lambda: reliability_table([0.5], [1], n_buckets=0), "n_buckets")
    _one_line_value_error(lambda: reliability_table([-0.1], [1]), r"\[0, 1\]")
    _one_line_value_error(lambda: fit_calibrator(x, y, "isotonic").intercept, "logistic method")


# --- properties --------------------------------------------------------------------------------

SIGNALS = arrays(np.float64, st.integers(10, 60), elements=st.floats(-1e6, 1e6, allow_nan=False))


@settings(max_examples=60, deadline=None)
@given(signal=SIGNALS, data=st.data(), method=st.sampled_from(METHODS))
def test_predictions_and_scores_are_probabilities(signal, data, method):
    outcome = data.draw(arrays(np.bool_, signal.shape))
    outcome[:2] = [True, False]  # both classes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant draws and ambiguous isotonic directions
        calibrator = fit_calibrator(signal, outcome, method)
    probe = data.draw(arrays(np.float64, st.integers(1, 30), elements=st.floats(-1e7, 1e7) | st.just(np.nan)))
    predicted = calibrator.predict(probe)
    known = ~np.isnan(probe)
    assert np.array_equal(np.isnan(predicted), ~known)
    assert ((predicted[known] >= 0) & (predicted[known] <= 1)).all()
    in_sample = calibrator.predict(signal)
    assert 0.0 <= brier_score(in_sample, outcome) <= 1.0
    assert log_loss(in_sample, outcome) >= 0.0
    assert reliability_table(in_sample, outcome)["n"].sum() == signal.size


@settings(max_examples=100, deadline=None)
@given(predicted=arrays(np.float64, st.integers(1, 50), elements=st.floats(0.0, 1.0)), data=st.data())
def test_brier_lies_in_unit_interval_and_matches_sklearn(predicted, data):
    outcome = data.draw(arrays(np.bool_, predicted.shape))
    score = brier_score(predicted, outcome)
    assert 0.0 <= score <= 1.0
    assert score == pytest.approx(metrics.brier_score_loss(outcome, predicted, pos_label=True), abs=1e-12)
    prob_true, _ = calibration_curve(outcome, predicted, n_bins=7, pos_label=True)
    np.testing.assert_allclose(reliability_table(predicted, outcome, 7)["realised_rate"].to_numpy(), prob_true)
