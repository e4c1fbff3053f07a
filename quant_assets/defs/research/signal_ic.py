"""Research: daily information coefficients of every signal (core in ``quant.validation``)."""

import dagster as dg
import polars as pl

from quant_assets.config import Settings
from quant_assets.lib.partitioned import AssetOutput, TableWrite, WindowStep, daily_asset
from quant_assets.lib.plots import daily_lines_png
from quant_assets.quant.validation import daily_information_coefficients
from quant_assets.resources.tables import ident, preview_markdown, query_frame


def build_signal_ic(settings: Settings) -> dg.AssetsDefinition:
    bars = f"bars_{settings.features.interval}"

    @daily_asset(
        settings,
        name="signal_ic",
        group="research",
        description=(
            "Daily information coefficient of each signal: Pearson (IC) and Spearman (rank IC) "
            f"correlation of the signal at a {settings.features.interval} bar's close with the next "
            "bar's log return, pooled over symbols, using only the day's own bars (no look-ahead "
            "across partitions), with the number of pairs."
        ),
        deps=["signals", bars],
    )
    def signal_ic(step: WindowStep) -> AssetOutput:
        window = list(step.window)
        signals = query_frame(step.conn, "SELECT signal_name, symbol, ts, value FROM signals WHERE ts >= ? AND ts < ?", window)
        returns = query_frame(step.conn, f"SELECT symbol, ts, log_return FROM {ident(bars)} WHERE ts >= ? AND ts < ?", window)
        frame = daily_information_coefficients(signals, returns, [d.start for d in step.window.days()])
        daily = {
            str(day.date()): {f"rank_ic_{name}": value for name, value in zip(group["signal_name"], group["rank_ic"], strict=True)}
            for (day,), group in frame.group_by("day")
        }
        summary = frame.group_by("signal_name").agg(
            pl.col("ic").mean().alias("mean_ic"), pl.col("rank_ic").mean().alias("mean_rank_ic"),
            pl.len().alias("days"),
        ).sort("signal_name")
        extra = {"mean_ic_by_signal": dg.MetadataValue.md(
            f"Mean over the days of {step.window.label()}\n\n" + preview_markdown(summary, 20))}
        if frame.height and step.window.n_days > 1:
            wide = frame.pivot(on="signal_name", index="day", values="rank_ic").sort("day")
            extra["rank_ic_over_days"] = dg.MetadataValue.md(daily_lines_png(
                [d.date() for d in wide["day"]], {c: wide[c].fill_null(float("nan")).to_list() for c in wide.columns[1:]},
                f"Daily rank IC per signal, {step.window.label()}", "rank IC (next bar)"))
        return AssetOutput([TableWrite("signal_ic", frame, params={"bars": bars}, time_column="day")],
                           daily=daily, extra=extra)

    return signal_ic
