"""Technical indicators on 1-D float64 arrays (pure numpy/scipy, no I/O, no Dagster).

Conventions shared by every function in this module:

* Input is a 1-D array-like of prices (or returns) ordered oldest -> newest, one value
  per bar; it is converted to ``float64``. The output is a new ``float64`` array of the
  same length, aligned with the input: ``out[t]`` uses only ``x[0..t]`` (no look-ahead),
  so ``f(x[:k])`` equals ``f(x)[:k]`` bit for bit.
* ``NaN`` marks "not defined yet" (warm-up) positions.
* ``sma``, ``ema`` and ``rsi`` follow TA-Lib (default compatibility mode, unstable
  period 0). Like the TA-Lib Python wrapper, *leading* NaNs are skipped: the indicator
  starts on the first run of non-NaN values and its warm-up is counted from there.
  A NaN *after* the first valid value is rejected with ``ValueError`` (TA-Lib would
  silently propagate it through the recursion forever); fill or drop gaps first.
* ``log_returns``, ``rolling_std`` and ``realized_vol`` are windowed, so a NaN only
  affects the windows that contain it.

Recursions (EMA, Wilder smoothing) run through :func:`_scan`, a compiled first-order filter
that does per bar exactly what :func:`scipy.signal.lfilter` does for ``b = [b0]``,
``a = [1, a1]`` (so its finite results are lfilter's bit for bit), writing into the output's
own memory; RSI's whole recursion is one compiled loop. Rolling sums are accumulated over the
window offset (a loop of length ``n``, vectorised over bars), which keeps every window sum free
of cumulative-sum drift.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import maximum_filter1d, minimum_filter1d

__all__ = [
    "ema",
    "log_returns",
    "realized_vol",
    "rolling_std",
    "rsi",
    "sma",
]

FloatArray = NDArray[np.float64]
_BLOCK = 16384  # bars per block for multi-pass window loops (keeps the working set in cache)


def _as_1d(x: ArrayLike, name: str) -> FloatArray:
    """Return ``x`` as a 1-D float64 array or raise ``ValueError``."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


def _check_period(n: int, name: str = "n", minimum: int = 1) -> int:
    """Validate an integer look-back period."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(n).__name__}")
    if n < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {n}")
    return int(n)


def _may_have_nan(x: FloatArray) -> bool:
    """``False`` only if ``x`` has no NaN: a NaN makes the sum NaN (one cheap pass, no temporary)."""
    return math.isnan(np.add.reduce(x)) if x.size else False


def _first_valid(x: FloatArray, name: str) -> int:
    """Index of the first non-NaN value (``len(x)`` if none).

    Raises ``ValueError`` if a NaN follows the first valid value (TA-Lib-style
    indicators need a gap-free series after their start).
    """
    if not _may_have_nan(x):
        return 0
    nan = np.isnan(x)
    if not nan.any():
        return 0
    valid = np.flatnonzero(~nan)
    if valid.size == 0:
        return x.size
    first = int(valid[0])
    gaps = np.flatnonzero(nan[first:])
    if gaps.size:
        raise ValueError(
            f"{name} contains NaN at index {first + int(gaps[0])} after its first valid value "
            f"(index {first}); only leading NaNs are supported - fill or drop gaps first"
        )
    return first


@numba.njit(cache=True)
def _scan_loop(x: FloatArray, b0: float, a1: float, z: float, out: FloatArray) -> None:  # pragma: no cover - compiled
    for i in range(x.size):
        xi = x[i]
        y = z + b0 * xi
        out[i] = y
        z = xi * 0.0 - y * a1


def _scan(x: FloatArray, b0: float, decay: float, zi: float, out: FloatArray | None = None) -> FloatArray:
    """``lfilter([b0], [1.0, -decay], x, zi=[zi])[0]``, bit for bit, into ``out`` (new if None).

    Per bar, as lfilter's direct form II transposed with its zero-padded ``b``:
    ``y = z + b0 * x``, then ``z = x * 0.0 - y * (-decay)``, so a non-finite input gives NaN
    where lfilter gives NaN (the NaN's sign bit may differ). ``out`` may be ``x`` itself or
    overlap it index for index.
    """
    if out is None:
        out = np.empty(x.size, dtype=np.float64)
    if x.size:
        _scan_loop(x, float(b0), -float(decay), float(zi), out)
    return out


def _window_sums(x: FloatArray, n: int) -> FloatArray:
    """Sums of every length-``n`` window: ``out[i] = x[i] + ... + x[i + n - 1]``.

    Returns ``len(x) - n + 1`` values (empty if ``len(x) < n``). Terms are added
    oldest-first, exactly like TA-Lib's seed loop; a NaN poisons only its windows.
    """
    m = x.size - n + 1
    if m <= 0:
        return np.empty(0, dtype=np.float64)
    acc = x[:m].copy()
    for k in range(1, n):  # loop over the window offset, vectorised over bars
        acc += x[k : k + m]
    return acc


def _seed_sum(values: FloatArray) -> float:
    """Correctly rounded sum of a short seed window (``math.fsum``): no loop over the window."""
    return math.fsum(values.tolist())


def sma(x: ArrayLike, n: int) -> FloatArray:
    """Simple moving average over ``n`` bars (TA-Lib ``SMA``).

    ``out[t] = mean(x[t-n+1 .. t])``, first valid at index ``s + n - 1`` where ``s`` is
    the index of the first non-NaN input; NaN before. Units: those of ``x``.
    """
    arr = _as_1d(x, "x")
    n = _check_period(n)
    out = np.full(arr.size, np.nan)
    start = _first_valid(arr, "x")
    sums = _window_sums(arr[start:], n)
    out[start + n - 1 :] = sums / n
    return out


def ema(x: ArrayLike, n: int) -> FloatArray:
    """Exponential moving average with ``alpha = 2 / (n + 1)`` (TA-Lib ``EMA``).

    Seeded TA-Lib style: the first valid value, at index ``s + n - 1`` (``s`` = first
    non-NaN input), is the SMA of the first ``n`` values; afterwards
    ``out[t] = alpha * x[t] + (1 - alpha) * out[t-1]``. NaN before the seed.
    Units: those of ``x``.
    """
    arr = _as_1d(x, "x")
    n = _check_period(n)
    out = np.full(arr.size, np.nan)
    start = _first_valid(arr, "x")
    seed_idx = start + n - 1
    if seed_idx >= arr.size:
        return out
    alpha = 2.0 / (n + 1.0)
    seed = _seed_sum(arr[start : seed_idx + 1]) / n
    out[seed_idx] = seed
    _scan(arr[seed_idx + 1 :], alpha, 1.0 - alpha, (1.0 - alpha) * seed, out=out[seed_idx + 1 :])
    return out


def _wilder(values: FloatArray, n: int, out: FloatArray | None = None) -> FloatArray:
    """Wilder smoothing (alpha = 1/n) seeded with the mean of the first ``n`` values.

    Returns ``len(values) - n + 1`` values (in ``out`` if given): index 0 is the seed, then
    ``s[i] = s[i-1] + (v - s[i-1]) / n``. ``values`` must hold at least ``n`` items. ``out`` may
    overlap ``values`` from its index ``n - 1`` on (each input is read before it is overwritten).
    """
    seed = _seed_sum(values[:n]) / n
    decay = (n - 1.0) / n
    rest = values[n:]
    if out is None:
        out = np.empty(rest.size + 1, dtype=np.float64)
    out[0] = seed
    _scan(rest, 1.0 / n, decay, decay * seed, out=out[1:])
    return out


def rsi(close: ArrayLike, n: int = 14) -> FloatArray:
    """Relative Strength Index in [0, 100] (TA-Lib ``RSI``, Wilder smoothing).

    With ``d[t] = close[t] - close[t-1]``, gains ``max(d, 0)`` and losses ``max(-d, 0)``
    are Wilder-smoothed (``alpha = 1/n``), each seeded with the simple mean of the first
    ``n`` gains/losses; ``RSI = 100 * avg_gain / (avg_gain + avg_loss)``. First valid
    index ``s + n`` (``s`` = first non-NaN input), NaN before. When both averages are
    exactly 0 (flat prices) the value is 0, as in TA-Lib. Scale invariant in ``close``.
    """
    arr = _as_1d(close, "close")
    n = _check_period(n)
    out = np.full(arr.size, np.nan)
    start = _first_valid(arr, "close")
    if start + n >= arr.size:
        return out
    seed_diff = np.diff(arr[start : start + n + 1])
    avg_gain = _seed_sum(np.maximum(seed_diff, 0.0)) / n
    avg_loss = _seed_sum(np.maximum(np.negative(seed_diff), 0.0)) / n
    _rsi_loop(arr[start + n :], 1.0 / n, (n - 1.0) / n, avg_gain, avg_loss, out[start + n :])
    return out


@numba.njit(cache=True)
def _rsi_loop(close: FloatArray, b0: float, decay: float, gain: float, loss: float,
              out: FloatArray) -> None:  # pragma: no cover - compiled
    """RSI from its seeded averages on: ``out[0]`` from the seeds, then each bar's gain and loss
    (``close[i] - close[i - 1]``) smoothed as :func:`_wilder` smooths them (:func:`_scan`'s
    operations, bit for bit) and ``100 * (gain / (gain + loss))``, 0 where both are 0."""
    a1 = -decay
    z_gain, z_loss = gain * decay, loss * decay  # lfilter's zi: decay * seed
    total = gain + loss
    out[0] = 0.0 if total == 0.0 else (gain / total) * 100.0
    for i in range(1, close.size):
        d = close[i] - close[i - 1]
        up = 0.0 if d <= 0.0 else d  # np.maximum(d, 0.0): a NaN stays NaN
        down = 0.0 if -d <= 0.0 else -d
        gain = z_gain + b0 * up
        z_gain = up * 0.0 - gain * a1
        loss = z_loss + b0 * down
        z_loss = down * 0.0 - loss * a1
        total = gain + loss
        out[i] = 0.0 if total == 0.0 else (gain / total) * 100.0


def log_returns(close: ArrayLike) -> FloatArray:
    """Close-to-close log returns ``ln(close[t] / close[t-1])`` (dimensionless, per bar).

    ``out[0]`` is NaN; a NaN price makes the two returns touching it NaN.
    Prices must be strictly positive (``ValueError`` otherwise).
    """
    arr = _as_1d(close, "close")
    if np.any(arr <= 0.0):
        raise ValueError("close must be strictly positive to take log returns")
    out = np.full(arr.size, np.nan)
    if arr.size > 1:
        out[1:] = np.log(arr[1:] / arr[:-1])
    return out


def rolling_std(x: ArrayLike, n: int, ddof: int = 1) -> FloatArray:
    """Rolling standard deviation of the last ``n`` values, ``ddof`` delta d.o.f.

    ``out[t] = sqrt(sum((x[t-n+1..t] - mean)^2) / (n - ddof))`` computed two-pass (mean
    first, then squared deviations) for accuracy. Valid from index ``n - 1``; any NaN
    inside the window gives NaN. Units: those of ``x``. Requires ``n > ddof``.
    """
    arr = _as_1d(x, "x")
    n = _check_period(n)
    if isinstance(ddof, bool) or not isinstance(ddof, int | np.integer) or ddof < 0:
        raise ValueError(f"ddof must be a non-negative int, got {ddof!r}")
    if n <= ddof:
        raise ValueError(f"n ({n}) must be greater than ddof ({ddof})")
    out = np.full(arr.size, np.nan)
    m = arr.size - n + 1
    if m <= 0:
        return out
    mean = _window_sums(arr, n) / n
    ss = np.zeros(m, dtype=np.float64)
    for k in range(n):  # loop over the window offset, vectorised over bars
        dev = arr[k : k + m] - mean
        ss += dev * dev
    out[n - 1 :] = np.sqrt(ss / (n - ddof))
    return out


def realized_vol(close: ArrayLike, n: int, bars_per_year: float) -> FloatArray:
    """Annualised close-to-close realised volatility.

    ``out[t] = std(ddof=1) of log_returns(close)[t-n+1..t] * sqrt(bars_per_year)``, i.e.
    a fraction per year (0.5 = 50 %/yr). Needs ``n >= 2`` returns, so the first valid
    index is ``n`` (return 0 is undefined); NaN before.
    """
    n = _check_period(n, minimum=2)
    if not (math.isfinite(bars_per_year) and bars_per_year > 0):
        raise ValueError(f"bars_per_year must be a positive finite number, got {bars_per_year}")
    return rolling_std(log_returns(close), n, ddof=1) * math.sqrt(bars_per_year)


# --------------------------------------------------------------------------------------------
# OHLCV indicators (TA-Lib parity). Inputs must be gap-free: no NaN anywhere (``ValueError``).
# First valid indices below assume the series starts at index 0.
# --------------------------------------------------------------------------------------------


def _ohlcv(**arrays: ArrayLike) -> list[FloatArray]:
    """Validate equally long, NaN-free 1-D float64 arrays."""
    out = [_as_1d(a, name) for name, a in arrays.items()]
    sizes = {a.size for a in out}
    if len(sizes) > 1:
        raise ValueError(f"{', '.join(arrays)} must have the same length, got {sorted(sizes)}")
    for name, a in zip(arrays, out, strict=True):
        if _may_have_nan(a) and np.isnan(a).any():
            raise ValueError(f"{name} contains NaN; OHLCV indicators need a gap-free series")
    return out


def _rolling(x: ArrayLike, n: int, windows) -> FloatArray:
    """``windows(arr, n)`` (one value per full window) placed from index ``n - 1``, NaN before."""
    arr = _as_1d(x, "x")
    n = _check_period(n)
    out = np.full(arr.size, np.nan)
    if arr.size >= n:
        out[n - 1 :] = windows(arr, n)
    return out


def rolling_sum(x: ArrayLike, n: int) -> FloatArray:
    """Sum of the last ``n`` values, valid from index ``n - 1`` (NaN before; a NaN poisons its windows)."""
    return _rolling(x, n, _window_sums)


def _doubling(extreme, arr: FloatArray, n: int) -> FloatArray:
    """Extremes of every length-``n`` window (``len - n + 1`` values) of a NaN-free ``arr``.

    Windows double in length (1, 2, 4, ...) with one ``extreme`` pass each, then a last pass
    joins two overlapping power-of-two windows: ``O(len * log n)``, exact (max/min do not round).
    """
    m, span = arr, 1
    while 2 * span <= n:
        m = extreme(m[:-span], m[span:])  # m[i] = extreme of arr[i .. i + 2 * span - 1]
        span *= 2
    if span < n:
        rest = n - span
        m = extreme(m[:-rest], m[rest:])
    return m


def _trailing(filter1d, arr: FloatArray, n: int) -> FloatArray:
    """Trailing-window ``filter1d`` values for windows ending at ``n - 1 .. len - 1``.

    scipy's filters centre the window (``[i - n//2, i + (n-1)//2]``); the window ending at ``t``
    is the one centred at ``t - (n-1)//2``, which never reaches past the array's end.
    NaN-free input takes the equivalent doubling path (faster for the short windows used here).
    """
    if n <= 64 and not _may_have_nan(arr):
        return _doubling(np.maximum if filter1d is maximum_filter1d else np.minimum, arr, n)
    centred = filter1d(arr, size=n, mode="nearest")
    shift = (n - 1) // 2
    return centred[n - 1 - shift : arr.size - shift]


def rolling_max(x: ArrayLike, n: int) -> FloatArray:
    """Highest of the last ``n`` values (TA-Lib ``MAX``), valid from index ``n - 1``."""
    return _rolling(x, n, lambda arr, k: _trailing(maximum_filter1d, arr, k))


def rolling_min(x: ArrayLike, n: int) -> FloatArray:
    """Lowest of the last ``n`` values (TA-Lib ``MIN``), valid from index ``n - 1``."""
    return _rolling(x, n, lambda arr, k: _trailing(minimum_filter1d, arr, k))


def _ema_seeded_at(x: FloatArray, n: int, seed_idx: int) -> FloatArray:
    """EMA (``alpha = 2/(n+1)``) whose first value, at ``seed_idx``, is the SMA of ``x[seed_idx-n+1..seed_idx]``.

    This is TA-Lib's ``TA_INT_EMA`` started late, as MACD does for its fast line.
    """
    out = np.full(x.size, np.nan)
    if seed_idx >= x.size or seed_idx < n - 1:
        return out
    alpha = 2.0 / (n + 1.0)
    seed = _seed_sum(x[seed_idx - n + 1 : seed_idx + 1]) / n
    out[seed_idx] = seed
    _scan(x[seed_idx + 1 :], alpha, 1.0 - alpha, (1.0 - alpha) * seed, out=out[seed_idx + 1 :])
    return out


def macd(
    close: ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """MACD line, signal line and histogram (TA-Lib ``MACD``), in price units.

    TA-Lib convention, reproduced exactly: both EMAs are seeded at the same bar,
    ``slow - 1``, each with the SMA of its own last ``n`` closes there (so the fast EMA is
    *not* the stand-alone ``EMA(fast)``); ``macd = ema_fast - ema_slow``; ``signal`` is the
    ``EMA(signal)`` of ``macd`` seeded with the SMA of its first ``signal`` values;
    ``hist = macd - signal``. All three are NaN before index ``slow + signal - 2``
    (33 for 12/26/9), as TA-Lib returns them. ``fast`` and ``slow`` are swapped if given
    the wrong way round, as TA-Lib does.
    """
    (c,) = _ohlcv(close=close)
    fast, slow, signal = _check_period(fast, "fast"), _check_period(slow, "slow"), _check_period(signal, "signal")
    if slow < fast:
        fast, slow = slow, fast
    nan = np.full(c.size, np.nan)
    start = slow - 1
    first = start + signal - 1
    if first >= c.size:
        return nan, nan.copy(), nan.copy()
    line = _ema_seeded_at(c, fast, start)
    np.subtract(line, _ema_seeded_at(c, slow, start), out=line)
    sig = np.empty(c.size)
    sig[:start] = np.nan
    sig[start:] = ema(line[start:], signal)
    line[:first] = np.nan
    return line, sig, np.subtract(line, sig)


def bbands(
    close: ArrayLike, n: int = 20, k_up: float = 2.0, k_down: float = 2.0
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Bollinger Bands ``(upper, middle, lower)`` (TA-Lib ``BBANDS`` with ``matype=SMA``).

    ``middle = SMA(n)``, ``upper/lower = middle +/- k * sigma`` with ``sigma`` the
    *population* standard deviation (ddof 0) of the same ``n`` closes, computed two-pass
    (TA-Lib uses running sums of ``x`` and ``x^2``: same definition, less cancellation here).
    Valid from index ``n - 1``. Price units.
    """
    (c,) = _ohlcv(close=close)
    n = _check_period(n)
    middle = np.full(c.size, np.nan)
    sd = np.full(c.size, np.nan)
    m = c.size - n + 1
    if m > 0:
        # Per cache-sized block of bars: the SMA exactly as sma() (window sum oldest-first, / n),
        # then the squared deviations from it; same operations per bar as unblocked passes.
        mean, ss = middle[n - 1 :], sd[n - 1 :]
        dev = np.empty(min(m, _BLOCK))
        for lo in range(0, m, _BLOCK):
            hi = min(lo + _BLOCK, m)
            mu, acc, d = mean[lo:hi], ss[lo:hi], dev[: hi - lo]
            np.copyto(mu, c[lo:hi])
            for k in range(1, n):  # loop over the window offset, vectorised over bars
                np.add(mu, c[lo + k : hi + k], out=mu)
            np.divide(mu, n, out=mu)
            acc.fill(0.0)
            for k in range(n):
                np.subtract(c[lo + k : hi + k], mu, out=d)
                np.multiply(d, d, out=d)
                np.add(acc, d, out=acc)
        np.sqrt(np.divide(ss, n, out=ss), out=ss)
    return middle + k_up * sd, middle, middle - k_down * sd


def trange(high: ArrayLike, low: ArrayLike, close: ArrayLike) -> FloatArray:
    """True range (TA-Lib ``TRANGE``): ``max(h - l, |h - c[t-1]|, |l - c[t-1]|)``; NaN at index 0."""
    h, lo, c = _ohlcv(high=high, low=low, close=close)
    out = np.full(h.size, np.nan)
    if h.size > 1:
        prev = c[:-1]
        out[1:] = np.maximum(np.maximum(h[1:] - lo[1:], np.abs(h[1:] - prev)), np.abs(lo[1:] - prev))
    return out


def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 14) -> FloatArray:
    """Average true range (TA-Lib ``ATR``), price units.

    Wilder smoothing (``alpha = 1/n``) of :func:`trange` seeded with the SMA of the first ``n``
    true ranges (bars ``1..n``); first valid index ``n``.
    """
    h, lo, c = _ohlcv(high=high, low=low, close=close)
    n = _check_period(n)
    out = np.empty(h.size)
    if h.size > n:  # true range (as trange()) into out[1:], then smoothed in place into out[n:]
        tr, tmp = out[1:], np.empty(h.size - 1)
        h1, prev = h[1:], c[:-1]
        np.subtract(h1, lo[1:], out=tr)
        np.maximum(tr, np.abs(np.subtract(h1, prev, out=tmp), out=tmp), out=tr)
        np.maximum(tr, np.abs(np.subtract(lo[1:], prev, out=tmp), out=tmp), out=tr)
        _wilder(tr, n, out=out[n:])
        out[:n] = np.nan
    else:
        out.fill(np.nan)
    return out


def _directional_movement(h: FloatArray, lo: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``+DM`` and ``-DM`` per bar (index ``t`` for ``t >= 1``), TA-Lib's rule."""
    diff_p = h[1:] - h[:-1]
    diff_m = lo[:-1] - lo[1:]
    plus = np.where((diff_p > 0) & (diff_p > diff_m), diff_p, 0.0)
    minus = np.where((diff_m > 0) & (diff_p < diff_m), diff_m, 0.0)
    return plus, minus


def _wilder_sum(values: FloatArray, n: int) -> FloatArray:
    """Wilder running *sum*: seed = sum of the first ``n - 1`` values, then ``s = s - s/n + v``.

    Returns ``len(values) - n + 1`` values, the first at the ``n``-th input (TA-Lib's DM/TR smoothing).
    """
    seed = _seed_sum(values[: n - 1])
    decay = (n - 1.0) / n
    return _scan(values[n - 1 :], 1.0, decay, decay * seed)


def _select(mask: np.ndarray, x: FloatArray, out: FloatArray) -> FloatArray:
    """``np.where(mask, x, 0.0)`` into ``out`` for finite ``x``, without branches: ``x * mask + 0.0``.

    ``x * False`` is ``-0.0`` for negative ``x``; adding ``+0.0`` turns it into ``+0.0``, so the result
    is ``np.where``'s bit for bit (which mispredicts a branch per bar on a random mask), except that a
    selected ``-0.0`` comes out as ``+0.0`` (equal values; callers only sum or compare them).
    """
    np.multiply(x, mask, out=out)
    return np.add(out, 0.0, out=out)


def _safe_ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    """``100 * num / den``, 0 where ``den`` is 0 (as the TA-Lib C core 0.6+ does)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den == 0.0, 0.0, 100.0 * (num / den))


def dmi(
    high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 14
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(adx, plus_di, minus_di)`` (TA-Lib ``ADX``, ``PLUS_DI``, ``MINUS_DI``), in [0, 100].

    ``+DM``/``-DM``/true range are Wilder *sums* (seed = sum of the first ``n - 1`` values,
    then ``s = s - s/n + x``); ``DI = 100 * DM / TR`` (0 when TR is 0), first valid index ``n``.
    ``DX = 100 * |+DI - -DI| / (+DI + -DI)``; ``ADX`` is seeded with the mean of the first ``n``
    DX values and Wilder-smoothed after; first valid index ``2n - 1``. As in TA-Lib, a bar
    whose TR or DI sum is 0 adds 0 to the seed and leaves ``ADX`` unchanged afterwards.
    """
    h, lo, c = _ohlcv(high=high, low=low, close=close)
    n = _check_period(n, minimum=2)
    size = h.size
    adx_out, p_out, m_out = (np.empty(size) for _ in range(3))
    if size <= n:
        for a in (adx_out, p_out, m_out):
            a.fill(np.nan)
        return adx_out, p_out, m_out
    # The outputs' own memory holds the bar-aligned intermediates until their values are written
    # (fewer fresh pages to fault in); every operation and its order is unchanged.
    h1, lo1, prev = h[1:], lo[1:], c[:-1]
    tr, tmp = adx_out[1:], p_out[1:]
    np.subtract(h1, lo1, out=tr)  # true range of bars 1.., as trange()
    np.maximum(tr, np.abs(np.subtract(h1, prev, out=tmp), out=tmp), out=tr)
    np.maximum(tr, np.abs(np.subtract(lo1, prev, out=tmp), out=tmp), out=tr)
    finite = math.isfinite(np.add.reduce(tr))  # all finite (inf - inf would make a NaN select differ)
    s_tr = _wilder_sum(tr, n)
    # +DM / -DM as _directional_movement(): (p > 0) & (p > m)  <=>  p > max(m, 0) (NaN: false both ways)
    diff_p = np.subtract(h1, h[:-1], out=p_out[1:])
    diff_m = np.subtract(lo[:-1], lo1, out=m_out[1:])
    if finite:
        s_p = _wilder_sum(_select(diff_p > np.maximum(diff_m, 0.0), diff_p, tr), n)
        s_m = _wilder_sum(_select(diff_m > np.maximum(diff_p, 0.0), diff_m, tr), n)
    else:
        s_p = _wilder_sum(np.where(diff_p > np.maximum(diff_m, 0.0), diff_p, 0.0), n)
        s_m = _wilder_sum(np.where(diff_m > np.maximum(diff_p, 0.0), diff_m, 0.0), n)
    tr_zero = s_tr == 0.0
    p_out[:n] = m_out[:n] = adx_out[: 2 * n - 1] = np.nan
    p_di, m_di = p_out[n:], m_out[n:]
    with np.errstate(divide="ignore", invalid="ignore"):  # _safe_ratio(), written in place
        for num, dest in ((s_p, p_di), (s_m, m_di)):
            np.multiply(np.divide(num, s_tr, out=dest), 100.0, out=dest)
            dest[tr_zero] = 0.0
    first_adx = 2 * n - 1
    if size <= first_adx:
        adx_out.fill(np.nan)
        return adx_out, p_out, m_out
    di_sum = np.add(p_di, m_di, out=s_p)
    skip = tr_zero
    skip |= di_sum == 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        dx = np.abs(np.subtract(m_di, p_di, out=s_m), out=s_m)
        np.multiply(np.divide(dx, di_sum, out=dx), 100.0, out=dx)
    dx[skip] = 0.0
    seed = _seed_sum(dx[:n]) / n
    rest, rest_skip = dx[n:], skip[n:]
    vals = adx_out[first_adx:]
    vals[0] = seed
    decay = (n - 1.0) / n
    if rest.size and not rest_skip.any():
        _scan(rest, 1.0 / n, decay, decay * seed, out=vals[1:])
    elif rest.size:
        # Rare: runs of skipped bars hold ADX. One scan per run of updating bars.
        edges = np.flatnonzero(np.diff(np.concatenate([[True], rest_skip, [True]]).astype(np.int8)))
        prev, pos = seed, 0
        for lo_i, hi_i in zip(edges[::2], edges[1::2], strict=True):
            vals[1 + pos : 1 + lo_i] = prev
            seg = _scan(rest[lo_i:hi_i], 1.0 / n, decay, decay * prev, out=vals[1 + lo_i : 1 + hi_i])
            prev, pos = seg[-1], hi_i
        vals[1 + pos :] = prev
    return adx_out, p_out, m_out


def stoch(
    high: ArrayLike, low: ArrayLike, close: ArrayLike, fastk: int = 14, slowk: int = 3, slowd: int = 3
) -> tuple[FloatArray, FloatArray]:
    """Slow stochastic ``(slow_k, slow_d)`` in [0, 100] (TA-Lib ``STOCH``, SMA smoothing).

    ``fast_k = 100 * (c - LL) / (HH - LL)`` over ``fastk`` bars (0 when ``HH == LL``);
    ``slow_k = SMA(fast_k, slowk)``; ``slow_d = SMA(slow_k, slowd)``. Both outputs start at
    index ``fastk + slowk + slowd - 3`` (17 for 14/3/3), as TA-Lib aligns them.
    """
    h, lo, c = _ohlcv(high=high, low=low, close=close)
    fastk, slowk, slowd = (_check_period(v, name) for v, name in ((fastk, "fastk"), (slowk, "slowk"), (slowd, "slowd")))
    hh, ll = rolling_max(h, fastk), rolling_min(lo, fastk)
    diff = (hh - ll) / 100.0
    with np.errstate(divide="ignore", invalid="ignore"):
        fast = np.where(diff != 0.0, (c - ll) / diff, 0.0)
    fast[: fastk - 1] = np.nan
    k = sma(fast, slowk)
    d = sma(k, slowd)
    first = fastk + slowk + slowd - 3
    k[: min(first, k.size)] = np.nan
    return k, d


def obv(close: ArrayLike, volume: ArrayLike) -> FloatArray:
    """On-balance volume (TA-Lib ``OBV``), volume units: ``obv[0] = volume[0]``, then
    ``+volume`` on an up close, ``-volume`` on a down close, unchanged on an equal close.
    Cumulative from the first bar given, so its level depends on where history starts."""
    c, v = _ohlcv(close=close, volume=volume)
    if c.size == 0:
        return np.empty(0)
    step = np.zeros(c.size)
    step[0] = v[0]
    step[1:] = np.sign(c[1:] - c[:-1]) * v[1:]
    return np.cumsum(step)


def mfi(high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike, n: int = 14) -> FloatArray:
    """Money flow index in [0, 100] (TA-Lib ``MFI``).

    Typical price ``tp = (h + l + c) / 3``; money flow ``tp * volume`` counts as positive
    when ``tp`` rose, negative when it fell, neither when unchanged. ``MFI = 100 * pos / (pos + neg)``
    over the last ``n`` flows; first valid index ``n``. As TA-Lib 0.6+ (the C core the
    ``TA-Lib`` wheel ships): a change of ``tp`` within ``1e-14 * (|tp| + |tp_prev|)`` counts as
    no change, and a window with no money flow at all (0/0) gives 0.
    """
    h, lo, c, v = _ohlcv(high=high, low=low, close=close, volume=volume)
    n = _check_period(n)
    out = np.full(h.size, np.nan)
    if h.size <= n:
        return out
    tp = (h + lo + c) / 3.0
    d = tp[1:] - tp[:-1]
    dead = np.abs(d) <= 1e-14 * (np.abs(tp[1:]) + np.abs(tp[:-1]))
    flow = np.where(dead, 0.0, tp[1:] * v[1:])
    down = d < 0.0
    if math.isfinite(np.add.reduce(flow)):  # branch-free selects (bit-identical for finite flows)
        pos = _window_sums(_select(~down, flow, np.empty(flow.size)), n)
        neg = _window_sums(_select(down, flow, np.empty(flow.size)), n)
    else:
        pos = _window_sums(np.where(down, 0.0, flow), n)
        neg = _window_sums(np.where(down, flow, 0.0), n)
    total = pos + neg
    with np.errstate(divide="ignore", invalid="ignore"):
        out[n:] = np.where(total <= 0.0, 0.0, 100.0 * (np.clip(pos, 0.0, total) / total))
    return out
