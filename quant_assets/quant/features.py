"""Per-symbol bar features (pure polars/numpy): the feature store's core.

:func:`compute_feature_table` computes every feature of a catalogue
(:mod:`quant_assets.quant.feature_catalogue`) from OHLCV bars; :func:`join_higher_interval`
adds features of a higher bar interval once their bars have closed. :func:`compute_features`
is the small close-only set kept for callers that need just EMAs/RSI/volatility.

Every feature at row ``(symbol, ts)`` uses only that symbol's closes at or before ``ts``
(no look-ahead). Features are computed over each symbol's full series *as given*: the
caller passes enough history before the window of interest (warm-up) and filters the
output afterwards.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import numpy as np
import polars as pl

from quant_assets.quant import feature_catalogue as fc
from quant_assets.quant import indicators as ind
from quant_assets.quant import volatility as vol

__all__ = [
    "compute_feature_table",
    "compute_features",
    "feature_columns",
    "higher_interval_columns",
    "join_higher_interval",
]

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


# --------------------------------------------------------------------------------------------
# The catalogue-driven feature store core (what the features_<interval> assets call).
# --------------------------------------------------------------------------------------------

OHLCV = ("open", "high", "low", "close", "volume")


def _forward_fill(x: np.ndarray) -> np.ndarray:
    """Carry the last non-NaN value forward; leading NaNs (warm-up) stay NaN."""
    valid = ~np.isnan(x)
    if valid.all() or not valid.any():
        return x
    idx = np.where(valid, np.arange(x.size), 0)
    np.maximum.accumulate(idx, out=idx)
    out = x[idx]
    out[: int(np.argmax(valid))] = np.nan
    return out


def _outlier_bounds(x: np.ndarray, policy: fc.OutlierPolicy) -> tuple[np.ndarray, np.ndarray]:
    """Lower/upper bounds from the previous ``policy.window`` values (current excluded); NaN if none."""
    w = policy.window
    lo, hi = np.full(x.size, np.nan), np.full(x.size, np.nan)
    if x.size <= w:
        return lo, hi
    if policy.method == "zscore":
        mean_all, var_all = vol._rolling_mean_var(x, w, 1)  # shared running sums
        mean, sd = mean_all[:-1], np.sqrt(var_all[:-1])
        lo[1:], hi[1:] = mean - policy.threshold * sd, mean + policy.threshold * sd
    else:
        past = x[:-1]
        valid = np.flatnonzero(~np.isnan(past))
        start = int(valid[0]) if valid.size else past.size
        if past.size - start < w:
            return lo, hi
        tail = past[start:]
        # polars' null-free rolling quantile is much faster: skip the warm-up, and only fall
        # back to the null-aware path when NaNs occur after it.
        s = pl.Series("x", tail, nan_to_null=True) if np.isnan(tail).any() else pl.Series("x", tail)
        q = s.to_frame().select(  # both quartiles in one query: polars runs them side by side
            pl.col("x").rolling_quantile(p, interpolation="linear", window_size=w).alias(f"q{i}")
            for i, p in ((1, 0.25), (3, 0.75))
        )
        q1, q3 = (q[c].fill_null(np.nan).to_numpy() for c in ("q1", "q3"))
        iqr = q3 - q1
        lo[1 + start :], hi[1 + start :] = q1 - policy.threshold * iqr, q3 + policy.threshold * iqr
    return lo, hi


def _apply_outlier(x: np.ndarray, policy: fc.OutlierPolicy) -> tuple[np.ndarray, np.ndarray]:
    """``(value, flag)``: flag 1.0/0.0, NaN where the value or its bounds are undefined."""
    lo, hi = _outlier_bounds(x, policy)
    undefined = np.isnan(x) | np.isnan(lo) | np.isnan(hi)
    flag = np.where(undefined, np.nan, ((x < lo) | (x > hi)).astype(np.float64))
    if policy.winsorise:
        x = np.where(undefined, x, np.clip(x, lo, hi))
    return x, flag


def _market_returns(df: pl.DataFrame, market_symbol: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The market symbol's ``(ts as int64, 1-bar log return)``, or ``None`` if it has no bars."""
    symbols = df["symbol"]
    hits = np.flatnonzero((symbols == market_symbol).to_numpy())
    if hits.size == 0:
        return None
    lo = int(hits[0])
    hi = lo + int(hits.size)
    ts = df["ts"].to_physical().to_numpy()[lo:hi]
    return ts, vol.log_return(df["close"].to_numpy()[lo:hi])


def _sorted(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` sorted by ``(symbol, ts)``; cheap when it already is (DuckDB reads are ordered)."""
    if df.height < 2:
        return df
    out_of_order = (pl.col("symbol") < pl.col("symbol").shift()) | (
        (pl.col("symbol") == pl.col("symbol").shift()) & (pl.col("ts") < pl.col("ts").shift())
    )
    if not df.select(out_of_order.fill_null(False).any()).item():
        return df
    # Sorting integers is much faster than sorting strings: rank the few symbols first.
    names = sorted(df["symbol"].unique().to_list())
    rank = pl.col("symbol").replace_strict(names, list(range(len(names))), return_dtype=pl.UInt32)
    return df.with_columns(rank.alias("_rank")).sort("_rank", "ts").drop("_rank")


def compute_feature_table(
    bars: pl.DataFrame, catalogue: fc.Catalogue, bars_per_year: float, workers: int | None = None
) -> pl.DataFrame:
    """Every catalogue feature for every ``(symbol, ts)`` row of ``bars``.

    Args:
        bars: ``symbol``, ``ts`` (Datetime) and ``open, high, low, close, volume`` (no nulls,
            prices > 0), optionally ``quote_volume`` (quote-currency volume; ``close * volume``
            where absent or null); any row order; ``(symbol, ts)`` unique. Each symbol's rows
            are its history: pass everything before the window of interest and filter after.
        catalogue: what to compute (see :mod:`quant_assets.quant.feature_catalogue`).
        bars_per_year: annualisation for volatilities (``365 * 1440 / minutes per bar``).
        workers: threads computing symbols side by side (default: one per CPU core); the
            result is identical for any value.

    Returns:
        Sorted by ``(symbol, ts)``: ``symbol, ts, close``, the catalogue's columns in order
        (Float64, NULL before warm-up and wherever undefined, never NaN), then a Boolean
        ``<column>_outlier`` per column with an outlier policy. Row ``t`` of a symbol depends
        only on that symbol's rows ``<= t`` (and the market symbol's, for beta/corr).
    """
    missing = [c for c in ("symbol", "ts", *OHLCV) if c not in bars.columns]
    if missing:
        raise ValueError(f"bars is missing required column(s): {', '.join(missing)}")
    if not isinstance(bars.schema["ts"], pl.Datetime):
        raise ValueError(f"bars.ts must be a Datetime column, got {bars.schema['ts']}")
    if not (math.isfinite(bars_per_year) and bars_per_year > 0):
        raise ValueError(f"bars_per_year must be a positive finite number, got {bars_per_year}")
    qv = pl.col("quote_volume").cast(pl.Float64) if "quote_volume" in bars.columns else pl.lit(None, pl.Float64)
    df = _sorted(bars.select(
        pl.col("symbol").cast(pl.Utf8), pl.col("ts"), *(pl.col(c).cast(pl.Float64) for c in OHLCV),
        pl.coalesce(qv, pl.col("close").cast(pl.Float64) * pl.col("volume").cast(pl.Float64)).alias("dollar_volume"),
    ))
    for col in ("symbol", "ts", *OHLCV):
        if df[col].null_count() or (col in OHLCV and df[col].is_nan().any()):
            raise ValueError(f"bars.{col} contains nulls or NaN")
    same = (pl.col("symbol") == pl.col("symbol").shift()) & (pl.col("ts") == pl.col("ts").shift())
    if df.height and df.select(same.fill_null(False).any()).item():
        raise ValueError("bars has duplicate (symbol, ts) rows")
    if df.height and (df.select(pl.min_horizontal("open", "high", "low", "close")).min().item() <= 0):
        raise ValueError("bars prices must be strictly positive")

    columns = catalogue.columns
    flags = catalogue.flag_columns
    workers = workers if workers is not None else (os.cpu_count() or 1)
    # Every position is written below (each function returns one value per bar): no NaN fill.
    out = {c: np.empty(df.height) for c in [*columns, *flags]}
    lengths = df.group_by("symbol", maintain_order=True).len()["len"].to_list()
    offsets = np.cumsum([0, *lengths]).tolist()
    arrays = {c: df[c].to_numpy() for c in (*OHLCV, "dollar_volume")}
    ts_all = df["ts"].to_physical().to_numpy()
    market = _market_returns(df, catalogue.market_symbol)
    def one_symbol(lo: int, hi: int) -> None:
        m_ret = np.full(hi - lo, np.nan)
        if market is not None and np.array_equal(market[0], ts_all[lo:hi]):
            m_ret[:] = market[1]  # same bars as the market (the usual case): no search needed
        elif market is not None:
            m_ts, m_r = market
            pos = np.searchsorted(m_ts, ts_all[lo:hi])
            ok = pos < m_ts.size
            ok[ok] = m_ts[pos[ok]] == ts_all[lo:hi][ok]
            m_ret[ok] = m_r[pos[ok]]
        sym = fc.SymbolBars(
            *(arrays[c][lo:hi] for c in OHLCV), dollar_volume=arrays["dollar_volume"][lo:hi],
            market_return=m_ret, bars_per_year=bars_per_year,
        )
        for spec in catalogue.features:
            for col, values in zip(spec.columns, spec.compute(sym), strict=True):
                # functions return NaN, never inf, where undefined (the SQL check
                # features_<interval>_finite guards the stored table)
                if spec.null_policy == "forward_fill":
                    values = _forward_fill(values)
                if spec.outlier is not None:
                    values, flag = _apply_outlier(values, spec.outlier)
                    out[f"{col}_outlier"][lo:hi] = flag
                out[col][lo:hi] = values

    # Symbols are independent and write disjoint slices; numpy, scipy and polars release the
    # GIL in their kernels, so a thread per core overlaps them. Results do not depend on it.
    spans = list(zip(offsets[:-1], offsets[1:], strict=True))
    if workers > 1 and len(spans) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda span: one_symbol(*span), spans))
    else:
        for lo, hi in spans:
            one_symbol(lo, hi)

    values = pl.DataFrame({c: out[c] for c in [*columns, *flags]}, schema=dict.fromkeys([*columns, *flags], pl.Float64))
    return pl.concat([df.select("symbol", "ts", "close"), values], how="horizontal").with_columns(
        pl.col(columns).fill_nan(None), pl.col(flags).fill_nan(None).cast(pl.Boolean),
    )


def higher_interval_columns(catalogue: fc.Catalogue, interval: str) -> list[str]:
    """Names of the columns joined from ``interval``: ``htf_<interval>_<column>``."""
    return [f"htf_{interval}_{c}" for c in catalogue.higher_interval_features]


def join_higher_interval(
    lower: pl.DataFrame, higher: pl.DataFrame, interval: str, minutes: int, columns: Sequence[str]
) -> pl.DataFrame:
    """Join ``columns`` of a higher-interval feature frame onto lower-interval rows, leak-free.

    A higher bar ``[ts_h, ts_h + H)`` is only known once it has closed, so a lower row at
    ``ts`` takes the higher row with the latest ``ts_h + H <= ts`` (a 1d EMA of day D is seen
    on 1h rows from D+1 00:00 on, never during D) and only if that higher bar is the last one
    that closed (``ts - (ts_h + H) < H``), so a missing higher bar gives NULL, not a stale value.
    New columns are named ``htf_<interval>_<column>``; ``lower``'s row order is kept.
    """
    step = timedelta(minutes=minutes)
    names = {c: f"htf_{interval}_{c}" for c in columns}
    right = (
        higher.select("symbol", (pl.col("ts") + step).alias("_visible_from"), *columns)
        .rename(names)
        .sort("_visible_from")
    )
    left = lower.with_row_index("_row").sort("ts")
    right = right.with_columns(pl.col("_visible_from").cast(left.schema["ts"]))
    joined = left.join_asof(
        right, left_on="ts", right_on="_visible_from", by="symbol", strategy="backward",
        tolerance=step - timedelta(microseconds=1), check_sortedness=False,
    )
    return joined.sort("_row").drop("_row", "_visible_from")
