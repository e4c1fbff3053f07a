"""Range- and close-based volatility estimators, returns and rolling moments (pure numpy).

Conventions (shared with :mod:`quant_assets.quant.indicators`):

* Inputs are 1-D float64 arrays ordered oldest -> newest, one value per bar; prices are
  strictly positive. ``out[t]`` uses only bars ``<= t`` (no look-ahead), so ``f(x[:k]) ==
  f(x)[:k]`` bit for bit.
* ``NaN`` marks "not defined yet" (warm-up) and windows that contain an undefined input.
* Volatilities are **annualised fractions** (0.5 = 50 % per year): the per-bar variance
  estimate times ``bars_per_year`` (``365 * 1440 / minutes_per_bar``: crypto trades 365
  days a year), square-rooted. Windows count bars, not clock time; a missing bar is
  simply absent (gaps are not filled).
* Windows up to :data:`EXACT_WINDOW` bars are summed term by term; longer ones use
  differences of running sums of values shifted by the series' first value (prefix-stable),
  accurate to ~1e-12 relative on a year of 5m bars.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from quant_assets.quant.indicators import _as_1d, _check_period, _may_have_nan, _window_sums

__all__ = [
    "EXACT_WINDOW",
    "amihud",
    "log_return",
    "rolling_beta_corr",
    "rolling_mean",
    "rolling_var",
    "rolling_zscore",
    "simple_return",
    "vol_close_to_close",
    "vol_garman_klass",
    "vol_parkinson",
    "vol_rogers_satchell",
    "vol_yang_zhang",
]

FloatArray = NDArray[np.float64]
EXACT_WINDOW = 8
_LN2 = math.log(2.0)


def _annualise(bars_per_year: float) -> float:
    if not (math.isfinite(bars_per_year) and bars_per_year > 0):
        raise ValueError(f"bars_per_year must be a positive finite number, got {bars_per_year}")
    return float(bars_per_year)


def _first_false(mask: np.ndarray) -> int:
    """Index of the first ``False`` in ``mask`` (``len(mask)`` if none)."""
    if mask.size == 0:
        return 0
    i = int(np.argmin(mask))
    return mask.size if mask[i] else i


def _first_valid(x: FloatArray) -> int:
    if not _may_have_nan(x):
        return 0
    return _first_false(np.isnan(x))


def _sums(arrays: list[FloatArray], n: int) -> list[FloatArray]:
    """Sums of the last ``n`` values of each (equally long) array, by running-sum differences.

    NaN wherever the window holds a NaN in *any* of the arrays. Running sums start at the
    first bar where all arrays are defined, so leading NaNs (warm-ups) cost nothing and the
    result at ``t`` depends only on bars ``<= t``.
    """
    size = arrays[0].size
    bad = None  # NaN anywhere in any array (only built when some array has a NaN)
    for a in arrays:
        if _may_have_nan(a):
            bad = np.isnan(a) if bad is None else bad | np.isnan(a)
    out = [np.empty(size) for _ in arrays]
    first = 0 if bad is None else _first_false(bad)
    m = size - first - n + 1
    if m <= 0:
        for dest in out:
            dest.fill(np.nan)
        return out
    tail_bad = None if bad is None else bad[first:]
    poisoned = None
    if tail_bad is not None and tail_bad.any():
        cb = np.cumsum(tail_bad)
        nb = cb[n - 1 :].copy()
        nb[1:] -= cb[:-n]
        poisoned = nb > 0
    for dest, a in zip(out, arrays, strict=True):
        tail = a[first:]
        if poisoned is not None:
            tail = np.where(tail_bad, 0.0, tail)
        c = np.cumsum(tail)
        dest[: first + n - 1] = np.nan
        dest[first + n - 1] = c[n - 1]  # window sums: c[t] - c[t - n], written in place
        np.subtract(c[n:], c[:-n], out=dest[first + n :])
        if poisoned is not None:
            dest[first + n - 1 :][poisoned] = np.nan
    return out


def _anchor(x: FloatArray) -> float:
    """The first defined value: subtracting it keeps running sums small (prefix-stable)."""
    i = _first_valid(x)
    return float(x[i]) if i < x.size else 0.0


def rolling_mean(x: ArrayLike, n: int) -> FloatArray:
    """Mean of the last ``n`` values, valid from index ``n - 1``; a NaN poisons its windows."""
    arr = _as_1d(x, "x")
    n = _check_period(n)
    out = np.full(arr.size, np.nan)
    if arr.size - n + 1 <= 0:
        return out
    if n <= EXACT_WINDOW:
        out[n - 1 :] = _window_sums(arr, n) / n
        return out
    x0 = _anchor(arr)
    (s1,) = _sums([arr - x0], n)
    return np.add(np.divide(s1, n, out=s1), x0, out=s1)


def rolling_var(x: ArrayLike, n: int, ddof: int = 1) -> FloatArray:
    """Rolling variance of the last ``n`` values (``ddof`` delta degrees of freedom).

    Two-pass (mean, then squared deviations) for ``n <= EXACT_WINDOW``; for longer windows
    ``(S2 - S1^2 / n) / (n - ddof)`` over values shifted by the series' first value, clamped at 0.
    """
    arr = _as_1d(x, "x")
    n = _check_period(n, minimum=ddof + 1)
    out = np.full(arr.size, np.nan)
    m = arr.size - n + 1
    if m <= 0:
        return out
    if n <= EXACT_WINDOW:
        mean = rolling_mean(arr, n)[n - 1 :]
        ss = np.zeros(m)
        for k in range(n):  # loop over the window offset, vectorised over bars
            dev = arr[k : k + m] - mean
            ss += dev * dev
        out[n - 1 :] = ss / (n - ddof)
        return out
    y = arr - _anchor(arr)
    s1, s2 = _sums([y, y * y], n)
    return _var_from_sums(s1, s2, n, ddof)


def _var_from_sums(s1: FloatArray, s2: FloatArray, n: int, ddof: int) -> FloatArray:
    """``max(s2 - s1 * s1 / n, 0) / (n - ddof)``, in ``s2``'s memory (``s1`` is overwritten)."""
    np.divide(np.multiply(s1, s1, out=s1), n, out=s1)
    return np.divide(np.maximum(np.subtract(s2, s1, out=s2), 0.0, out=s2), n - ddof, out=s2)


def _rolling_mean_var(arr: FloatArray, n: int, ddof: int) -> tuple[FloatArray, FloatArray]:
    """``(rolling_mean(arr, n), rolling_var(arr, n, ddof))`` bit for bit; long windows share one
    set of running sums (same anchor, same operations) instead of computing them twice."""
    if n <= EXACT_WINDOW or arr.size - n + 1 <= 0:
        return rolling_mean(arr, n), rolling_var(arr, n, ddof)
    n = _check_period(n, minimum=ddof + 1)
    x0 = _anchor(arr)
    y = arr - x0
    s1, s2 = _sums([y, y * y], n)
    mean = np.add(np.divide(s1, n), x0)
    return mean, _var_from_sums(s1, s2, n, ddof)


def simple_return(close: ArrayLike, periods: int = 1) -> FloatArray:
    """``close[t] / close[t - periods] - 1`` (fraction over ``periods`` bars); NaN for ``t < periods``."""
    c = _as_1d(close, "close")
    k = _check_period(periods, "periods")
    out = np.full(c.size, np.nan)
    if c.size > k:
        out[k:] = c[k:] / c[:-k] - 1.0
    return out


def log_return(close: ArrayLike, periods: int = 1) -> FloatArray:
    """``ln(close[t] / close[t - periods])`` (log return over ``periods`` bars); NaN for ``t < periods``."""
    c = _as_1d(close, "close")
    k = _check_period(periods, "periods")
    out = np.full(c.size, np.nan)
    if c.size > k:
        out[k:] = np.log(c[k:] / c[:-k])
    return out


def rolling_zscore(x: ArrayLike, n: int) -> FloatArray:
    """``(x[t] - mean) / std`` over the last ``n`` values including ``t`` (``ddof = 1``).

    Dimensionless. NaN until ``n`` defined values exist and where the window's std is 0.
    """
    arr = _as_1d(x, "x")
    n = _check_period(n, minimum=2)
    mean, var = _rolling_mean_var(arr, n, 1)
    sd = np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (arr - mean) / sd
    return np.where(sd > 0, z, np.nan)


def vol_close_to_close(close: ArrayLike, n: int, bars_per_year: float) -> FloatArray:
    """Close-to-close volatility: ``sqrt(var_{ddof=1}(r[t-n+1..t]) * bars_per_year)``.

    ``r = ln(c[t] / c[t-1])``. Annualised fraction; first valid index ``n``.
    """
    bpy = _annualise(bars_per_year)
    return np.sqrt(rolling_var(log_return(close), _check_period(n, minimum=2), ddof=1) * bpy)


def vol_parkinson(high: ArrayLike, low: ArrayLike, n: int, bars_per_year: float) -> FloatArray:
    """Parkinson (1980) high-low volatility.

    ``sigma^2 = mean_n( ln(h/l)^2 ) / (4 ln 2)`` per bar, times ``bars_per_year``, square-rooted.
    Annualised fraction; first valid index ``n - 1`` (needs no previous close).
    """
    bpy = _annualise(bars_per_year)
    hl = np.log(_as_1d(high, "high") / _as_1d(low, "low"))
    return np.sqrt(rolling_mean(hl * hl, _check_period(n)) / (4.0 * _LN2) * bpy)


def _gk_terms(o: FloatArray, h: FloatArray, lo: FloatArray, c: FloatArray) -> FloatArray:
    hl = np.log(h / lo)
    co = np.log(c / o)
    return np.maximum(0.5 * hl * hl - (2.0 * _LN2 - 1.0) * co * co, 0.0)


def vol_garman_klass(
    open_: ArrayLike, high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int, bars_per_year: float
) -> FloatArray:
    """Garman-Klass (1980) volatility.

    Per bar ``g = 0.5 ln(h/l)^2 - (2 ln 2 - 1) ln(c/o)^2``, **clamped at 0** (a bar with a
    large body and a small range would otherwise give a negative variance);
    ``sigma = sqrt(mean_n(g) * bars_per_year)``. Annualised fraction; first valid index ``n - 1``.
    """
    bpy = _annualise(bars_per_year)
    o, h, lo, c = (_as_1d(a, k) for a, k in ((open_, "open"), (high, "high"), (low, "low"), (close, "close")))
    return np.sqrt(rolling_mean(_gk_terms(o, h, lo, c), _check_period(n)) * bpy)


def _rs_terms(o: FloatArray, h: FloatArray, lo: FloatArray, c: FloatArray) -> FloatArray:
    return np.log(h / c) * np.log(h / o) + np.log(lo / c) * np.log(lo / o)


def vol_rogers_satchell(
    open_: ArrayLike, high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int, bars_per_year: float
) -> FloatArray:
    """Rogers-Satchell (1991) drift-independent volatility.

    Per bar ``rs = ln(h/c) ln(h/o) + ln(l/c) ln(l/o)`` (>= 0 for a valid bar);
    ``sigma = sqrt(mean_n(rs) * bars_per_year)``. Annualised fraction; first valid index ``n - 1``.
    """
    bpy = _annualise(bars_per_year)
    o, h, lo, c = (_as_1d(a, k) for a, k in ((open_, "open"), (high, "high"), (low, "low"), (close, "close")))
    return np.sqrt(np.maximum(rolling_mean(_rs_terms(o, h, lo, c), _check_period(n)), 0.0) * bpy)


def vol_yang_zhang(
    open_: ArrayLike, high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int, bars_per_year: float
) -> FloatArray:
    """Yang-Zhang (2000) volatility.

    ``sigma^2 = var(ln(o_t / c_{t-1})) + k var(ln(c_t / o_t)) + (1 - k) mean(rs)`` over the
    last ``n`` bars (variances with ``ddof = 1``, ``rs`` as in :func:`vol_rogers_satchell`),
    ``k = 0.34 / (1.34 + (n + 1) / (n - 1))``; times ``bars_per_year``, square-rooted.
    Annualised fraction; first valid index ``n`` (the overnight term needs a previous close).
    For 24/7 crypto bars the "overnight" gap ``o_t / c_{t-1}`` is usually ~0.
    """
    bpy = _annualise(bars_per_year)
    n = _check_period(n, minimum=2)
    o, h, lo, c = (_as_1d(a, k) for a, k in ((open_, "open"), (high, "high"), (low, "low"), (close, "close")))
    overnight = np.full(o.size, np.nan)
    if o.size > 1:
        overnight[1:] = np.log(o[1:] / c[:-1])
    open_close = np.log(c / o)
    rs = _rs_terms(o, h, lo, c)
    rs[:1] = np.nan  # keep the three windows aligned on bars that have a previous close
    k = 0.34 / (1.34 + (n + 1.0) / (n - 1.0))
    var = rolling_var(overnight, n) + k * rolling_var(open_close, n) + (1.0 - k) * rolling_mean(rs, n)
    return np.sqrt(np.maximum(var, 0.0) * bpy)


def amihud(close: ArrayLike, dollar_volume: ArrayLike, n: int, scale: float = 1e6) -> FloatArray:
    """Amihud (2002) illiquidity: ``mean_n( |r_t| / dollar_volume_t ) * scale``.

    ``r`` is the 1-bar simple return, ``dollar_volume`` the bar's quote-currency volume; with
    the default ``scale`` the unit is "absolute return per million of quote currency traded".
    A bar without volume has no defined ratio (NaN), which leaves its windows undefined.
    First valid index ``n``.
    """
    r = simple_return(close)
    dv = _as_1d(dollar_volume, "dollar_volume")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = np.abs(r) / dv * scale
    ratio[~(dv > 0) | ~np.isfinite(ratio)] = np.nan
    return rolling_mean(ratio, _check_period(n))


def rolling_beta_corr(r: ArrayLike, m: ArrayLike, n: int) -> tuple[FloatArray, FloatArray]:
    """Rolling OLS beta ``cov(r, m) / var(m)`` and Pearson correlation of ``r`` on ``m`` over ``n`` bars.

    ``r`` and ``m`` are aligned per-bar returns (the asset's and the market's); a NaN in
    either (warm-up, or the market has no bar at that time) leaves its windows undefined.
    Dimensionless; NaN where a variance is 0.
    """
    ra, ma = _as_1d(r, "r"), _as_1d(m, "m")
    n = _check_period(n, minimum=2)
    y, z = ra - _anchor(ra), ma - _anchor(ma)
    sy, sz, syz, syy, szz = _sums([y, z, y * z, y * y, z * z], n)
    cov = syz - sy * sz / n
    var_m = np.maximum(szz - sz * sz / n, 0.0)
    var_r = np.maximum(syy - sy * sy / n, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = np.where(var_m > 0, cov / var_m, np.nan)
        corr = np.where((var_m > 0) & (var_r > 0), cov / np.sqrt(var_m * var_r), np.nan)
    return beta, np.clip(corr, -1.0, 1.0)
