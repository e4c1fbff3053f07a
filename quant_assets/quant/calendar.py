"""The UTC calendar every stage shares: naive-UTC timestamps, day windows and their days.

DuckDB ``TIMESTAMP`` values are naive and mean UTC (connections run with ``TimeZone = 'UTC'``),
so every moment that reaches SQL goes through :func:`utc_naive` first. A window is half-open,
``[start, end)``, and a daily partition key is the ISO date of its first moment.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple

ONE_DAY = timedelta(days=1)


def utc_naive(moment: datetime) -> datetime:
    """``moment`` as a naive UTC datetime; a naive input is taken to be UTC already."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def day_start(day: date) -> datetime:
    """Midnight UTC (naive) at the start of ``day``."""
    return datetime.combine(day, time())


class Window(NamedTuple):
    """A half-open UTC window ``[start, end)`` of whole days, as naive datetimes.

    Unpacks as ``start, end = window``.
    """

    start: datetime
    end: datetime

    def days(self) -> Iterator[Window]:
        """Each day of the window as its own one-day window, in order."""
        day = self.start
        while day < self.end:
            yield Window(day, min(day + ONE_DAY, self.end))
            day += ONE_DAY

    @property
    def key(self) -> str:
        """The partition key (``YYYY-MM-DD``) of the window's first day."""
        return self.start.date().isoformat()

    def keys(self) -> list[str]:
        """The partition keys of every day in the window."""
        return [d.key for d in self.days()]

    @property
    def n_days(self) -> int:
        return len(self.keys())

    def label(self) -> str:
        """``2024-01-01`` for one day, ``2024-01-01..2024-01-03 (3 days)`` for a range."""
        keys = self.keys()
        if len(keys) == 1:
            return keys[0]
        return f"{keys[0]}..{keys[-1]} ({len(keys)} days)" if keys else "empty window"

    def shifted(self, days: int) -> Window:
        """The window moved by ``days`` (negative: earlier)."""
        step = timedelta(days=days)
        return Window(self.start + step, self.end + step)
