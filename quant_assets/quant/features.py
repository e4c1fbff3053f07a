"""Per-symbol bar features built from :mod:`quant_assets.quant.indicators` (pure polars/numpy).

Every feature at row ``(symbol, ts)`` uses only that symbol's closes at or before ``ts``
(no look-ahead). Features are computed over each symbol's full series *as given*: the
caller passes enough history before the window of interest (warm-up) and filters the
output afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl

from quant_assets.quant import indicators as ind

__all__ = ["compute_features", "feature_columns"]

_REQUIRED = ("symbol", "ts", "close")


def _periods(values: Sequence[int], name: str, minimum: int = 1) -> list[int]:
    """Validate a sequence of distinct integer periods."""
    out: list[int] = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < minimum:
            raise ValueError(f"{name} must hold ints >= {minimum}, got {v!r}")
        out.append(int(v))
    if len(set(out)) != len(out):
        raise ValueError(f"{name} contains duplicates: {list(values)!r}")
    return out


def feature_columns(
    ema_spans: Sequence[int] = (9, 21, 50),
    rsi_periods: Sequence[int] = (14,),
    vol_window: int = 24,
) -> list[str]:
    """Output column names of :func:`compute_features`, in order."""
    return [
        "symbol",
        "ts",
        "close",
        "log_return",
        *(f"ema_{n}" for n in ema_spans),
        *(f"rsi_{n}" for n in rsi_periods),
        f"vol_cc_{vol_window}",
    ]


def compute_features(
    bars: pl.DataFrame,
    ema_spans: Sequence[int] = (9, 21, 50),
    rsi_periods: Sequence[int] = (14,),
    vol_window: int = 24,
    bars_per_year: float = 365 * 24,
) -> pl.DataFrame:
    """Compute close-based features per symbol.

    Args:
        bars: at least ``symbol`` (Utf8), ``ts`` (Datetime) and ``close`` (numeric, > 0,
            no nulls/NaNs); any row order; ``(symbol, ts)`` must be unique. Extra
            columns are ignored.
        ema_spans: EMA periods in bars (TA-Lib convention, ``alpha = 2 / (n + 1)``,
            seeded with the SMA of the first ``n`` closes).
        rsi_periods: RSI periods in bars (TA-Lib / Wilder).
        vol_window: number of log returns in the realised-volatility window.
        bars_per_year: annualisation factor for volatility (8760 for hourly bars).

    Returns:
        One row per input row sorted by ``(symbol, ts)`` with columns
        ``symbol, ts, close, log_return, ema_<n>..., rsi_<n>..., vol_cc_<vol_window>``:

        * ``log_return`` = ``ln(close_t / close_{t-1})`` within the symbol (per bar);
        * ``ema_<n>`` in price units, first defined on the symbol's ``n``-th bar;
        * ``rsi_<n>`` in [0, 100], first defined on the symbol's ``(n+1)``-th bar;
        * ``vol_cc_<w>`` = sample std (ddof=1) of the last ``w`` log returns times
          ``sqrt(bars_per_year)`` (annualised fraction), first defined on bar ``w+1``.

        Feature columns are Float64 and *null* (not NaN) before their warm-up.
    """
    spans = _periods(ema_spans, "ema_spans")
    rsis = _periods(rsi_periods, "rsi_periods")
    (window,) = _periods([vol_window], "vol_window", minimum=2)
    if not (math.isfinite(bars_per_year) and bars_per_year > 0):
        raise ValueError(f"bars_per_year must be a positive finite number, got {bars_per_year}")

    missing = [c for c in _REQUIRED if c not in bars.columns]
    if missing:
        raise ValueError(f"bars is missing required column(s): {', '.join(missing)}")
    if not isinstance(bars.schema["ts"], pl.Datetime):
        raise ValueError(f"bars.ts must be a Datetime column, got {bars.schema['ts']}")

    df = bars.select(
        pl.col("symbol").cast(pl.Utf8),
        pl.col("ts"),
        pl.col("close").cast(pl.Float64),
    ).sort("symbol", "ts")
    for col in _REQUIRED:
        if df[col].null_count():
            raise ValueError(f"bars.{col} contains nulls")
    if df["close"].is_nan().any():
        raise ValueError("bars.close contains NaN")
    dup = df.select(
        ((pl.col("symbol") == pl.col("symbol").shift()) & (pl.col("ts") == pl.col("ts").shift()))
        .fill_null(False)
        .any()
    ).item()
    if dup:
        raise ValueError("bars has duplicate (symbol, ts) rows")

    close = df["close"].to_numpy()
    names = feature_columns(spans, rsis, window)[3:]
    out = {name: np.full(df.height, np.nan) for name in names}
    lengths = df.group_by("symbol", maintain_order=True).len()["len"].to_list()
    offsets = np.cumsum([0, *lengths]).tolist()
    for lo, hi in zip(offsets[:-1], offsets[1:], strict=True):  # one iteration per symbol
        c = close[lo:hi]
        out["log_return"][lo:hi] = ind.log_returns(c)
        for n in spans:
            out[f"ema_{n}"][lo:hi] = ind.ema(c, n)
        for n in rsis:
            out[f"rsi_{n}"][lo:hi] = ind.rsi(c, n)
        out[f"vol_cc_{window}"][lo:hi] = ind.realized_vol(c, window, bars_per_year)

    return df.with_columns(
        pl.Series(name, values, dtype=pl.Float64, nan_to_null=True) for name, values in out.items()
    )
