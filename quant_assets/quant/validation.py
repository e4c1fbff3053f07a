"""Signal validation in alphalens' conventions: IC, quantile returns, rank autocorrelation, turnover.

Inputs are long frames. ``values``: ``symbol, ts, signal_name, value`` — a signal or factor value
known at the close of bar ``ts``. ``forward``: ``symbol, ts, horizon, forward_return`` from
:func:`quant_assets.quant.forward_returns.forward_returns` — the simple return
``close[t + h] / close[t] - 1`` on the bar grid, absent when a bar in between is missing.
Null and non-finite values or returns are dropped first (alphalens ``get_clean_factor`` keeps
only ``np.isfinite`` factor values). Each horizon is its own sample: a bar's cross-section at
horizon ``h`` is the assets having a value and an ``h``-bar forward return.

Conventions, each matching the alphalens-reloaded 0.5.1 function named (tested to 1e-9 on the
same input by ``quant_assets_tests/test_validation_alphalens.py``):

* Ranks are average ranks of ties (``scipy.stats.rankdata``/``pandas.rank`` default): rank IC is
  Pearson on average ranks, i.e. ``scipy.stats.spearmanr`` (``factor_information_coefficient``).
* Quantile buckets are ``pd.qcut(x, q, labels=False) + 1`` per bar (``quantize_factor`` with
  ``quantiles=q, by_group=False, zero_aware=False``): edges at the linear-interpolated sample
  quantiles ``0, 1/q, ..., 1`` computed with numpy's exact arithmetic, bucket ``k`` =
  ``(e[k-1], e[k]]`` with the lowest value in bucket 1, so tied values always share a bucket.
  A bar whose ``q + 1`` edges are not all distinct (too many ties: a discrete signal such as
  -1/0/+1 positions, or fewer than two distinct values) is one where ``pd.qcut`` raises and
  alphalens (``no_raise=True``, i.e. ``max_loss > 0``) drops the bar: it has no quantile rows,
  no turnover at that bar nor at the next, and its IC is still given (alphalens would drop the
  bar from its IC too; use ``bins=`` in alphalens, not offered here, for discrete signals).
  With few assets a bucket can be empty (qcut's edges may all fall between two values): it has
  no row, as in alphalens.
* Quantile returns are demeaned by the bar's cross-sectional mean over the bucketed assets
  (``mean_return_by_quantile(demeaned=True, group_adjust=False)``).
* Rank autocorrelation and turnover compare bar ``ts`` with the previous bar on the grid,
  ``ts - interval`` (``factor_rank_autocorrelation(period=1)`` and ``quantile_turnover(period=1)``
  on a date index whose ``freq`` is the bar interval); a missing previous bar gives no row.

IC needs >= 3 assets and neither side constant (else no row); alphalens gives a number from 2
assets (always +-1) and NaN for a constant side. Rank autocorrelation needs >= 2 common assets
and neither rank vector constant, like ``DataFrame.corrwith``.

The old next-bar log-return :func:`information_coefficients` and
:func:`daily_information_coefficients` are kept below unchanged while an asset still uses them.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import polars as pl

TS = pl.Datetime("us")
BAR_KEY = ["ts", "signal_name", "horizon"]
REGIME_KINDS = ("vol_regime", "dispersion_regime", "beta_state")

CROSS_IC_SCHEMA = {"ts": TS, "signal_name": pl.Utf8, "horizon": pl.Int64, "ic": pl.Float64,
                   "rank_ic": pl.Float64, "n_assets": pl.UInt32}
POOLED_IC_SCHEMA = {"day": TS, "signal_name": pl.Utf8, "horizon": pl.Int64, "ic": pl.Float64,
                    "rank_ic": pl.Float64, "n_obs": pl.UInt32}
QUANTILE_BAR_SCHEMA = {"ts": TS, "signal_name": pl.Utf8, "horizon": pl.Int64, "quantile": pl.Int64,
                       "mean_return": pl.Float64, "n_assets": pl.UInt32}
AUTOCORR_SCHEMA = {"ts": TS, "signal_name": pl.Utf8, "rank_autocorr": pl.Float64}
TURNOVER_SCHEMA = {"ts": TS, "signal_name": pl.Utf8, "turnover_top": pl.Float64,
                   "turnover_bottom": pl.Float64}
_IC_STATS = {"n_periods": pl.UInt32, "ic_mean": pl.Float64, "ic_std": pl.Float64, "icir": pl.Float64,
             "t_stat": pl.Float64}
SUMMARY_SCHEMA = {"signal_name": pl.Utf8, "horizon": pl.Int64, **_IC_STATS, "p_value": pl.Float64,
                  "rank_ic_mean": pl.Float64, "rank_ic_std": pl.Float64, "rank_icir": pl.Float64,
                  "spread_mean": pl.Float64, "spread_se": pl.Float64, "rank_autocorr": pl.Float64,
                  "turnover_top": pl.Float64, "turnover_bottom": pl.Float64}
QUANTILE_SUMMARY_SCHEMA = {"signal_name": pl.Utf8, "horizon": pl.Int64, "quantile": pl.Int64,
                           "mean_return": pl.Float64, "std_err": pl.Float64, "n_periods": pl.UInt32}
REGIME_SCHEMA = {"signal_name": pl.Utf8, "horizon": pl.Int64, "regime_kind": pl.Utf8, "regime": pl.Utf8,
                 **_IC_STATS, "rank_ic_mean": pl.Float64, "rank_icir": pl.Float64}


def _require(frame: pl.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it has {frame.columns}")


def _positive(value: int, name: str) -> None:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _finite(column: str) -> pl.Expr:
    return pl.col(column).is_not_null() & pl.col(column).is_finite()


def _clean_values(values: pl.DataFrame) -> pl.DataFrame:
    _require(values, ["symbol", "ts", "signal_name", "value"], "values")
    return values.select(
        pl.col("symbol").cast(pl.Utf8), pl.col("ts").dt.cast_time_unit("us"),
        pl.col("signal_name").cast(pl.Utf8), pl.col("value").cast(pl.Float64),
    ).filter(_finite("value"))


def _pairs(values: pl.DataFrame, forward: pl.DataFrame) -> pl.DataFrame:
    """``symbol, ts, signal_name, value, horizon, forward_return``: every value with each of its
    bar's forward returns (inner join on ``symbol, ts``)."""
    _require(forward, ["symbol", "ts", "horizon", "forward_return"], "forward")
    returns = forward.select(
        pl.col("symbol").cast(pl.Utf8), pl.col("ts").dt.cast_time_unit("us"),
        pl.col("horizon").cast(pl.Int64), pl.col("forward_return").cast(pl.Float64),
    ).filter(_finite("forward_return"))
    return _clean_values(values).join(returns, on=["symbol", "ts"], how="inner")


def _varies(column: str) -> pl.Expr:
    return pl.col(column).max() > pl.col(column).min()


def _correlations(pairs: pl.DataFrame, by: list[str], count: str) -> pl.DataFrame:
    """Pearson ``ic`` and Spearman ``rank_ic`` (Pearson on average ranks within the group) of
    ``value`` with ``forward_return`` per group of ``by``; groups with < 3 pairs or a constant
    side are left out."""
    return (
        pairs.group_by(by)
        .agg(
            pl.corr("value", "forward_return").alias("ic"),
            pl.corr(pl.col("value").rank("average"), pl.col("forward_return").rank("average")).alias("rank_ic"),
            pl.len().alias(count),
            (_varies("value") & _varies("forward_return")).alias("_varies"),
        )
        .filter((pl.col(count) >= 3) & pl.col("_varies"))
        .drop("_varies")
        .sort(by)
    )


def cross_sectional_ic(values: pl.DataFrame, forward: pl.DataFrame) -> pl.DataFrame:
    """Per bar, signal and horizon: ``ts, signal_name, horizon, ic, rank_ic, n_assets``.

    ``ic`` is the Pearson correlation across assets of the value at ``ts`` with the forward
    return from ``ts``; ``rank_ic`` the Spearman correlation (Pearson on average ranks, ties
    share their mean rank) — alphalens ``factor_information_coefficient(group_adjust=False,
    by_group=False)``, which is ``scipy.stats.spearmanr`` per date. One row per bar/signal/horizon
    with >= 3 assets having both a value and a forward return and neither side constant, else no
    row (alphalens: a number from 2 assets, NaN for a constant side). Unitless, in [-1, 1].
    """
    pairs = _pairs(values, forward)
    if pairs.is_empty():
        return pl.DataFrame(schema=CROSS_IC_SCHEMA)
    return _correlations(pairs, BAR_KEY, "n_assets").select(list(CROSS_IC_SCHEMA)).cast(CROSS_IC_SCHEMA)


def pooled_ic(values: pl.DataFrame, forward: pl.DataFrame, day_starts: list[datetime]) -> pl.DataFrame:
    """Per UTC day, signal and horizon: ``day, signal_name, horizon, ic, rank_ic, n_obs``.

    A time-series IC for single-symbol universes (where a cross-section has one asset): Pearson
    and Spearman (average ranks over the day's pool) correlation of value and forward return
    pooled over all (symbol, bar) pairs whose bar ``ts`` lies in ``[day, day + 1 day)``, for each
    ``day`` of ``day_starts`` (midnights). Forward returns may end after the day; they are the
    bar's outcome. Same rule as :func:`cross_sectional_ic`: >= 3 pairs, neither side constant.
    """
    for day in day_starts:
        if (day.hour, day.minute, day.second, day.microsecond) != (0, 0, 0, 0):
            raise ValueError(f"pooled_ic: day_starts must be midnights, got {day.isoformat()}")
    pairs = _pairs(values, forward)
    if pairs.is_empty() or not day_starts:
        return pl.DataFrame(schema=POOLED_IC_SCHEMA)
    days = pl.Series("day", sorted(set(day_starts)), dtype=TS)
    pairs = pairs.with_columns(pl.col("ts").dt.truncate("1d").alias("day")).filter(pl.col("day").is_in(days.implode()))
    by = ["day", "signal_name", "horizon"]
    return _correlations(pairs, by, "n_obs").select(list(POOLED_IC_SCHEMA)).cast(POOLED_IC_SCHEMA)


def _qcut_edges(n: np.ndarray, starts: np.ndarray, x: np.ndarray, quantiles: int) -> np.ndarray:
    """``pd.qcut``'s bin edges for each group (rows of the result, ``quantiles + 1`` columns):
    numpy ``quantile(method="linear")`` at pandas' nudged ``linspace(0, 1, q + 1)``, replicated
    operation by operation so that edges equal pandas' bit for bit. ``x`` is sorted within each
    group; group ``g`` is ``x[starts[g]:starts[g] + n[g]]``."""
    qs = np.linspace(0, 1, quantiles + 1)
    np.putmask(qs, quantiles * qs != np.arange(quantiles + 1), np.nextafter(qs, 1))  # as pandas.qcut
    virtual = (n[:, None] - 1) * qs[None, :]
    previous = np.floor(virtual)
    last = (n - 1)[:, None].astype(np.float64)
    above = virtual >= last
    previous = np.where(above, last, previous)
    following = np.where(above, last, previous + 1)
    gamma = virtual - previous
    a = x[starts[:, None] + previous.astype(np.int64)]
    b = x[starts[:, None] + following.astype(np.int64)]
    diff = b - a
    return np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)


def _assign_quantiles(frame: pl.DataFrame, by: list[str], quantiles: int) -> pl.DataFrame:
    """``frame`` plus ``quantile`` (1 = lowest ``value``) per group of ``by``: ``pd.qcut(value,
    quantiles, labels=False) + 1``. Groups whose edges are not all distinct are dropped (where
    ``pd.qcut`` raises "Bin edges must be unique" and alphalens' ``quantize_factor(no_raise=True)``
    gives NaN)."""
    if frame.is_empty():
        return frame.with_columns(pl.lit(None, dtype=pl.Int64).alias("quantile"))
    ordered = frame.sort([*by, "value"])
    new_group = pl.any_horizontal([pl.col(c).ne_missing(pl.col(c).shift(1)) for c in by]).fill_null(True)
    group = ordered.select((new_group.cum_sum() - 1).alias("g"))["g"].to_numpy().astype(np.int64)
    x = ordered["value"].to_numpy()
    n = np.bincount(group)
    starts = np.concatenate([[0], np.cumsum(n)[:-1]])
    edges = _qcut_edges(n, starts, x, quantiles)
    distinct = (edges[:, 1:] != edges[:, :-1]).all(axis=1) if quantiles > 1 else np.ones(len(n), bool)
    # searchsorted(edges, x, side="left") with the lowest value put in bucket 1
    label = np.ones(len(x), dtype=np.int64)
    for k in range(1, quantiles):
        label += x > edges[group, k]
    return ordered.with_columns(pl.Series("quantile", label)).filter(pl.Series(distinct[group]))


def quantile_bar_returns(values: pl.DataFrame, forward: pl.DataFrame, quantiles: int) -> pl.DataFrame:
    """Per bar, signal, horizon and quantile: ``ts, signal_name, horizon, quantile, mean_return,
    n_assets``.

    Per bar and horizon the assets having a value and a forward return are cut into ``quantiles``
    equal-count buckets of value (1 = lowest; alphalens ``quantize_factor(quantiles=q,
    by_group=False)``, i.e. ``pd.qcut`` per date; ties share a bucket; a bar whose edges are not
    distinct has no rows — see the module docstring). Forward returns are demeaned by the
    cross-sectional mean of those assets (alphalens ``demeaned=True``); ``mean_return`` is the
    bucket's mean demeaned simple return over ``horizon`` bars (a fraction, not annualised),
    alphalens ``mean_return_by_quantile(by_date=True)``. Empty buckets have no row.
    """
    _positive(quantiles, "quantiles")
    pairs = _pairs(values, forward)
    if pairs.is_empty():
        return pl.DataFrame(schema=QUANTILE_BAR_SCHEMA)
    demeaned = pairs.with_columns(pl.col("forward_return") - pl.col("forward_return").mean().over(BAR_KEY))
    return (
        _assign_quantiles(demeaned, BAR_KEY, quantiles)
        .group_by([*BAR_KEY, "quantile"])
        .agg(pl.col("forward_return").mean().alias("mean_return"), pl.len().alias("n_assets"))
        .sort([*BAR_KEY, "quantile"])
        .select(list(QUANTILE_BAR_SCHEMA)).cast(QUANTILE_BAR_SCHEMA)
    )


def _previous_bar(frame: pl.DataFrame, interval_minutes: int, suffix: str) -> pl.DataFrame:
    """``frame`` moved one bar later on the grid (``ts + interval``), columns but the keys suffixed:
    joined on ``ts`` it gives each row the previous grid bar's values."""
    keys = {"symbol", "ts", "signal_name"}
    return frame.select(
        pl.col("symbol", "signal_name"),
        pl.col("ts") + timedelta(minutes=interval_minutes),
        *[pl.col(c).alias(c + suffix) for c in frame.columns if c not in keys],
    )


def rank_autocorrelation(values: pl.DataFrame, interval_minutes: int) -> pl.DataFrame:
    """Per bar and signal: ``ts, signal_name, rank_autocorr``.

    alphalens ``factor_rank_autocorrelation(period=1)``: the Pearson correlation, across the
    assets present at both bars, of the average ranks of value at bar ``ts`` (ranked among all
    assets at ``ts``) and at the previous bar on the grid, ``ts - interval_minutes`` (ranked among
    all assets there). No row when the previous grid bar has no values, fewer than 2 assets are
    common to both bars, or a rank vector is constant over them. Unitless, in [-1, 1].
    """
    _positive(interval_minutes, "interval_minutes")
    ranked = _clean_values(values).with_columns(pl.col("value").rank("average").over("ts", "signal_name").alias("rank"))
    joined = ranked.join(_previous_bar(ranked.drop("value"), interval_minutes, "_prev"),
                         on=["symbol", "ts", "signal_name"], how="inner")
    if joined.is_empty():
        return pl.DataFrame(schema=AUTOCORR_SCHEMA)
    return (
        joined.group_by("ts", "signal_name")
        .agg(pl.corr("rank", "rank_prev").alias("rank_autocorr"), pl.len().alias("_n"),
             (_varies("rank") & _varies("rank_prev")).alias("_varies"))
        .filter((pl.col("_n") >= 2) & pl.col("_varies"))
        .sort("ts", "signal_name")
        .select(list(AUTOCORR_SCHEMA)).cast(AUTOCORR_SCHEMA)
    )


def _turnover(members: pl.DataFrame, interval_minutes: int, name: str) -> pl.DataFrame:
    """``ts, signal_name, <name>``: share of ``members`` (``symbol, ts, signal_name``) at ``ts`` not
    members at ``ts - interval``, for bars where both have members."""
    previous = _previous_bar(members.with_columns(pl.lit(True).alias("was")), interval_minutes, "")
    previous_bars = previous.select("ts", "signal_name").unique()
    return (
        members.join(previous_bars, on=["ts", "signal_name"], how="semi")
        .join(previous, on=["symbol", "ts", "signal_name"], how="left")
        .group_by("ts", "signal_name")
        .agg((pl.col("was").is_null().sum() / pl.len()).alias(name))
    )


def quantile_turnover(values: pl.DataFrame, quantiles: int, interval_minutes: int) -> pl.DataFrame:
    """Per bar and signal: ``ts, signal_name, turnover_top, turnover_bottom``.

    alphalens ``quantile_turnover(factor_quantile, q, period=1)`` for the top (``q``) and bottom
    (1) quantile: the share of the names in the quantile at bar ``ts`` that were not in it at the
    previous grid bar ``ts - interval_minutes``, a fraction in [0, 1]. Buckets are the
    :func:`quantile_bar_returns` ones computed on ``values`` alone (all assets with a value at the
    bar). A side is null when its quantile is empty at ``ts`` or at the previous bar (or either bar
    has non-distinct edges); a bar with both sides null has no row.
    """
    _positive(quantiles, "quantiles")
    _positive(interval_minutes, "interval_minutes")
    labelled = _assign_quantiles(_clean_values(values), ["ts", "signal_name"], quantiles)
    if labelled.is_empty():
        return pl.DataFrame(schema=TURNOVER_SCHEMA)
    keys = ["symbol", "ts", "signal_name"]
    top = _turnover(labelled.filter(pl.col("quantile") == quantiles).select(keys), interval_minutes, "turnover_top")
    bottom = _turnover(labelled.filter(pl.col("quantile") == 1).select(keys), interval_minutes, "turnover_bottom")
    return (
        top.join(bottom, on=["ts", "signal_name"], how="full", coalesce=True)
        .sort("ts", "signal_name")
        .select(list(TURNOVER_SCHEMA)).cast(TURNOVER_SCHEMA)
    )


def _ratio(numerator: str, denominator: str) -> pl.Expr:
    """``numerator / denominator``, null where the denominator is null or 0."""
    return pl.when(pl.col(denominator) > 0).then(pl.col(numerator) / pl.col(denominator))


def _ic_stats(ic: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """``by`` plus ``n_periods, ic_mean, ic_std, icir, t_stat, p_value, rank_ic_mean, rank_ic_std,
    rank_icir`` over the rows of ``ic`` with an IC (std ddof 1; ICIR null when std is 0 or null)."""
    from scipy import stats  # deferred: scipy.stats takes most of a second to import
    order = [*by, "ts"] if "ts" in ic.columns else by
    out = (
        ic.filter(pl.col("ic").is_not_null())
        .sort(order)  # each mean sums its periods in time order: bit-identical whatever order rows came in
        .group_by(by, maintain_order=True)
        .agg(pl.len().alias("n_periods"), pl.col("ic").mean().alias("ic_mean"), pl.col("ic").std().alias("ic_std"),
             pl.col("rank_ic").mean().alias("rank_ic_mean"), pl.col("rank_ic").std().alias("rank_ic_std"))
        .with_columns(_ratio("ic_mean", "ic_std").alias("icir"), _ratio("rank_ic_mean", "rank_ic_std").alias("rank_icir"))
        .with_columns((pl.col("icir") * pl.col("n_periods").cast(pl.Float64).sqrt()).alias("t_stat"))
    )
    t = out["t_stat"].to_numpy().astype(np.float64)
    dof = out["n_periods"].to_numpy().astype(np.float64) - 1
    with np.errstate(invalid="ignore"):
        p = np.where(np.isfinite(t) & (dof > 0), 2 * stats.t.sf(np.abs(t), np.maximum(dof, 1)), np.nan)
    return out.with_columns(pl.Series("p_value", p).fill_nan(None)).sort(by)


def signal_summary(ic: pl.DataFrame, quantile_bars: pl.DataFrame, autocorr: pl.DataFrame,
                   turnover: pl.DataFrame, quantiles: int) -> pl.DataFrame:
    """Per signal and horizon: ``signal_name, horizon, n_periods, ic_mean, ic_std, icir, t_stat,
    p_value, rank_ic_mean, rank_ic_std, rank_icir, spread_mean, spread_se, rank_autocorr,
    turnover_top, turnover_bottom``.

    ``ic``: :func:`cross_sectional_ic` or :func:`pooled_ic` rows; ``n_periods`` counts its rows.
    ICIR = mean / std (ddof 1) of the per-period IC, not annualised; ``t_stat = ICIR *
    sqrt(n_periods)`` (equals ``scipy.stats.ttest_1samp(ic, 0)``); ``p_value`` two-sided from the
    t distribution with ``n_periods - 1`` degrees of freedom. The same for ``rank_ic``.
    ``spread`` is the top (``quantiles``) minus bottom (1) quantile's ``mean_return`` per bar where
    both exist (alphalens ``compute_mean_returns_spread``), then ``spread_mean`` and ``spread_se =
    std / sqrt(n)`` over bars (a fraction per ``horizon`` bars). ``rank_autocorr``,
    ``turnover_top`` and ``turnover_bottom`` are the signal's means over bars (all horizons share
    them). Statistics needing two periods are null with one.
    """
    _positive(quantiles, "quantiles")
    by = ["signal_name", "horizon"]
    ic = ic.with_columns(pl.col("horizon").cast(pl.Int64))
    quantile_bars = quantile_bars.with_columns(pl.col("horizon").cast(pl.Int64))
    ic_part = _ic_stats(ic, by) if not ic.is_empty() else pl.DataFrame(
        schema={k: SUMMARY_SCHEMA[k] for k in [*by, *_IC_STATS, "p_value", "rank_ic_mean", "rank_ic_std", "rank_icir"]})
    ends = quantile_bars.filter(pl.col("quantile").is_in([1, quantiles]))
    spread = (
        ends.group_by(BAR_KEY)
        .agg((pl.col("mean_return").filter(pl.col("quantile") == quantiles).first()
              - pl.col("mean_return").filter(pl.col("quantile") == 1).first()).alias("spread"))
        .drop_nulls("spread")
        .sort(BAR_KEY)
        .group_by(by, maintain_order=True)
        .agg(pl.col("spread").mean().alias("spread_mean"),
             (pl.col("spread").std() / pl.len().cast(pl.Float64).sqrt()).alias("spread_se"))
    ) if quantiles > 1 else pl.DataFrame(schema={"signal_name": pl.Utf8, "horizon": pl.Int64,
                                                 "spread_mean": pl.Float64, "spread_se": pl.Float64})
    per_signal = (
        autocorr.sort("signal_name", "ts").group_by("signal_name", maintain_order=True).agg(pl.col("rank_autocorr").mean())
        .join(turnover.sort("signal_name", "ts").group_by("signal_name", maintain_order=True)
              .agg(pl.col("turnover_top", "turnover_bottom").mean()),
              on="signal_name", how="full", coalesce=True)
    )
    keys = pl.concat([ic_part.select(by), spread.select(by)]).unique()
    return (
        keys.join(ic_part, on=by, how="left")
        .join(spread, on=by, how="left")
        .join(per_signal, on="signal_name", how="left")
        .sort(by)
        .select(list(SUMMARY_SCHEMA)).cast(SUMMARY_SCHEMA)
    )


def quantile_summary(quantile_bars: pl.DataFrame) -> pl.DataFrame:
    """Per signal, horizon and quantile: ``signal_name, horizon, quantile, mean_return, std_err,
    n_periods`` — the mean over bars of :func:`quantile_bar_returns`' per-bar means and its standard
    error ``std (ddof 1) / sqrt(n_periods)`` (alphalens ``mean_return_by_quantile(by_date=False)``
    and its ``std_error_ret``). Demeaned simple returns over ``horizon`` bars, fractions."""
    if quantile_bars.is_empty():
        return pl.DataFrame(schema=QUANTILE_SUMMARY_SCHEMA)
    return (
        quantile_bars.sort("signal_name", "horizon", "quantile", "ts")
        .group_by("signal_name", "horizon", "quantile", maintain_order=True)
        .agg(pl.col("mean_return").mean(), pl.col("mean_return").std().alias("_std"), pl.len().alias("n_periods"))
        .with_columns((pl.col("_std") / pl.col("n_periods").cast(pl.Float64).sqrt()).alias("std_err"))
        .sort("signal_name", "horizon", "quantile")
        .select(list(QUANTILE_SUMMARY_SCHEMA)).cast(QUANTILE_SUMMARY_SCHEMA)
    )


def ic_by_regime(ic: pl.DataFrame, regimes: pl.DataFrame) -> pl.DataFrame:
    """The IC summary split by regime: ``signal_name, horizon, regime_kind, regime, n_periods,
    ic_mean, ic_std, icir, t_stat, rank_ic_mean, rank_icir``.

    ``ic``: :func:`cross_sectional_ic` rows. ``regimes``: ``ts`` (the bar the label holds at,
    known at its close like the signal) plus the label columns ``vol_regime``,
    ``dispersion_regime``, ``beta_state`` (strings; null = unknown). Each IC row is matched to its
    bar's labels; ``regime_kind`` is the label column's name, ``regime`` its label; rows with a
    null label (or no regimes row) are left out of that kind. Statistics as in
    :func:`signal_summary`.
    """
    _require(regimes, ["ts", *REGIME_KINDS], "regimes")
    if ic.is_empty():
        return pl.DataFrame(schema=REGIME_SCHEMA)
    labels = (
        regimes.select(pl.col("ts").dt.cast_time_unit("us"), *[pl.col(k).cast(pl.Utf8) for k in REGIME_KINDS])
        .unpivot(index="ts", on=list(REGIME_KINDS), variable_name="regime_kind", value_name="regime")
        .drop_nulls("regime")
    )
    by = ["signal_name", "horizon", "regime_kind", "regime"]
    joined = ic.with_columns(pl.col("ts").dt.cast_time_unit("us")).join(labels, on="ts", how="inner")
    if joined.is_empty():
        return pl.DataFrame(schema=REGIME_SCHEMA)
    return _ic_stats(joined, by).select(list(REGIME_SCHEMA)).cast(REGIME_SCHEMA)


# --- The first research asset's IC, kept unchanged until it is retired. For a signal value s[t]
# (known at the close of bar t) the forward return is the log return of the next bar of the same
# symbol, r[t+1] = ln(close[t+1] / close[t]); IC is the Pearson correlation of s[t] with r[t+1]
# pooled over symbols and bars, rank IC the Spearman correlation. Pairs whose next bar lies outside
# the frame given are dropped, so a day's IC uses only that day's bars. None when fewer than 3
# pairs or a side is constant.

IC_SCHEMA = {"signal_name": pl.Utf8, "ic": pl.Float64, "rank_ic": pl.Float64, "n_obs": pl.Int64}


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    value = float(np.corrcoef(x, y)[0, 1])
    return value if math.isfinite(value) else None


def information_coefficients(signals: pl.DataFrame, bars: pl.DataFrame) -> pl.DataFrame:
    """Per ``signal_name``: IC, rank IC and the number of (signal, next-bar return) pairs.

    ``signals``: ``signal_name, symbol, ts, value``. ``bars``: ``symbol, ts, log_return``
    (``log_return`` at ``ts`` is the return over bar ``ts``). The next bar is the next row of
    the symbol in ``bars`` (gaps are facts: the next existing bar).
    """
    forward = bars.sort("symbol", "ts").select(
        "symbol", "ts", pl.col("log_return").shift(-1).over("symbol").alias("forward_return")
    )
    pairs = signals.join(forward, on=["symbol", "ts"], how="inner").drop_nulls(["value", "forward_return"])
    rows = []
    for name in sorted(set(signals["signal_name"].to_list())):
        group = pairs.filter(pl.col("signal_name") == name)
        x, y = group["value"].to_numpy(), group["forward_return"].to_numpy()
        ranks = group.select(pl.col("value").rank("average"), pl.col("forward_return").rank("average"))
        rank_ic = _pearson(ranks["value"].to_numpy(), ranks["forward_return"].to_numpy())
        rows.append((name, _pearson(x, y), rank_ic, group.height))
    return pl.DataFrame(rows, schema=IC_SCHEMA, orient="row")


def daily_information_coefficients(signals: pl.DataFrame, bars: pl.DataFrame, days: list[datetime]) -> pl.DataFrame:
    """:func:`information_coefficients` of each UTC day on that day's bars alone.

    ``days`` are the days' midnights; a day without signals has no rows. Columns ``day``,
    ``signal_name``, ``ic``, ``rank_ic``, ``n_obs``.
    """
    frames = []
    for day in days:
        in_day = (pl.col("ts") >= day) & (pl.col("ts") < day + timedelta(days=1))
        todays = signals.filter(in_day)
        ic = information_coefficients(todays, bars.filter(in_day)) if todays.height else pl.DataFrame(schema=IC_SCHEMA)
        frames.append(ic.with_columns(day=pl.lit(day, dtype=pl.Datetime("us"))))
    if not frames:
        return pl.DataFrame(schema={"day": pl.Datetime("us"), **IC_SCHEMA})
    return pl.concat(frames).select("day", "signal_name", "ic", "rank_ic", "n_obs")
