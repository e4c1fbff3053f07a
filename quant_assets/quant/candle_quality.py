"""The quality gate every candle passes before it is written.

A candle is kept when its prices are finite and > 0, ``high >= max(open, close)``,
``low <= min(open, close)``, ``volume >= 0`` (finite), ``ts`` lies on the interval grid and
inside the requested window. Exact duplicate rows collapse to one; rows that share
``(symbol, ts)`` but disagree are all rejected, since no one of them can be trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

REJECT_REASONS = (
    "non_finite_or_non_positive_price",
    "high_below_open_or_close",
    "low_above_open_or_close",
    "negative_or_non_finite_volume",
    "off_interval_grid",
    "outside_window",
    "conflicting_duplicate",
)


@dataclass(frozen=True)
class GateResult:
    valid: pl.DataFrame
    rejected: pl.DataFrame  # the input columns plus ``reason``
    duplicates_dropped: int

    def reject_counts(self) -> dict[str, int]:
        counts = {reason: 0 for reason in REJECT_REASONS}
        for reason, n in self.rejected.group_by("reason").len().iter_rows():
            counts[reason] = n
        return counts


def gate_candles(frame: pl.DataFrame, interval_minutes: int, start: datetime, end: datetime) -> GateResult:
    """Split ``frame`` (canonical candle schema) into valid rows (sorted) and rejected rows."""
    prices = ("open", "high", "low", "close")
    price_ok = pl.all_horizontal([pl.col(c).is_finite() & (pl.col(c) > 0) for c in prices])
    step_us = interval_minutes * 60 * 1_000_000
    reason = (
        pl.when(~price_ok.fill_null(False)).then(pl.lit(REJECT_REASONS[0]))
        .when(pl.col("high") < pl.max_horizontal("open", "close")).then(pl.lit(REJECT_REASONS[1]))
        .when(pl.col("low") > pl.min_horizontal("open", "close")).then(pl.lit(REJECT_REASONS[2]))
        .when(~(pl.col("volume").is_finite() & (pl.col("volume") >= 0)).fill_null(True))
        .then(pl.lit(REJECT_REASONS[3]))
        .when(pl.col("ts").dt.epoch("us") % step_us != 0).then(pl.lit(REJECT_REASONS[4]))
        .when((pl.col("ts") < start) | (pl.col("ts") >= end)).then(pl.lit(REJECT_REASONS[5]))
    )
    checked = frame.with_columns(reason.alias("reason"))
    bad = checked.filter(pl.col("reason").is_not_null())
    good = checked.filter(pl.col("reason").is_null()).drop("reason")
    deduped = good.unique(maintain_order=True)
    duplicates_dropped = good.height - deduped.height
    conflicting = deduped.filter(pl.len().over("symbol", "ts") > 1)
    valid = deduped.filter(pl.len().over("symbol", "ts") == 1).sort("symbol", "ts")
    rejected = pl.concat(
        [bad, conflicting.with_columns(pl.lit(REJECT_REASONS[6]).alias("reason"))], how="vertical"
    )
    return GateResult(valid=valid, rejected=rejected, duplicates_dropped=duplicates_dropped)
