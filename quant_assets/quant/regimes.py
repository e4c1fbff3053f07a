"""Market regimes per bar, from trailing data only.

On the bar grid (every ``interval`` from the first bar read to the last; a missing bar is a NULL
return, never filled), with the symbols' log returns ``l`` and simple returns ``r = exp(l) - 1``:

- ``market_vol``: sample std (ddof 1) of the market's log returns over the last ``vol_window``
  bars ending at ``t`` (a fraction per bar, not annualised); NULL unless all are there.
- ``dispersion``: cross-sectional sample std (ddof 1) of the symbols' simple returns at ``t``
  (at least two symbols).
- ``market_trend``: the market's simple return over the last ``corr_window`` bars,
  ``exp(sum of its log returns) - 1``.
- ``avg_corr``: the mean over symbol pairs of the Pearson correlation of their simple returns
  over the last ``corr_window`` bars (pairs with a missing bar or a constant return are left out).
- ``vol_regime`` / ``dispersion_regime``: ``low`` below the 1/3 quantile (the 33.3rd
  percentile), ``high`` above the 2/3 quantile (66.7th) of that value over the ``history`` bars
  before ``t`` (``t`` excluded; linear interpolation, numpy's default), else ``normal``; NULL
  unless the value is there at ``t`` and at each of those ``history`` bars.
- ``beta_state``: ``up`` when ``market_trend > 0``, else ``down``; then ``_high_corr`` when
  ``avg_corr`` is above its median over the ``history`` bars before ``t``, else ``_low_corr``;
  NULL unless ``avg_corr`` and ``market_trend`` are there at ``t`` and ``avg_corr`` at each
  of those bars.

The market: a symbol's log returns, or (``market=None``) the log of one plus the equal-weighted
mean simple return of the symbols present at the bar. Values at ``t`` read bars ``<= t`` only;
the rolling sums start where the frame starts, so a caller that wants bit-identical values
starts the frame at the same bar each time (the asset reads a fixed lookback per day).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from datetime import timedelta
from functools import reduce
from itertools import combinations

import polars as pl

REGIME_SCHEMA = {
    "ts": pl.Datetime("us"), "market_vol": pl.Float64, "vol_regime": pl.Utf8, "dispersion": pl.Float64,
    "dispersion_regime": pl.Utf8, "market_trend": pl.Float64, "avg_corr": pl.Float64, "beta_state": pl.Utf8,
}
LEVELS = ("low", "normal", "high")
BETA_STATES = ("up_high_corr", "up_low_corr", "down_high_corr", "down_low_corr")
LOW_Q, HIGH_Q = 1 / 3, 2 / 3


def history_bars(vol_window: int, corr_window: int, history: int) -> int:
    """Bars a regime value at ``t`` reads: ``t``, the ``history`` bars before it, and the
    longer window behind the first of those."""
    return history + max(vol_window, corr_window)


def _grid(bars: pl.DataFrame, interval_minutes: int) -> pl.DataFrame:
    """The symbols' log returns, one column per symbol (alphabetical), on the full bar grid."""
    bars = bars.select("symbol", pl.col("ts").cast(pl.Datetime("us")), pl.col("log_return").cast(pl.Float64))
    lo, hi = bars["ts"].min(), bars["ts"].max()
    grid = pl.DataFrame({"ts": pl.datetime_range(lo, hi, timedelta(minutes=interval_minutes), eager=True,
                                                 time_unit="us")})
    wide = bars.pivot(on="symbol", index="ts", values="log_return", aggregate_function="first")
    # pivot orders the columns as the symbols first appear; sums over them must not depend on that
    wide = wide.select("ts", *sorted(c for c in wide.columns if c != "ts"))
    return grid.join(wide, on="ts", how="left").sort("ts")


def _mean_in_order(exprs: Sequence[pl.Expr]) -> pl.Expr:
    """The mean of the non-NULL values among ``exprs``, summed left to right (NULL when none is
    there). ``pl.mean_horizontal`` reduces in parallel, so its association, and with it the last
    bit, depends on the thread pool's scheduling."""
    total = reduce(operator.add, [e.fill_null(0.0) for e in exprs])
    count = reduce(operator.add, [e.is_not_null().cast(pl.Int64) for e in exprs])
    return pl.when(count > 0).then(total / count)


def _level(value: str, history: int) -> pl.Expr:
    past = pl.col(value).shift(1)
    low = past.rolling_quantile(LOW_Q, "linear", window_size=history, min_samples=history)
    high = past.rolling_quantile(HIGH_Q, "linear", window_size=history, min_samples=history)
    return (
        pl.when(pl.col(value).is_null() | low.is_null()).then(None)
        .when(pl.col(value) < low).then(pl.lit("low"))
        .when(pl.col(value) > high).then(pl.lit("high"))
        .otherwise(pl.lit("normal"))
    )


def regimes(bars: pl.DataFrame, market: str | None, interval_minutes: int, vol_window: int,
            corr_window: int, history: int) -> pl.DataFrame:
    """The regimes table (``REGIME_SCHEMA``) for every grid bar of ``bars`` (``symbol, ts,
    log_return``; one row per symbol and bar). ``market``: the market's symbol, or ``None`` for
    the equal-weighted universe. See the module for every column's definition."""
    if bars.is_empty():
        return pl.DataFrame(schema=REGIME_SCHEMA)
    wide = _grid(bars, interval_minutes)
    symbols = wide.columns[1:]
    if market is not None and market not in symbols:
        raise ValueError(f"market symbol {market} has no bars among {', '.join(symbols)}")
    simple = {s: (pl.col(s).exp() - 1.0) for s in symbols}
    market_log = pl.col(market) if market else _mean_in_order(list(simple.values())).log1p()
    pairs = [
        pl.rolling_corr(simple[a], simple[b], window_size=corr_window, min_samples=corr_window)
        for a, b in combinations(symbols, 2)
    ]
    finite_pairs = [pl.when(p.is_finite()).then(p) for p in pairs]
    frame = wide.select(
        "ts",
        market_log.rolling_std(vol_window, min_samples=vol_window, ddof=1).alias("market_vol"),
        (pl.concat_list(*simple.values()).list.drop_nulls().list.std(ddof=1) if len(symbols) > 1
         else pl.lit(None, dtype=pl.Float64)).alias("dispersion"),
        (market_log.rolling_sum(corr_window, min_samples=corr_window).exp() - 1.0).alias("market_trend"),
        (_mean_in_order(finite_pairs) if pairs else pl.lit(None, dtype=pl.Float64)).alias("avg_corr"),
    ).with_columns(pl.col("market_vol", "dispersion", "market_trend", "avg_corr").fill_nan(None))
    median = pl.col("avg_corr").shift(1).rolling_median(window_size=history, min_samples=history)
    trend = pl.when(pl.col("market_trend") > 0).then(pl.lit("up")).otherwise(pl.lit("down"))
    corr = pl.when(pl.col("avg_corr") > median).then(pl.lit("_high_corr")).otherwise(pl.lit("_low_corr"))
    defined = pl.col("avg_corr").is_not_null() & pl.col("market_trend").is_not_null() & median.is_not_null()
    return frame.with_columns(
        _level("market_vol", history).alias("vol_regime"),
        _level("dispersion", history).alias("dispersion_regime"),
        pl.when(defined).then(pl.concat_str(trend, corr)).alias("beta_state"),
    ).select(list(REGIME_SCHEMA)).cast(REGIME_SCHEMA)  # type: ignore[arg-type]


def null_values(frame: pl.DataFrame, keep: pl.Expr, columns: Sequence[str] | None = None) -> pl.DataFrame:
    """Every value column (all but ``ts``) NULL on rows where ``keep`` is false."""
    columns = list(columns or [c for c in frame.columns if c != "ts"])
    return frame.with_columns(pl.when(keep).then(pl.col(c)).alias(c) for c in columns)
