"""The validation tear sheet as pictures in metadata: IC over time with a rolling mean, mean
return by quantile per horizon, IC decay and the cumulative long-short spread (alphalens'
``create_full_tear_sheet`` panels, drawn from the platform's own tables).

The signals drawn are the ``top`` ones by |mean rank IC| at the first horizon, so a tear sheet
stays readable with dozens of signals and factors; the title says which were chosen and over
which window the pictures run.
"""

from __future__ import annotations

import dagster as dg
import numpy as np
import polars as pl

from quant_assets.lib.plots import figure_markdown, plt


def leading_signals(ic: pl.DataFrame, horizon: int, top: int) -> list[str]:
    """The ``top`` signals by |mean rank IC| at ``horizon`` (ties by name)."""
    means = (ic.filter(pl.col("horizon") == horizon).group_by("signal_name").agg(pl.col("rank_ic").mean().abs().alias("m"))
             .sort(["m", "signal_name"], descending=[True, False]))
    return means["signal_name"].head(top).to_list()


def _ic_over_time(ic: pl.DataFrame, names: list[str], horizon: int, rolling: int, label: str) -> str:
    figure, axis = plt.subplots(figsize=(9, 3.2))
    for name in names:
        series = ic.filter((pl.col("signal_name") == name) & (pl.col("horizon") == horizon)).sort("ts")
        line, = axis.plot(series["ts"].to_list(), series["rank_ic"].to_list(), linewidth=0.5, alpha=0.35)
        smooth = series["rank_ic"].rolling_mean(window_size=rolling, min_samples=1)
        axis.plot(series["ts"].to_list(), smooth.to_list(), linewidth=1.5, color=line.get_color(),
                  label=f"{name} ({rolling}-bar mean)")
    axis.axhline(0.0, color="#999999", linewidth=0.8)
    axis.set_ylabel(f"rank IC, h = {horizon} bars")
    axis.set_title(f"Cross-sectional rank IC per bar, {label}", fontsize=10)
    axis.legend(fontsize=7, ncol=2)
    figure.autofmt_xdate()
    return figure_markdown(figure, "rank IC over time")


def _quantile_bars(quantiles: pl.DataFrame, name: str, label: str) -> str:
    means = (quantiles.filter(pl.col("signal_name") == name).group_by("horizon", "quantile")
             .agg(pl.col("mean_return").mean()).sort("horizon", "quantile"))
    horizons = sorted(set(means["horizon"].to_list()))
    figure, axis = plt.subplots(figsize=(9, 3.2))
    width = 0.8 / max(1, len(horizons))
    for i, h in enumerate(horizons):
        part = means.filter(pl.col("horizon") == h)
        x = np.array(part["quantile"].to_list(), dtype=float) + (i - (len(horizons) - 1) / 2) * width
        axis.bar(x, [r * 1e4 for r in part["mean_return"].to_list()], width=width, label=f"h = {h}")
    axis.axhline(0.0, color="#999999", linewidth=0.8)
    axis.set_xlabel("quantile (1 = lowest value)")
    axis.set_ylabel("mean demeaned return (bps)")
    axis.set_title(f"Mean forward return by quantile: {name}, {label}", fontsize=10)
    axis.legend(fontsize=7)
    return figure_markdown(figure, "mean return by quantile")


def _ic_decay(ic: pl.DataFrame, names: list[str], label: str) -> str:
    decay = (ic.filter(pl.col("signal_name").is_in(names)).group_by("signal_name", "horizon")
             .agg(pl.col("rank_ic").mean()).sort("horizon"))
    figure, axis = plt.subplots(figsize=(9, 3.0))
    for name in names:
        part = decay.filter(pl.col("signal_name") == name)
        axis.plot(part["horizon"].to_list(), part["rank_ic"].to_list(), marker="o", linewidth=1.2, label=name)
    axis.axhline(0.0, color="#999999", linewidth=0.8)
    axis.set_xscale("log")
    axis.set_xlabel("horizon (bars, log scale)")
    axis.set_ylabel("mean rank IC")
    axis.set_title(f"IC decay, {label}", fontsize=10)
    axis.legend(fontsize=7, ncol=2)
    return figure_markdown(figure, "IC decay")


def _cumulative_spread(quantiles: pl.DataFrame, names: list[str], horizon: int, label: str) -> str:
    top_q = quantiles["quantile"].max()
    figure, axis = plt.subplots(figsize=(9, 3.2))
    for name in names:
        part = quantiles.filter((pl.col("signal_name") == name) & (pl.col("horizon") == horizon))
        spread = (part.group_by("ts").agg(
            (pl.col("mean_return").filter(pl.col("quantile") == top_q).first()
             - pl.col("mean_return").filter(pl.col("quantile") == 1).first()).alias("spread"))
            .drop_nulls().sort("ts"))
        if spread.height:
            axis.plot(spread["ts"].to_list(), (spread["spread"] + 1.0).cum_prod().to_list(), linewidth=1.2, label=name)
    axis.axhline(1.0, color="#999999", linewidth=0.8)
    axis.set_ylabel(f"growth of 1 (h = {horizon})")
    axis.set_title(f"Cumulative top-minus-bottom quantile spread, {label}", fontsize=10)
    axis.legend(fontsize=7, ncol=2)
    figure.autofmt_xdate()
    return figure_markdown(figure, "cumulative long-short spread")


def window_tear_sheet(ic: pl.DataFrame, quantiles: pl.DataFrame, label: str, rolling: int,
                      top: int = 5) -> dict[str, dg.MetadataValue]:
    """The four panels as markdown images (empty when there is no IC), keyed for the metadata."""
    if ic.is_empty():
        return {}
    horizon = int(ic["horizon"].min())
    names = leading_signals(ic, horizon, top)
    sheet = {
        "tear_sheet_ic_over_time": _ic_over_time(ic, names, horizon, rolling, label),
        "tear_sheet_ic_decay": _ic_decay(ic, names, label),
    }
    bucketed = [n for n in names if n in set(quantiles["signal_name"].to_list())]
    if bucketed:  # a rule's discrete positions have no buckets (tied quantile edges)
        sheet["tear_sheet_quantile_returns"] = _quantile_bars(quantiles, bucketed[0], label)
        sheet["tear_sheet_cumulative_spread"] = _cumulative_spread(quantiles, bucketed, horizon, label)
    return {key: dg.MetadataValue.md(value) for key, value in sheet.items()}
