"""Signals: EMA-crossover candidates, long format, one row per (signal, symbol, bar)."""

import dagster as dg
import polars as pl

from quant_assets.config import Settings
from quant_assets.lib.partitioned import AssetOutput, TableWrite, WindowStep, daily_asset
from quant_assets.quant.signals import crossover_signals
from quant_assets.resources.tables import ident, query_frame


def build_signals(settings: Settings) -> dg.AssetsDefinition:
    features = f"features_{settings.features.interval}"
    pairs = settings.signals.ema_pairs

    @daily_asset(
        settings,
        name="signals",
        group="signals",
        description=(
            f"EMA-crossover signals for pairs {[list(p) for p in pairs]}: +1 when the fast EMA is above "
            "the slow one, -1 below, 0 equal; none before both EMAs exist. A value at bar ts is "
            "known at that bar's close and is traded from the next bar."
        ),
        deps=[features],
    )
    def signals(step: WindowStep) -> AssetOutput:
        rows = query_frame(step.conn, f"SELECT * FROM {ident(features)} WHERE ts >= ? AND ts < ?", list(step.window))
        frame = crossover_signals(rows, pairs).select("symbol", "ts", "signal_name", "value")
        by_day = frame.group_by(pl.col("ts").dt.date().alias("day"), "signal_name").len()
        daily = {
            str(day): {f"rows_{name}": n for name, n in zip(group["signal_name"], group["len"], strict=True)}
            for (day,), group in by_day.group_by("day")
        }
        return AssetOutput([TableWrite("signals", frame, params={"ema_pairs": pairs})], daily=daily)

    return signals
