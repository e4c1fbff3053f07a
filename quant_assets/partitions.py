"""Time partitions: one UTC calendar day per partition, for every stage.

A daily partition ``YYYY-MM-DD`` covers ``[day 00:00, next day 00:00)`` UTC. Only complete days
exist (``end_offset=0``), so today's partition appears once the day has closed. Backtests use the
same partitions: a partition is one walk-forward fold whose out-of-sample window is that day.
"""

from __future__ import annotations

import dagster as dg

from quant_assets.config import Settings
from quant_assets.quant.calendar import Window, utc_naive


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=settings.start_date.isoformat(), timezone="UTC")


def training_window_mapping(settings: Settings) -> dg.TimeWindowPartitionMapping:
    """A fold depends on the ``train_days`` partitions before it and on its own day."""
    return dg.TimeWindowPartitionMapping(
        start_offset=-settings.backtest.train_days, allow_nonexistent_upstream_partitions=True
    )


def window_of(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> Window:
    """The run's partition window (one day or a single-run range) as naive UTC datetimes."""
    window = context.partition_time_window
    return Window(utc_naive(window.start), utc_naive(window.end))
