"""Factors: cross-sectional factors per bar across the universe (core in ``quant.factors``).

The asset reads ``bars_<features.interval>`` of its window and of the days before it that the
longest window needs (``FactorParams.history_bars`` + 2 bars, rounded up to whole days), declared
as a :class:`~quant_assets.lib.lookback.Lookback`. A value needs its bars on the grid, so where a
day of that history is not there yet the values that need it are absent (no row, never one
computed from a shorter history); the day records itself incomplete (``lookback_status``,
metadata, the WARN check ``factors_lookback_complete``) and is refreshed when the day lands.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

import dagster as dg
import polars as pl

from quant_assets.config import INTERVAL_MINUTES, Settings
from quant_assets.lib.lookback import (
    Lookback,
    complete_days,
    lookback_status,
    record_status,
    status_figures,
)
from quant_assets.lib.market import market_symbol
from quant_assets.lib.metadata import Figures
from quant_assets.lib.partitioned import AssetOutput, TableWrite, WindowStep, daily_asset
from quant_assets.lib.plots import heatmap_png
from quant_assets.partitions import days_spanning
from quant_assets.quant.factors import (
    FactorParams,
    compute_factors,
    mean_cross_sectional_correlation,
)
from quant_assets.resources.tables import ident, query_frame


def factor_params(settings: Settings) -> FactorParams:
    """The core's parameters from ``settings.factors``."""
    cfg = settings.factors
    return FactorParams(
        momentum_windows=tuple(cfg.momentum_windows), size_window=cfg.size_window,
        liquidity_window=cfg.liquidity_window, volatility_window=cfg.volatility_window,
        beta_window=cfg.beta_window, winsor_mads=float(cfg.winsor_mads), orthogonalise=cfg.orthogonalise,
    )


def factor_lookback(settings: Settings) -> Lookback:
    """The bar days before a partition that its values read: the longest window + 2 bars."""
    interval = settings.features.interval
    bars_back = factor_params(settings).history_bars + 2
    return Lookback(f"bars_{interval}", days_spanning(bars_back, interval))


def market_description(market: str | None) -> str:
    if market is None:
        return ("the equal-weighted mean simple return of the universe's symbols that have a return at each bar "
                "(the market symbol is not in the universe)")
    return f"{market}'s simple return"


def daily_figures(frame: pl.DataFrame, names: tuple[str, ...]) -> dict[str, dict[str, float | int]]:
    """Per day: bars with factors, the mean and the least number of symbols per bar, rows per factor."""
    if frame.is_empty():
        return {}
    per_bar = frame.group_by("ts").agg(pl.col("symbol").n_unique().alias("symbols"))
    bars = per_bar.group_by(pl.col("ts").dt.date().alias("day")).agg(
        pl.len().alias("bars_with_factors"), pl.col("symbols").mean().alias("symbols_per_bar_mean"),
        pl.col("symbols").min().alias("symbols_per_bar_min"))
    rows = frame.group_by(pl.col("ts").dt.date().alias("day"), "factor_name").len().pivot(
        on="factor_name", index="day", values="len")
    out: dict[str, dict[str, float | int]] = {}
    for row in bars.join(rows, on="day", how="left").iter_rows(named=True):
        day = str(row.pop("day"))
        out[day] = {**{k: row[k] for k in ("bars_with_factors", "symbols_per_bar_mean", "symbols_per_bar_min")},
                    **{f"rows_{n}": int(row.get(n) or 0) for n in names}}
    return out


def build_factors(settings: Settings) -> dg.AssetsDefinition:
    interval = settings.features.interval
    bars = f"bars_{interval}"
    minutes = INTERVAL_MINUTES[interval]
    params = factor_params(settings)
    lookback = factor_lookback(settings)
    market = market_symbol(settings)
    symbols = list(settings.symbols)
    shaping = {"params": asdict(params), "interval": interval, "market": market or "equal-weighted"}

    @daily_asset(
        settings,
        name="factors",
        group="factors",
        description=(
            f"Cross-sectional factors on {interval} bars, long format (symbol, ts, factor_name, value): "
            f"{', '.join(params.names)}. Raw values from bars up to and including the bar's close "
            "(momentum over w bars skipping the latest bar; reversal = minus the latest return; size = ln of "
            "the summed dollar volume, quote_volume or close * volume where it is NULL; Amihud illiquidity in "
            "|return| per million quote currency; low_vol = minus the sample std of log returns; beta = "
            f"cov/var of simple returns against the market: {market_description(market)}). A rolling window "
            "needs all its bars on the grid, else no value. Per bar and factor: winsorised at median +- "
            f"{params.winsor_mads:g} x 1.4826 x MAD, then z-scored with the sample std (ddof 1); only bars with "
            "at least 3 symbols and a non-zero std. "
            + ("<name>_orth: the re-z-scored residual of a per-bar OLS (with intercept) on the other families "
               "(momentum = the mean of the mom_* z-scores) and on beta, at bars where at least 8 symbols have "
               "all regressors (5 regressors + 3). " if params.orthogonalise else "")
            + f"Lookback: {lookback.describe()}; a day built without it has no values where history is missing "
            "and is recorded incomplete."
        ),
        deps=[lookback.dep()],
        metadata={"market": market or "equal-weighted", "factor_names": dg.MetadataValue.json(list(params.names))},
    )
    def factors(step: WindowStep) -> AssetOutput:
        conn, (start, end) = step.conn, step.window
        status = lookback_status(conn, [lookback], step.window, settings.start_date)
        history = query_frame(
            conn,
            f"SELECT symbol, ts, close, volume, quote_volume FROM {ident(bars)} "
            "WHERE ts >= ? AND ts < ? AND list_contains(?, symbol) ORDER BY symbol, ts",
            [start - timedelta(days=lookback.days or 0), end, symbols],
        )
        frame = compute_factors(history, params, minutes, market, since=start)
        daily: dict[str, Figures] = dict(daily_figures(frame, params.names))
        for key, figures in status_figures(status).items():
            daily[key] = {**daily.get(key, {}), **figures}
        extra: dict[str, object] = {"market": market or "equal-weighted (market symbol not in the universe)"}
        if not frame.is_empty():
            matrix = mean_cross_sectional_correlation(frame, params.names)
            extra["mean_factor_correlation"] = dg.MetadataValue.md(heatmap_png(
                list(params.names), matrix,
                f"Mean cross-sectional correlation of the factors per bar, {step.window.label()}"))
        return AssetOutput(
            [TableWrite("factors", frame, params=shaping)],
            daily=daily,
            summary={"history_rows_read": history.height, "rows": frame.height,
                     "days_lookback_incomplete": len(status) - len(complete_days(status))},
            extra=extra,
            also=[lambda c: record_status(c, "factors", [lookback], status)],
        )

    return factors
