"""Time partitions: one UTC calendar day per partition, for every stage.

A daily partition ``YYYY-MM-DD`` covers ``[day 00:00, next day 00:00)`` UTC. Only complete days
exist (``end_offset=0``), so today's partition appears once the day has closed. Backtests use the
same partitions: a partition is one walk-forward fold whose out-of-sample window is that day.

The first partition, ``partitions.start_date``, is the *origin*: no partition exists before it, so
a value defined "since the origin" is fixed once every day from the origin to its own is there.
"""

from __future__ import annotations

import math

import dagster as dg

from quant_assets.config import INTERVAL_MINUTES, Settings
from quant_assets.quant.calendar import Window, utc_naive


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=settings.start_date.isoformat(), timezone="UTC")


SINCE_ORIGIN_DAYS = 36_525
"""A lookback of a century of days: further back than any partition, so it reaches the origin."""


def days_spanning(bars: int, interval: str) -> int:
    """Whole days that ``bars`` bars of ``interval`` reach across (a lookback or look-ahead in days)."""
    return math.ceil(bars * INTERVAL_MINUTES[interval] / (24 * 60))


def lookback_mapping(days: int | None, ahead: int = 0) -> dg.TimeWindowPartitionMapping:
    """A partition depends on the ``days`` partitions before it, on its own day and on the
    ``ahead`` partitions after it (research outputs judged on later bars); ``days=None``: on every
    partition from the origin. Days before the origin or not yet closed do not exist and are not
    required."""
    if days is not None and days < 0:
        raise ValueError(f"a lookback counts days back, got {days}")
    if ahead < 0:
        raise ValueError(f"a look-ahead counts days forward, got {ahead}")
    return dg.TimeWindowPartitionMapping(
        start_offset=-(SINCE_ORIGIN_DAYS if days is None else days), end_offset=ahead,
        allow_nonexistent_upstream_partitions=True,
    )


def training_window_mapping(settings: Settings) -> dg.TimeWindowPartitionMapping:
    """A fold depends on the ``train_days`` partitions before it and on its own day."""
    return dg.TimeWindowPartitionMapping(
        start_offset=-settings.backtest.train_days, allow_nonexistent_upstream_partitions=True
    )


def window_of(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> Window:
    """The run's partition window (one day or a single-run range) as naive UTC datetimes."""
    window = context.partition_time_window
    return Window(utc_naive(window.start), utc_naive(window.end))
