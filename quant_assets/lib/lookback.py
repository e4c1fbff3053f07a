"""Declared lookbacks: which earlier partitions a partition's values read, whether they were there
when it was computed, and the dependency that makes Dagster refresh it when one lands later.

A daily asset whose values read earlier days declares one :class:`Lookback` per upstream asset:
its own day and the ``days`` partitions before it, or (``days=None``) every partition from the
origin (``partitions.start_date``, the first partition; nothing before it can exist) to its own
day. A research output judged on later bars (forward returns) also reads the ``ahead`` days
after its own: it is complete only once they exist, and refreshed when they land. :meth:`Lookback.dep` is the ``dg.AssetDep`` with the matching ``TimeWindowPartitionMapping``,
so the graph knows the dependency and the automation (``defs/platform/automation.py``)
re-materializes a partition when a partition in its lookback is updated.

An upstream day is *present* when its partition was written (its ``partition_hashes`` row, which
every daily writer records in the data's own transaction, or rows of that day in the upstream
table, for data loaded outside the graph) and, for a lookback with ``complete=True``, was itself
complete. A partition whose lookback is not all present is *incomplete*: its history-dependent
values are NULL, never computed from a shorter history. :func:`record_status` stores each day's
verdict in ``lookback_status`` in the same transaction as the rows; :func:`status_figures` gives
the per-day metadata, and the WARN checks ``<asset>_lookback_complete``
(``dbt_like_sql/tests/*_lookback_complete.sql``) fail on an incomplete day.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import dagster as dg
import duckdb

from quant_assets.partitions import lookback_mapping
from quant_assets.quant.calendar import Window, day_start
from quant_assets.resources.tables import ident, table_exists


@dataclass(frozen=True)
class Lookback:
    """The partitions of ``upstream`` that a partition reads: its own day and the ``days`` before
    it (``None``: every day since the origin). ``complete``: an upstream day counts only if its own
    lookback was complete (for upstream values that are themselves history-dependent)."""

    upstream: str
    days: int | None
    complete: bool = False
    ahead: int = 0

    def dep(self) -> dg.AssetDep:
        return dg.AssetDep(self.upstream, partition_mapping=lookback_mapping(self.days, self.ahead))

    def describe(self) -> str:
        if self.days is None:
            span = "every day from the origin (partitions.start_date) to the partition's own"
        else:
            span = f"the partition's day and the {self.days} day{'s' if self.days != 1 else ''} before"
        if self.ahead:
            span += f", and the {self.ahead} day{'s' if self.ahead != 1 else ''} after (forward returns)"
        return f"{self.upstream}: {span}" + (", each complete itself" if self.complete else "")

    def first_day(self, day: date, origin: date) -> date:
        """The earliest upstream day that ``day`` reads (never before the origin)."""
        return origin if self.days is None else max(origin, day - timedelta(days=self.days))

    def last_day(self, day: date) -> date:
        """The latest upstream day that ``day`` reads."""
        return day + timedelta(days=self.ahead)


@dataclass(frozen=True)
class DayStatus:
    """One partition's lookback: the upstream days it reads that were not there."""

    day: str
    missing: tuple[tuple[str, tuple[date, ...]], ...] = ()

    @property
    def complete(self) -> bool:
        return not any(days for _, days in self.missing)

    def lacks(self, upstream: str) -> bool:
        """Whether a day of ``upstream`` that this partition reads was not there."""
        return any(days for name, days in self.missing if name == upstream)

    @property
    def missing_count(self) -> int:
        return sum(len(days) for _, days in self.missing)

    def describe(self) -> str:
        """``raw_candles 2024-05-05; bars_1h 2024-05-01..2024-05-04 (4 days)``, or ``''``."""
        return "; ".join(f"{upstream} {compact(days)}" for upstream, days in self.missing if days)


def compact(days: Sequence[date]) -> str:
    """Sorted days as runs: ``2024-05-01..2024-05-04 (4 days), 2024-05-07``."""
    runs: list[list[date]] = []
    for d in sorted(days):
        if runs and d == runs[-1][1] + timedelta(days=1):
            runs[-1][1] = d
        else:
            runs.append([d, d])
    return ", ".join(
        a.isoformat() if a == b else f"{a.isoformat()}..{b.isoformat()} ({(b - a).days + 1} days)" for a, b in runs
    )


def present_days(conn: duckdb.DuckDBPyConnection, lookback: Lookback, first: date, last: date) -> set[date]:
    """Days in ``[first, last]`` whose ``lookback.upstream`` partition is there (see the module)."""
    if first > last:
        return set()
    lo, hi = first.isoformat(), last.isoformat()
    rows = conn.execute(
        "SELECT DISTINCT partition_key FROM partition_hashes WHERE asset = ? AND partition_key BETWEEN ? AND ?",
        [lookback.upstream, lo, hi],
    ).fetchall()
    found = {date.fromisoformat(r[0]) for r in rows}
    if table_exists(conn, lookback.upstream):  # rows loaded outside the graph count as there
        rows = conn.execute(
            f"SELECT DISTINCT CAST(ts AS DATE) FROM {ident(lookback.upstream)} WHERE ts >= ? AND ts < ?",
            [day_start(first), day_start(last + timedelta(days=1))],
        ).fetchall()
        found |= {r[0] for r in rows}
    if lookback.complete:
        rows = conn.execute(
            "SELECT partition_key FROM lookback_status WHERE asset = ? AND NOT complete AND partition_key BETWEEN ? AND ?",
            [lookback.upstream, lo, hi],
        ).fetchall()
        found -= {date.fromisoformat(r[0]) for r in rows}
    return found


def lookback_status(
    conn: duckdb.DuckDBPyConnection, lookbacks: Iterable[Lookback], window: Window, origin: date
) -> dict[str, DayStatus]:
    """``{partition key: DayStatus}`` for each day of ``window``: which upstream days it reads are absent."""
    days = [d.start.date() for d in window.days()]
    missing: dict[date, list[tuple[str, tuple[date, ...]]]] = {d: [] for d in days}
    for lookback in lookbacks:
        if not days:
            break
        first = min(lookback.first_day(d, origin) for d in days)
        last = lookback.last_day(days[-1])
        present = present_days(conn, lookback, first, last)
        span = (last - first).days + 1
        absent = [first + timedelta(days=i) for i in range(span) if first + timedelta(days=i) not in present]
        for d in days:
            lo, hi = bisect_left(absent, lookback.first_day(d, origin)), bisect_right(absent, lookback.last_day(d))
            missing[d].append((lookback.upstream, tuple(absent[lo:hi])))
    return {d.isoformat(): DayStatus(d.isoformat(), tuple(m)) for d, m in missing.items()}


def record_status(
    conn: duckdb.DuckDBPyConnection, asset: str, lookbacks: Sequence[Lookback], statuses: Mapping[str, DayStatus]
) -> None:
    """Replace ``asset``'s rows of ``lookback_status`` for these days (inside the caller's transaction)."""
    if not statuses:
        return
    declared = "; ".join(lb.describe() for lb in lookbacks)
    conn.execute("DELETE FROM lookback_status WHERE asset = ? AND list_contains(?, partition_key)",
                 [asset, list(statuses)])
    conn.executemany(
        "INSERT INTO lookback_status VALUES (?, ?, ?, ?, ?, ?)",
        [[asset, s.day, s.complete, s.missing_count, s.describe(), declared] for s in statuses.values()],
    )


def status_figures(statuses: Mapping[str, DayStatus]) -> dict[str, dict[str, Any]]:
    """Per-day metadata: ``lookback_complete``, ``lookback_missing_days`` and what is missing."""
    return {
        key: {
            "lookback_complete": s.complete,
            "lookback_missing_days": s.missing_count,
            "lookback_missing": s.describe() or None,
        }
        for key, s in statuses.items()
    }


def complete_days(statuses: Mapping[str, DayStatus]) -> set[str]:
    return {key for key, s in statuses.items() if s.complete}
