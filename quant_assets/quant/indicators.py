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

Recursions (EMA, Wilder smoothing) run through :func:`scipy.signal.lfilter`; rolling sums
are accumulated over the window offset (a loop of length ``n``, vectorised over bars),
which keeps every window sum free of cumulative-sum drift.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.signal import lfilter

__all__ = [
    "ema",
    "log_returns",
    "realized_vol",
    "rolling_std",
    "rsi",
    "sma",
]

FloatArray = NDArray[np.float64]


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


def _first_valid(x: FloatArray, name: str) -> int:
    """Index of the first non-NaN value (``len(x)`` if none).

    Raises ``ValueError`` if a NaN follows the first valid value (TA-Lib-style
    indicators need a gap-free series after their start).
    """
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
    seed = _window_sums(arr[start : seed_idx + 1], n)[0] / n
    out[seed_idx] = seed
    tail = arr[seed_idx + 1 :]
    if tail.size:
        out[seed_idx + 1 :] = lfilter(
            [alpha], [1.0, -(1.0 - alpha)], tail, zi=[(1.0 - alpha) * seed]
        )[0]
    return out


def _wilder(values: FloatArray, n: int) -> FloatArray:
    """Wilder smoothing (alpha = 1/n) seeded with the mean of the first ``n`` values.

    Returns ``len(values) - n + 1`` values: index 0 is the seed, then
    ``s[i] = s[i-1] + (v - s[i-1]) / n``. ``values`` must hold at least ``n`` items.
    """
    seed = _window_sums(values[:n], n)[0] / n
    decay = (n - 1.0) / n
    rest = values[n:]
    out = np.empty(rest.size + 1, dtype=np.float64)
    out[0] = seed
    if rest.size:
        out[1:] = lfilter([1.0 / n], [1.0, -decay], rest, zi=[decay * seed])[0]
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
    diff = np.diff(arr[start:])
    avg_gain = _wilder(np.maximum(diff, 0.0), n)
    avg_loss = _wilder(np.maximum(-diff, 0.0), n)
    total = avg_gain + avg_loss
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(total != 0.0, 100.0 * (avg_gain / total), 0.0)
    out[start + n :] = value
    return out


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
