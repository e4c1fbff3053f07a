"""Overfitting controls on per-bar returns: PSR, DSR, MinTRL, PBO by CSCV, a bootstrap interval.

Units and conventions, for every function here:

* Returns are per bar (one number per bar, any bar length), never annualised; so are Sharpe
  ratios and their variances. To compare with an annualised figure: ``sr = SR_ann / sqrt(k)`` and
  ``var = V_ann / k`` for ``k`` bars a year.
* The Sharpe ratio is ``mean / std`` with the sample std (ddof 1), no risk-free rate; it is NaN for
  fewer than two bars or a constant series (tested exactly: ``np.ptp(r) == 0``).
* Kurtosis is raw (Pearson): 3 for normal returns, not the excess kurtosis.
* Skewness and kurtosis are the plug-in moments of the sample, ``m3 / m2**1.5`` and
  ``m4 / m2**2`` with ``mk = mean((r - mean(r))**k)`` (``scipy.stats.skew`` and
  ``scipy.stats.kurtosis(fisher=False)`` with their default ``bias=True``; vectorbt's DSR uses the
  same). They are the moments of the empirical distribution, so ``kurt >= skew**2 + 1`` always
  holds and the PSR variance term ``1 - skew*sr + (kurt - 1)/4 * sr**2`` (a quadratic in ``sr``
  with discriminant ``skew**2 - (kurt - 1) <= 0``) is never negative. The bias-corrected
  estimators (``bias=False``) need not satisfy that inequality in small samples, which is why
  they are not used; the two differ by O(1/n).

References:

* PSR, MinTRL: Bailey & Lopez de Prado (2012), "The Sharpe Ratio Efficient Frontier",
  Journal of Risk 15(2); the variance of the estimated Sharpe ratio is Mertens (2002).
* DSR, expected maximum Sharpe: Bailey & Lopez de Prado (2014), "The Deflated Sharpe Ratio:
  Correcting for Selection Bias, Backtest Overfitting and Non-Normality", JPM 40(5).
* PBO by CSCV: Bailey, Borwein, Lopez de Prado & Zhu (2017), "The Probability of Backtest
  Overfitting", Journal of Computational Finance 20(4).
* Stationary bootstrap: Politis & Romano (1994), "The Stationary Bootstrap", JASA 89(428).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtr, ndtri

# cells (rows x bars) one vectorised step of the bootstrap or of CSCV handles at a time,
# bounding memory (~8 MB per float array) without a Python loop over samples or splits
_CHUNK_CELLS = 1_000_000


def _as_series(returns: ArrayLike) -> np.ndarray:
    series = np.asarray(returns, dtype=float)
    if series.ndim != 1:
        raise ValueError(f"returns must be 1-D (one value per bar), got shape {series.shape}")
    return series


def _is_integral(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def sharpe_ratio(returns: ArrayLike) -> float:
    """Per-bar Sharpe ratio ``mean(r) / std(r, ddof=1)`` (no risk-free rate, not annualised).

    NaN for fewer than two bars or a constant series (``np.ptp(r) == 0``); a NaN in ``returns``
    gives NaN."""
    series = _as_series(returns)
    if series.size < 2 or np.ptp(series) == 0:
        return math.nan
    return float(np.mean(series) / np.std(series, ddof=1))


def return_moments(returns: ArrayLike) -> tuple[float, float, float]:
    """``(per-bar Sharpe, skewness, raw kurtosis)`` of ``returns``.

    Skewness ``m3 / m2**1.5`` and kurtosis ``m4 / m2**2`` are the plug-in sample moments
    (``mk = mean((r - mean r)**k)``; ``scipy.stats.skew`` / ``kurtosis(fisher=False)`` with
    ``bias=True``), see the module docstring for why. All three are NaN for fewer than two bars
    or a constant series."""
    series = _as_series(returns)
    sr = sharpe_ratio(series)
    if math.isnan(sr):
        return math.nan, math.nan, math.nan
    deviations = series - series.mean()
    m2 = np.mean(deviations**2)
    skew = float(np.mean(deviations**3) / m2**1.5)
    kurtosis = float(np.mean(deviations**4) / m2**2)
    return sr, skew, kurtosis


def _sharpe_variance_term(sr: float, skew: float, kurtosis: float) -> float:
    """``1 - skew*sr + (kurtosis - 1)/4 * sr**2``: ``n - 1`` times the variance of the estimated
    Sharpe ratio (Mertens 2002). NaN inputs give NaN."""
    if kurtosis < 1:
        raise ValueError(f"kurtosis must be raw (3 = normal, always >= 1), got {kurtosis}; "
                         "add 3 to an excess kurtosis")
    term = 1 - skew * sr + (kurtosis - 1) / 4 * sr**2
    if term < 0:
        raise ValueError(f"skew {skew} and kurtosis {kurtosis} are inconsistent (no distribution "
                         "has kurtosis < skew**2 + 1): the Sharpe variance term is negative")
    return term


def probabilistic_sharpe_ratio(sr: float, sr_benchmark: float, n_obs: float, skew: float,
                               kurtosis: float) -> float:
    """Probability that the true per-bar Sharpe exceeds ``sr_benchmark``, given an estimate ``sr``
    from ``n_obs`` bars with the returns' ``skew`` and raw ``kurtosis`` (Bailey & Lopez de Prado
    2012)::

        PSR = Phi( (sr - sr_benchmark) * sqrt(n_obs - 1)
                   / sqrt(1 - skew*sr + (kurtosis - 1)/4 * sr**2) )

    ``n_obs`` is a bar count; any real ``>= 2`` is accepted so that :func:`min_track_record_length`
    round-trips. NaN in any moment gives NaN. A zero variance term (a two-point distribution at
    one particular ``sr``) gives 1 or 0 by the sign of ``sr - sr_benchmark`` (0.5 when equal).

    PSR rises with ``sr`` where ``1 - skew*(sr + sr*)/2 + (kurtosis - 1)*sr*sr*/4 > 0`` (the sign
    of its derivative), which holds for per-bar Sharpe ratios of realistic size but not
    everywhere: with skew 3, kurtosis 10 and ``sr* = 0`` the z-score falls from 2 at ``sr = 1``
    to 1 at ``sr = 2``."""
    if not n_obs >= 2:
        raise ValueError(f"n_obs must be >= 2 bars, got {n_obs}")
    term = _sharpe_variance_term(sr, skew, kurtosis)
    excess = sr - sr_benchmark
    if term == 0:
        return 0.5 if excess == 0 else float(excess > 0)
    return float(ndtr(excess * math.sqrt(n_obs - 1) / math.sqrt(term)))


def expected_max_sharpe(sr_variance: float, n_trials: int) -> float:
    """Expected maximum of ``n_trials`` independent per-bar Sharpe estimates whose true Sharpe is 0
    and whose variance across trials is ``sr_variance`` (Bailey & Lopez de Prado 2014, after the
    false strategy theorem)::

        E[max SR] = sqrt(V) * ((1 - gamma) * Phi^-1(1 - 1/N) + gamma * Phi^-1(1 - 1/(N e)))

    with ``gamma`` the Euler-Mascheroni constant. One trial gives 0.0 (its own expected value)."""
    if not _is_integral(n_trials) or n_trials < 1:
        raise ValueError(f"n_trials must be an integer >= 1, got {n_trials!r}")
    if not (math.isfinite(sr_variance) and sr_variance >= 0):
        raise ValueError(f"sr_variance must be finite and >= 0, got {sr_variance}")
    if n_trials == 1:
        return 0.0
    gamma = np.euler_gamma
    quantiles = (1 - gamma) * ndtri(1 - 1 / n_trials) + gamma * ndtri(1 - 1 / (n_trials * math.e))
    return float(math.sqrt(sr_variance) * quantiles)


def deflated_sharpe_ratio(sr: float, sr_variance: float, n_trials: int, n_obs: float, skew: float,
                          kurtosis: float) -> float:
    """PSR of the selected strategy's per-bar ``sr`` against the Sharpe the best of ``n_trials``
    skill-less trials would show, ``expected_max_sharpe(sr_variance, n_trials)`` (Bailey & Lopez
    de Prado 2014). ``n_obs``, ``skew`` and raw ``kurtosis`` are those of the selected strategy."""
    benchmark = expected_max_sharpe(sr_variance, n_trials)
    return probabilistic_sharpe_ratio(sr, benchmark, n_obs, skew, kurtosis)


def min_track_record_length(sr: float, sr_benchmark: float, skew: float, kurtosis: float,
                            confidence: float = 0.95) -> float:
    """Bars needed for ``PSR(sr_benchmark) >= confidence`` (Bailey & Lopez de Prado 2012)::

        MinTRL = 1 + (1 - skew*sr + (kurtosis - 1)/4 * sr**2) * (Phi^-1(confidence) / (sr - sr*))**2

    A real number of bars (round up to use it); ``inf`` when ``sr <= sr_benchmark``, NaN when a
    moment is NaN."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    term = _sharpe_variance_term(sr, skew, kurtosis)
    if math.isnan(term) or math.isnan(sr_benchmark):
        return math.nan
    excess = sr - sr_benchmark
    if excess <= 0:
        return math.inf
    return float(1 + term * (ndtri(confidence) / excess) ** 2)


@dataclass(frozen=True)
class PBOResult:
    """CSCV results. A "split" is one combination of ``n_splits / 2`` in-sample (IS) blocks, the
    other blocks out-of-sample (OOS); arrays hold one value per split, in the lexicographic order
    of ``itertools.combinations(range(n_splits), n_splits // 2)`` over the IS block indices."""

    pbo: float  # share of splits whose logit <= 0 (the IS-best is at or below the OOS median)
    logits: np.ndarray  # ln(omega / (1 - omega)), omega = OOS rank of the IS-best / (N + 1)
    prob_oos_loss: float  # share of splits where the IS-best strategy's OOS metric is < 0 (or NaN)
    degradation_slope: float  # OLS slope of OOS metric on IS metric of the IS-best, over splits
    degradation_intercept: float
    is_best_is: np.ndarray  # IS metric of the IS-best strategy, per split
    is_best_oos: np.ndarray  # its OOS metric, per split
    n_splits: int  # S, the number of contiguous blocks
    n_strategies: int  # N
    n_combinations: int  # C(S, S/2), the number of splits


def _check_returns_matrix(returns_matrix: ArrayLike, n_splits: int) -> np.ndarray:
    matrix = np.asarray(returns_matrix, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(f"returns_matrix must be 2-D (bars x strategies), got shape {matrix.shape}")
    if not _is_integral(n_splits) or n_splits < 2 or n_splits % 2:
        raise ValueError(f"n_splits must be an even integer >= 2, got {n_splits!r}")
    n_bars, n_strategies = matrix.shape
    if n_strategies < 2:
        raise ValueError(f"returns_matrix needs >= 2 strategies (columns), got {n_strategies}")
    if n_bars < 2 * n_splits:
        raise ValueError(f"returns_matrix needs >= 2 * n_splits = {2 * n_splits} bars (rows) so "
                         f"each block has two, got {n_bars}")
    if np.isinf(matrix).any():
        raise ValueError("returns_matrix has infinite values")
    return matrix


def _blocks(matrix: np.ndarray, n_splits: int) -> np.ndarray:
    """``(S, L, N)``: ``S`` contiguous blocks of ``L = T // S`` rows, dropping the first (oldest)
    ``T mod S`` rows."""
    block_len = matrix.shape[0] // n_splits
    kept = matrix[matrix.shape[0] - block_len * n_splits:]
    return kept.reshape(n_splits, block_len, matrix.shape[1])


def _split_blocks(n_splits: int) -> tuple[np.ndarray, np.ndarray]:
    """``(C, S/2)`` IS block indices, one row per combination in lexicographic order, and the
    ``(C, S/2)`` OOS blocks (the complement), each row ascending."""
    is_blocks = np.array(list(combinations(range(n_splits), n_splits // 2)))
    in_sample = np.zeros((is_blocks.shape[0], n_splits), dtype=bool)
    in_sample[np.arange(is_blocks.shape[0])[:, None], is_blocks] = True
    oos_blocks = np.nonzero(~in_sample)[1].reshape(is_blocks.shape)
    return is_blocks, oos_blocks


def _chunks(n_rows: int, cells_per_row: int) -> list[slice]:
    step = max(1, _CHUNK_CELLS // max(1, cells_per_row))
    return [slice(start, min(start + step, n_rows)) for start in range(0, n_rows, step)]


def _split_sharpes(blocks: np.ndarray, split_blocks: np.ndarray) -> np.ndarray:
    """``(C, N)`` per-bar Sharpe of each strategy over the rows of the blocks in each row of
    ``split_blocks`` (``(C, k)`` block indices), from per-block summaries: the pooled mean of equal
    blocks is the mean of the block means, the pooled sum of squared deviations is
    ``sum(M2_b) + L * sum((mean_b - mean)**2)`` (Chan et al.'s parallel variance), and a split is
    constant (NaN Sharpe, as :func:`sharpe_ratio`) when its max equals its min."""
    block_len = blocks.shape[1]
    block_mean = blocks.mean(axis=1)
    block_m2 = ((blocks - block_mean[:, None, :]) ** 2).sum(axis=1)
    block_max, block_min = blocks.max(axis=1), blocks.min(axis=1)
    n_rows = split_blocks.shape[1] * block_len
    sharpes = np.empty((split_blocks.shape[0], blocks.shape[2]))
    for rows in _chunks(split_blocks.shape[0], split_blocks.shape[1] * blocks.shape[2]):
        chosen = split_blocks[rows]
        means = block_mean[chosen]
        mean = means.mean(axis=1)
        m2 = block_m2[chosen].sum(axis=1) + block_len * ((means - mean[:, None, :]) ** 2).sum(axis=1)
        constant = block_max[chosen].max(axis=1) == block_min[chosen].min(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            sharpes[rows] = np.where(constant, np.nan, mean / np.sqrt(m2 / (n_rows - 1)))
    return sharpes


def _split_metrics(blocks: np.ndarray, split_blocks: np.ndarray,
                   metric: Callable[[np.ndarray], float]) -> np.ndarray:
    """``(C, N)``: ``metric`` of each strategy's rows (in time order) over each split's blocks."""
    n_strategies = blocks.shape[2]
    values = np.empty((split_blocks.shape[0], n_strategies))
    for split, chosen in enumerate(split_blocks):
        rows = blocks[chosen].reshape(-1, n_strategies)
        values[split] = [metric(rows[:, j]) for j in range(n_strategies)]
    return values


def _degradation(is_values: np.ndarray, oos_values: np.ndarray) -> tuple[float, float]:
    """OLS ``oos = intercept + slope * is`` over the splits where both are finite."""
    finite = np.isfinite(is_values) & np.isfinite(oos_values)
    x, y = is_values[finite], oos_values[finite]
    if x.size < 2 or np.ptp(x) == 0:
        return math.nan, math.nan
    dx = x - x.mean()
    slope = float(dx @ (y - y.mean()) / (dx @ dx))
    return slope, float(y.mean() - slope * x.mean())


def probability_of_backtest_overfitting(returns_matrix: ArrayLike, n_splits: int = 16,
                                        metric: Callable[[np.ndarray], float] = sharpe_ratio,
                                        ) -> PBOResult:
    """PBO by combinatorially symmetric cross-validation (Bailey, Borwein, Lopez de Prado & Zhu
    2017).

    ``returns_matrix``: ``(T bars, N strategies)`` per-bar returns in time order. The rows are
    cut into ``n_splits = S`` contiguous blocks of ``T // S`` rows; the first (oldest) ``T mod S``
    rows are dropped. For each of the ``C(S, S/2)`` ways to pick ``S/2`` blocks as in-sample (the
    rest out-of-sample), ``metric`` is computed per strategy on the IS rows and on the OOS rows
    (each in time order); ``n*`` = argmax of the IS metric (ties: lowest column index); ``omega``
    = rank of ``n*``'s OOS metric among the ``N`` OOS metrics (1 = worst .. N = best, ties get
    their average rank) / ``(N + 1)``; ``logit = ln(omega / (1 - omega))``. PBO is the share of
    splits with ``logit <= 0``. A NaN metric counts as ``-inf`` (never the IS-best unless all are
    NaN, the worst OOS rank, an OOS loss); the degradation regression uses finite pairs only.

    ``metric`` maps one strategy's 1-D returns to a float. The default :func:`sharpe_ratio` is
    computed from per-block sums (vectorised over splits); any other metric is called once per
    split and strategy. NaN returns are allowed (they make the metric of the splits holding them
    NaN, for the default); infinite ones are not."""
    matrix = _check_returns_matrix(returns_matrix, n_splits)
    blocks = _blocks(matrix, n_splits)
    is_blocks, oos_blocks = _split_blocks(n_splits)
    if metric is sharpe_ratio:
        is_metric, oos_metric = _split_sharpes(blocks, is_blocks), _split_sharpes(blocks, oos_blocks)
    else:
        is_metric = _split_metrics(blocks, is_blocks, metric)
        oos_metric = _split_metrics(blocks, oos_blocks, metric)

    n_combinations, n_strategies = is_metric.shape
    splits = np.arange(n_combinations)
    best = np.argmax(np.where(np.isnan(is_metric), -np.inf, is_metric), axis=1)
    oos_ranked = np.where(np.isnan(oos_metric), -np.inf, oos_metric)
    best_oos = oos_ranked[splits, best][:, None]
    rank = (oos_ranked < best_oos).sum(axis=1) + ((oos_ranked == best_oos).sum(axis=1) + 1) / 2
    omega = rank / (n_strategies + 1)
    logits = np.log(omega / (1 - omega))
    is_best_is, is_best_oos = is_metric[splits, best], oos_metric[splits, best]
    slope, intercept = _degradation(is_best_is, is_best_oos)
    return PBOResult(
        pbo=float(np.mean(logits <= 0)), logits=logits,
        prob_oos_loss=float(np.mean(best_oos[:, 0] < 0)),
        degradation_slope=slope, degradation_intercept=intercept,
        is_best_is=is_best_is, is_best_oos=is_best_oos,
        n_splits=int(n_splits), n_strategies=n_strategies, n_combinations=n_combinations,
    )


def _stationary_indices(rng: np.random.Generator, n_samples: int, n_bars: int,
                        new_block_probability: float) -> np.ndarray:
    """``(n_samples, n_bars)`` stationary-bootstrap indices: position 0 starts a block, each later
    position starts one with probability ``p`` (so lengths are geometric with mean ``1/p``); a
    block starts at a uniform random bar and runs forward, wrapping from the last bar to the
    first."""
    starts_block = rng.random((n_samples, n_bars)) < new_block_probability
    start_bars = rng.integers(0, n_bars, size=(n_samples, n_bars))
    positions = np.arange(n_bars)
    # the position where each bar's block began; 0 (the first block) before any drawn start
    block_origin = np.maximum.accumulate(np.where(starts_block, positions, 0), axis=1)
    origin_bar = np.take_along_axis(start_bars, block_origin, axis=1)
    return (origin_bar + positions - block_origin) % n_bars


def _row_sharpes(samples: np.ndarray) -> np.ndarray:
    """Per-row :func:`sharpe_ratio` of a ``(rows, bars)`` array."""
    constant = np.ptp(samples, axis=1) == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpes = samples.mean(axis=1) / samples.std(axis=1, ddof=1)
    return np.where(constant, np.nan, sharpes)


def stationary_bootstrap_sharpe_ci(returns: ArrayLike, *, mean_block: float = 24.0,
                                   n_samples: int = 1000, confidence: float = 0.95,
                                   seed: int = 7) -> tuple[float, float]:
    """Percentile interval ``(lower, upper)`` of the per-bar Sharpe ratio by the stationary
    bootstrap (Politis & Romano 1994).

    Each of ``n_samples`` resamples has as many bars as ``returns``, made of blocks that start at
    uniform random bars and run forward (wrapping circularly), with geometric lengths of mean
    ``mean_block`` bars. The interval is the ``(1 - confidence)/2`` and ``(1 + confidence)/2``
    quantiles (numpy's linear interpolation) of the resamples' Sharpe ratios, ignoring resamples
    that are constant. Draws come from ``numpy.random.Generator(PCG64(seed))`` in a fixed order,
    so a seed gives the same interval every time. ``(nan, nan)`` for fewer than two bars or
    when every resample is constant."""
    series = _as_series(returns)
    if not np.isfinite(series).all():
        raise ValueError("returns must be finite (drop missing bars first)")
    if not (math.isfinite(mean_block) and mean_block >= 1):
        raise ValueError(f"mean_block must be a finite number of bars >= 1, got {mean_block}")
    if not _is_integral(n_samples) or n_samples < 1:
        raise ValueError(f"n_samples must be an integer >= 1, got {n_samples!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if series.size < 2:
        return math.nan, math.nan
    rng = np.random.Generator(np.random.PCG64(seed))
    sharpes = np.empty(n_samples)
    for rows in _chunks(n_samples, series.size):
        indices = _stationary_indices(rng, rows.stop - rows.start, series.size, 1 / mean_block)
        sharpes[rows] = _row_sharpes(series[indices])
    sharpes = sharpes[~np.isnan(sharpes)]
    if sharpes.size == 0:
        return math.nan, math.nan
    lower, upper = np.quantile(sharpes, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lower), float(upper)
