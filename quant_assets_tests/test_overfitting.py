"""Overfitting controls: PSR, DSR, MinTRL against the papers' formulas and example, vectorbt and
scipy on the same input; PBO by CSCV on a case ranked by hand; the stationary bootstrap."""

import math
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats

from quant_assets.quant.overfitting import (
    _stationary_indices,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    min_track_record_length,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    return_moments,
    sharpe_ratio,
    stationary_bootstrap_sharpe_ci,
)

BARS_A_YEAR = 250


def _normal_cdf(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def _mean_metric(returns: np.ndarray) -> float:
    return float(np.mean(returns))


# --- Sharpe and moments -------------------------------------------------------------------------

def test_sharpe_and_moments_match_numpy_and_scipy_on_skewed_returns():
    returns = np.random.default_rng(3).lognormal(0.0, 0.6, 500) - 1.1
    sr, skew, kurtosis = return_moments(returns)
    assert sr == pytest.approx(returns.mean() / returns.std(ddof=1), rel=1e-12)
    assert sr == sharpe_ratio(returns)
    assert skew == pytest.approx(stats.skew(returns, bias=True), rel=1e-12)
    assert kurtosis == pytest.approx(stats.kurtosis(returns, fisher=False, bias=True), rel=1e-12)
    assert skew > 1 and kurtosis > 3 + 1  # a lognormal's tail, so the comparison is not trivial
    assert kurtosis >= skew**2 + 1  # plug-in moments always satisfy Pearson's inequality


def test_sharpe_is_nan_for_short_or_constant_series():
    assert math.isnan(sharpe_ratio([0.01]))
    assert math.isnan(sharpe_ratio([]))
    assert math.isnan(sharpe_ratio([0.002] * 50))
    assert all(math.isnan(v) for v in return_moments([0.0, 0.0, 0.0]))
    assert sharpe_ratio([0.0, 1.0]) == pytest.approx(0.5 / math.sqrt(0.5))


# --- PSR, DSR, MinTRL ---------------------------------------------------------------------------

def test_dsr_reproduces_the_papers_numerical_example():
    # Bailey & Lopez de Prado (2014): annualised SR 2.5 over 5 years of daily returns (T = 1250,
    # 250 a year), N = 100 trials whose SRs have annualised variance 0.5, skew -3, kurtosis 10:
    # DSR = 0.9004. In per-bar units sr = 2.5 / sqrt(250), V = 0.5 / 250.
    sr, variance = 2.5 / math.sqrt(BARS_A_YEAR), 0.5 / BARS_A_YEAR
    dsr = deflated_sharpe_ratio(sr, variance, n_trials=100, n_obs=1250, skew=-3, kurtosis=10)
    assert dsr == pytest.approx(0.9004, abs=1e-4)
    # the formula's expected max SR: sqrt(0.002) * (0.4228 * 2.3263 + 0.5772 * 2.6800) = 0.11317
    # per bar, 1.7894 annualised (the "about 0.1132" the example deflates against)
    sr0 = expected_max_sharpe(variance, 100)
    assert sr0 == pytest.approx(0.11317, abs=1e-5)
    assert sr0 * math.sqrt(BARS_A_YEAR) == pytest.approx(1.7894, abs=1e-4)
    assert dsr == probabilistic_sharpe_ratio(sr, sr0, 1250, -3, 10)


def test_dsr_and_expected_max_match_vectorbt():
    from vectorbt.returns import metrics as vbt_metrics

    rng = np.random.default_rng(11)
    for _ in range(20):
        sr, variance = rng.uniform(-0.1, 0.3), rng.uniform(1e-5, 1e-2)
        n_trials, n_obs = int(rng.integers(2, 500)), int(rng.integers(30, 5000))
        skew = rng.uniform(-2, 2)
        kurtosis = skew**2 + 1 + rng.uniform(0, 20)
        ours = deflated_sharpe_ratio(sr, variance, n_trials, n_obs, skew, kurtosis)
        theirs = vbt_metrics.deflated_sharpe_ratio(
            est_sharpe=np.array([sr]), var_sharpe=variance, nb_trials=n_trials,
            backtest_horizon=n_obs, skew=np.array([skew]), kurtosis=np.array([kurtosis]))[0]
        assert ours == pytest.approx(theirs, abs=1e-12)
        assert expected_max_sharpe(variance, n_trials) == pytest.approx(
            vbt_metrics.approx_exp_max_sharpe(0.0, variance, n_trials), rel=1e-12)


def test_psr_is_one_half_at_the_benchmark():
    for skew, kurtosis in [(0, 3), (-3, 10), (1.5, 6)]:
        assert probabilistic_sharpe_ratio(0.07, 0.07, 400, skew, kurtosis) == 0.5


def test_psr_for_normal_returns_matches_the_closed_form():
    # skew 0, kurtosis 3: z = (0.1 - 0) * sqrt(100) / sqrt(1 + 0.1**2 / 2) = 1 / sqrt(1.005)
    z = 1 / math.sqrt(1.005)
    assert z == pytest.approx(0.997509336, abs=1e-9)
    psr = probabilistic_sharpe_ratio(0.1, 0.0, 101, 0.0, 3.0)
    assert psr == pytest.approx(_normal_cdf(z), abs=1e-12)
    assert psr == pytest.approx(0.84074, abs=1e-5)  # Phi(1) - 0.0025 * phi(1)


def test_psr_rises_with_the_track_record_and_falls_with_negative_skew():
    values = [probabilistic_sharpe_ratio(0.05, 0.0, n, -1.0, 6.0) for n in (10, 50, 200, 1000, 5000)]
    assert all(a < b for a, b in pairwise(values))
    below = [probabilistic_sharpe_ratio(-0.05, 0.0, n, 0.0, 3.0) for n in (10, 50, 200, 1000)]
    assert all(a > b for a, b in pairwise(below))
    assert probabilistic_sharpe_ratio(0.05, 0.0, 500, -2.0, 8.0) < probabilistic_sharpe_ratio(
        0.05, 0.0, 500, 0.0, 8.0)


@pytest.mark.parametrize(("sr", "benchmark", "skew", "kurtosis", "confidence"), [
    (0.1, 0.0, 0.0, 3.0, 0.95), (0.158, 0.113, -3.0, 10.0, 0.95), (0.03, 0.01, 0.5, 4.0, 0.99),
    (0.2, -0.05, -1.0, 5.0, 0.9),
])
def test_psr_at_the_min_track_record_length_is_the_confidence(sr, benchmark, skew, kurtosis,
                                                              confidence):
    n_bars = min_track_record_length(sr, benchmark, skew, kurtosis, confidence)
    assert n_bars > 2
    psr = probabilistic_sharpe_ratio(sr, benchmark, n_bars, skew, kurtosis)
    assert psr == pytest.approx(confidence, abs=1e-12)
    assert probabilistic_sharpe_ratio(sr, benchmark, math.ceil(n_bars), skew, kurtosis) >= confidence


def test_min_track_record_length_by_hand_and_infinite_without_edge():
    # normal returns, sr 0.1 vs 0: 1 + (1 + 0.005) * (1.644854 / 0.1)**2 = 272.90
    assert min_track_record_length(0.1, 0.0, 0.0, 3.0) == pytest.approx(
        1 + 1.005 * (1.6448536269514722 / 0.1) ** 2, rel=1e-12)
    assert min_track_record_length(0.05, 0.05, 0.0, 3.0) == math.inf
    assert min_track_record_length(0.01, 0.05, 0.0, 3.0) == math.inf


def test_expected_max_sharpe_grows_with_trials_and_scales_with_the_sd():
    assert expected_max_sharpe(0.01, 1) == 0.0
    values = [expected_max_sharpe(0.01, n) for n in (2, 5, 10, 100, 1000, 10_000)]
    assert values[0] > 0 and all(a < b for a, b in pairwise(values))
    assert expected_max_sharpe(0.04, 100) == pytest.approx(2 * expected_max_sharpe(0.01, 100), rel=1e-12)
    assert expected_max_sharpe(0.0, 100) == 0.0


def test_psr_propagates_nan_moments():
    assert math.isnan(probabilistic_sharpe_ratio(math.nan, 0.0, 100, 0.0, 3.0))
    assert math.isnan(deflated_sharpe_ratio(0.1, 0.01, 10, 100, math.nan, math.nan))
    assert math.isnan(min_track_record_length(math.nan, 0.0, 0.0, 3.0))


@st.composite
def _moments(draw):
    skew = draw(st.floats(-3, 3))
    kurtosis = skew**2 + 1 + draw(st.floats(0, 30))
    return skew, kurtosis


@given(sr=st.floats(-1, 1), benchmark=st.floats(-1, 1), n_obs=st.integers(2, 100_000),
       moments=_moments())
def test_psr_is_a_probability(sr, benchmark, n_obs, moments):
    assert 0.0 <= probabilistic_sharpe_ratio(sr, benchmark, n_obs, *moments) <= 1.0


@given(low=st.floats(-0.5, 0.5), step=st.floats(1e-3, 0.5), benchmark=st.floats(-0.5, 0.5),
       n_obs=st.integers(2, 10_000), moments=_moments())
def test_psr_rises_with_sr_where_its_derivative_is_positive(low, step, benchmark, n_obs, moments):
    # d PSR / d sr has the sign of 1 - skew*(sr + sr*)/2 + (kurt - 1)*sr*sr*/4 (linear in sr, so
    # checking both ends covers the interval); it is positive for realistic per-bar Sharpe ratios
    # but not everywhere (skew 3, kurt 10, sr* 0: PSR's z falls from 2 at sr 1 to 1 at sr 2)
    skew, kurtosis = moments
    high = low + step

    def numerator(sr):
        return 1 - skew * (sr + benchmark) / 2 + (kurtosis - 1) * sr * benchmark / 4

    assume(numerator(low) > 1e-3 and numerator(high) > 1e-3)
    lower = probabilistic_sharpe_ratio(low, benchmark, n_obs, skew, kurtosis)
    upper = probabilistic_sharpe_ratio(high, benchmark, n_obs, skew, kurtosis)
    assert upper >= lower


# --- PBO by CSCV --------------------------------------------------------------------------------

# block b (rows), strategy j (columns); each block holds two identical rows, so the mean metric of
# a split is (sum of its two blocks) / 2 - 1.5. Pair sums (IS | OOS) and the IS-best n*:
#   IS (0,1) [9,4,2,1] j0 | OOS (2,3) [1,6,4,2]: j0 worst, rank 1        -> omega 1/5, ln(1/4)
#   IS (0,2) [6,3,5,0] j0 | OOS (1,3) [4,7,1,3]: above 1 and 3, rank 3   -> 3/5, ln(3/2)
#   IS (0,3) [5,5,3,2] tie, j0 | OOS (1,2) [5,5,3,1]: ties j1 at top, 3.5 -> 7/10, ln(7/3)
#   IS (1,2) [5,5,3,1] tie, j0 | OOS (0,3) [5,5,3,2]: rank 3.5           -> 7/10, ln(7/3)
#   IS (1,3) [4,7,1,3] j1 | OOS (0,2) [6,3,5,0]: above 0 only, rank 2    -> 2/5, ln(2/3)
#   IS (2,3) [1,6,4,2] j1 | OOS (0,1) [9,4,2,1]: above 2 and 1, rank 3   -> 3/5, ln(3/2)
HAND_BLOCKS = np.array([[5, 1, 2, 0], [4, 3, 0, 1], [1, 2, 3, 0], [0, 4, 1, 2]], dtype=float)
HAND_LOGITS = [math.log(1 / 4), math.log(3 / 2), math.log(7 / 3), math.log(7 / 3), math.log(2 / 3),
               math.log(3 / 2)]


def test_pbo_matches_the_ranks_followed_by_hand():
    result = probability_of_backtest_overfitting(np.repeat(HAND_BLOCKS - 1.5, 2, axis=0), 4,
                                                 metric=_mean_metric)
    np.testing.assert_allclose(result.logits, HAND_LOGITS, rtol=0, atol=1e-15)
    assert result.pbo == pytest.approx(2 / 6)
    assert (result.n_splits, result.n_strategies, result.n_combinations) == (4, 4, 6)
    # the IS-best's metric, IS and OOS: always j0 or j1, whose four blocks sum to 10, so
    # IS + OOS = 10/2 - 3 = 2 on every split: the degradation line is OOS = 2 - IS exactly
    np.testing.assert_array_equal(result.is_best_is, [3, 1.5, 1, 1, 2, 1.5])
    np.testing.assert_array_equal(result.is_best_oos, [-1, 0.5, 1, 1, 0, 0.5])
    assert result.prob_oos_loss == pytest.approx(1 / 6)  # only the first split loses; 0 is no loss
    assert result.degradation_slope == pytest.approx(-1.0, abs=1e-12)
    assert result.degradation_intercept == pytest.approx(2.0, abs=1e-12)


def test_pbo_drops_the_oldest_rows_that_do_not_fill_a_block():
    hand = np.repeat(HAND_BLOCKS - 1.5, 2, axis=0)
    oldest = np.array([[100.0, -100.0, 0.0, 0.0]] * 3)  # T = 11, 11 mod 4 = 3 rows dropped
    result = probability_of_backtest_overfitting(np.vstack([oldest, hand]), 4, metric=_mean_metric)
    np.testing.assert_allclose(result.logits, HAND_LOGITS, rtol=0, atol=1e-15)


def test_a_custom_metric_sees_each_splits_rows_in_time_order():
    matrix = np.arange(24, dtype=float).reshape(12, 2) * [1, -1]  # 4 blocks of 3 rows
    seen = []

    def first_and_last(returns):
        seen.append((returns[0], returns[-1], returns.size))
        return float(returns[-1] - returns[0])  # order matters: a drawdown-like metric would too

    probability_of_backtest_overfitting(matrix, 4, metric=first_and_last)
    # split 0 is IS blocks (0, 1): rows 0..5 of column 0, then of column 1; then the other
    # splits; the OOS pass follows, starting with blocks (2, 3): rows 6..11
    assert seen[0] == (0.0, 10.0, 6) and seen[1] == (-1.0, -11.0, 6)
    assert seen[2] == (0.0, 16.0, 6)  # IS (0, 2): rows 0-2 then 6-8
    assert seen[12] == (12.0, 22.0, 6)


def test_block_sum_sharpe_equals_sharpe_of_the_concatenated_rows():
    rng = np.random.default_rng(5)
    matrix = rng.normal(0.01, 1.0, (123, 6))
    matrix[:, 2] = 0.0  # never trades: NaN Sharpe everywhere
    matrix[3:63, 4] = 0.25  # constant in the first blocks only (after the 3 dropped rows)
    matrix[70, 5] = np.nan  # NaN in one block
    matrix[:, 1] += 1e3  # a large mean, where a naive sum-of-squares variance loses digits
    fast = probability_of_backtest_overfitting(matrix, 8)
    slow = probability_of_backtest_overfitting(matrix, 8, metric=lambda r: sharpe_ratio(r))
    np.testing.assert_allclose(fast.is_best_is, slow.is_best_is, rtol=1e-10)
    np.testing.assert_allclose(fast.is_best_oos, slow.is_best_oos, rtol=1e-10)
    np.testing.assert_allclose(fast.logits, slow.logits, rtol=1e-12)
    assert fast.pbo == slow.pbo and fast.prob_oos_loss == slow.prob_oos_loss
    assert fast.degradation_slope == pytest.approx(slow.degradation_slope, rel=1e-9)


def test_pbo_counts_nan_as_the_worst():
    # columns 0 and 1 are constant (NaN Sharpe): never chosen IS, ranked below every number OOS
    rng = np.random.default_rng(8)
    matrix = np.column_stack([np.zeros(40), np.full(40, 0.5), rng.normal(0, 1, (40, 2))])
    result = probability_of_backtest_overfitting(matrix, 4)
    # the IS-best is column 2 or 3; OOS it is the best of two numbers (rank 4) or the worse
    # (rank 3, above the two NaN tied at ranks 1-2): omega 4/5 or 3/5, never overfit
    assert set(np.round(result.logits, 12)) <= {round(math.log(4), 12), round(math.log(1.5), 12)}
    assert result.pbo == 0.0
    all_nan = probability_of_backtest_overfitting(np.zeros((40, 3)), 4)
    # every metric NaN: n* = column 0, tied with all three OOS -> rank 2 of 3, omega 1/2, logit 0
    np.testing.assert_array_equal(all_nan.logits, np.zeros(6))
    assert all_nan.pbo == 1.0 and all_nan.prob_oos_loss == 1.0
    assert math.isnan(all_nan.degradation_slope)


def test_a_strategy_with_skill_is_not_overfit():
    rng = np.random.default_rng(21)
    matrix = rng.normal(0.0, 1.0, (1600, 10))
    matrix[:, 6] += 0.25  # per-bar Sharpe 0.25; a noise column's Sharpe over 800 bars has sd 0.035
    result = probability_of_backtest_overfitting(matrix, 16)
    assert result.pbo < 0.1
    assert result.prob_oos_loss == 0.0
    # column 6 is best IS and OOS on every split: rank 10 of 10, omega 10/11, logit ln(10)
    np.testing.assert_allclose(result.logits, math.log(10), rtol=1e-12)


def test_pure_noise_gives_pbo_near_one_half():
    # 50 iid N(0, 1) strategies, T = 1600, S = 16 (12,870 splits), seed 0: PBO 0.507. The splits
    # share blocks, so PBO varies a lot between seeds: 0.27 to 0.73 over seeds 0..9 (mean 0.47)
    matrix = np.random.default_rng(0).standard_normal((1600, 50))
    result = probability_of_backtest_overfitting(matrix, 16)
    assert result.n_combinations == 12_870 and result.logits.shape == (12_870,)
    assert abs(result.pbo - 0.5) <= 0.15
    # noise has no persistence: the IS-best's OOS Sharpe is centred on 0
    assert 0.3 < result.prob_oos_loss < 0.7
    assert abs(float(np.nanmean(result.is_best_oos))) < 0.02


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_strategies=st.integers(3, 6),
       n_splits=st.sampled_from([2, 4, 6]), extra_rows=st.integers(0, 30), data=st.data())
def test_pbo_does_not_depend_on_the_order_of_the_strategies(seed, n_strategies, n_splits,
                                                            extra_rows, data):
    matrix = np.random.default_rng(seed).normal(0.0, 1.0, (2 * n_splits + extra_rows, n_strategies))
    order = data.draw(st.permutations(range(n_strategies)))
    result = probability_of_backtest_overfitting(matrix, n_splits)
    permuted = probability_of_backtest_overfitting(matrix[:, order], n_splits)
    np.testing.assert_allclose(permuted.logits, result.logits, rtol=0, atol=1e-12)
    # not bit-equal: numpy's reductions may round differently with the memory layout (1 ulp)
    np.testing.assert_allclose(permuted.is_best_is, result.is_best_is, rtol=1e-12)
    np.testing.assert_allclose(permuted.is_best_oos, result.is_best_oos, rtol=1e-12)
    assert (permuted.pbo, permuted.prob_oos_loss) == (result.pbo, result.prob_oos_loss)


# --- stationary bootstrap -----------------------------------------------------------------------

def _normal_returns(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.05, 1.0, n)


def test_bootstrap_is_deterministic_for_a_seed():
    returns = _normal_returns(500)
    first = stationary_bootstrap_sharpe_ci(returns, n_samples=300, seed=3)
    assert stationary_bootstrap_sharpe_ci(returns, n_samples=300, seed=3) == first
    assert stationary_bootstrap_sharpe_ci(returns, n_samples=300, seed=4) != first


def test_bootstrap_interval_contains_the_sample_sharpe_and_has_the_asymptotic_width():
    returns = _normal_returns(4000)
    lower, upper = stationary_bootstrap_sharpe_ci(returns)
    sr = sharpe_ratio(returns)
    assert lower < sr < upper
    # iid normal returns: sd of the estimated Sharpe sqrt((1 + sr^2/2) / n) (Lo 2002)
    asymptotic_width = 2 * 1.96 * math.sqrt((1 + sr**2 / 2) / returns.size)
    assert (upper - lower) == pytest.approx(asymptotic_width, rel=0.2)


def test_bootstrap_interval_widens_as_the_sample_shrinks():
    returns = _normal_returns(4000)
    widths = [np.diff(stationary_bootstrap_sharpe_ci(returns[:n], n_samples=500))[0]
              for n in (250, 1000, 4000)]
    assert widths[0] > widths[1] > widths[2]


def test_resamples_are_blocks_that_run_forward_and_wrap_around():
    rng = np.random.Generator(np.random.PCG64(1))
    one_block = _stationary_indices(rng, 5, 10, 0.0)  # p = 0: one block per resample
    np.testing.assert_array_equal(one_block, (one_block[:, :1] + np.arange(10)) % 10)
    assert (one_block[:, 0] > 0).any()  # some wrap from bar 9 to bar 0
    indices = _stationary_indices(rng, 200, 300, 1 / 24)
    continues = np.diff(indices, axis=1) % 300 == 1
    # a new block starts with probability 1/24 (and lands on the next bar 1 time in 300)
    assert 1 - continues.mean() == pytest.approx(1 / 24 * 299 / 300, rel=0.05)


def test_longer_blocks_keep_autocorrelation_and_widen_the_interval():
    # an AR(1) series: blocks keep the order within them, so long blocks keep its autocorrelation
    # and widen the interval relative to mean_block = 1 (the iid bootstrap)
    rng = np.random.default_rng(2)
    ar = np.zeros(2000)
    for t in range(1, ar.size):
        ar[t] = 0.8 * ar[t - 1] + rng.normal()
    iid = np.diff(stationary_bootstrap_sharpe_ci(ar + 0.1, mean_block=1, n_samples=400))[0]
    blocks = np.diff(stationary_bootstrap_sharpe_ci(ar + 0.1, mean_block=50, n_samples=400))[0]
    assert blocks > 1.8 * iid  # the long-run sd of an AR(1) 0.8 is 3x its sd


def test_bootstrap_is_nan_for_fewer_than_two_bars():
    assert all(math.isnan(v) for v in stationary_bootstrap_sharpe_ci([0.01]))
    assert all(math.isnan(v) for v in stationary_bootstrap_sharpe_ci([0.01] * 30))


# --- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("call", "message"), [
    (lambda: probability_of_backtest_overfitting(np.zeros((40, 3)), 5), "even integer"),
    (lambda: probability_of_backtest_overfitting(np.zeros((40, 3)), 0), "even integer"),
    (lambda: probability_of_backtest_overfitting(np.zeros((40, 3)), 4.0), "even integer"),
    (lambda: probability_of_backtest_overfitting(np.zeros((31, 3)), 16), ">= 2 \\* n_splits"),
    (lambda: probability_of_backtest_overfitting(np.zeros((40, 1)), 4), ">= 2 strategies"),
    (lambda: probability_of_backtest_overfitting(np.zeros(40), 4), "2-D"),
    (lambda: probability_of_backtest_overfitting(np.full((40, 2), np.inf), 4), "infinite"),
    (lambda: probabilistic_sharpe_ratio(0.1, 0.0, 1, 0.0, 3.0), "n_obs must be >= 2"),
    (lambda: probabilistic_sharpe_ratio(0.1, 0.0, 100, 0.0, 0.0), "kurtosis must be raw"),
    (lambda: probabilistic_sharpe_ratio(1.0, 0.0, 100, 3.0, 2.0), "inconsistent"),
    (lambda: deflated_sharpe_ratio(0.1, 0.01, 0, 100, 0.0, 3.0), "n_trials"),
    (lambda: expected_max_sharpe(0.01, 2.5), "n_trials"),
    (lambda: expected_max_sharpe(-0.01, 10), "sr_variance"),
    (lambda: min_track_record_length(0.1, 0.0, 0.0, 3.0, confidence=1.0), "confidence"),
    (lambda: stationary_bootstrap_sharpe_ci([0.1, np.nan, 0.2]), "finite"),
    (lambda: stationary_bootstrap_sharpe_ci([0.1, 0.2], mean_block=0.5), "mean_block"),
    (lambda: stationary_bootstrap_sharpe_ci([0.1, 0.2], n_samples=0), "n_samples"),
    (lambda: stationary_bootstrap_sharpe_ci([0.1, 0.2], confidence=1.5), "confidence"),
    (lambda: sharpe_ratio(np.zeros((3, 3))), "1-D"),
])
def test_bad_input_raises_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
