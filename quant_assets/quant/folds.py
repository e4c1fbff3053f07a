"""Walk-forward fold calendar: which training window and out-of-sample window a day belongs to.

Folds start every ``step_days`` days counted from the origin (``partitions.start_date``) plus
``min_train_days``; fold ``k`` tests ``[origin + min_train_days + k * step_days, + test_days)`` and
trains on the ``train_days`` days before its test start, never before the origin (``rolling``; the
first folds train on fewer days, at least ``min_train_days``), or on every day from the origin to
its test start (``expanding``). Its training window ends where its test window starts, so the two
never overlap; with ``step_days >= test_days`` no day is tested twice and the out-of-sample
windows concatenate into one path. A day before the first test start or in a gap between test
windows (``step_days > test_days``) belongs to no fold.

All times are naive UTC datetimes at midnight; windows are half-open ``[start, end)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

TRAINING_MODES = ("rolling", "expanding")


@dataclass(frozen=True)
class FoldCalendar:
    """How folds are cut: days of training and testing, days between fold starts, the origin."""

    origin: date
    train_days: int
    min_train_days: int
    test_days: int
    step_days: int
    training: str = "rolling"

    def __post_init__(self) -> None:
        for name in ("train_days", "min_train_days", "test_days", "step_days"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.min_train_days > self.train_days:
            raise ValueError(f"min_train_days {self.min_train_days} > train_days {self.train_days}")
        if self.step_days < self.test_days:
            raise ValueError(f"step_days {self.step_days} < test_days {self.test_days}: a day would be tested twice")
        if self.training not in TRAINING_MODES:
            raise ValueError(f"training must be one of {TRAINING_MODES}, got {self.training!r}")

    def fold_of(self, day: date) -> Fold | None:
        """The fold whose out-of-sample window holds ``day``, or ``None``."""
        offset = (day - self.origin).days - self.min_train_days
        if offset < 0 or offset % self.step_days >= self.test_days:
            return None
        test_start = self.origin + timedelta(days=self.min_train_days + offset - offset % self.step_days)
        train_start = self.origin
        if self.training == "rolling":
            train_start = max(self.origin, test_start - timedelta(days=self.train_days))
        return Fold(
            _midnight(train_start), _midnight(test_start), _midnight(test_start + timedelta(days=self.test_days))
        )

    def lookback_days(self) -> int | None:
        """Days before a tested day that its fold reads (``None``: since the origin)."""
        if self.training == "expanding":
            return None
        return self.train_days + self.test_days - 1


@dataclass(frozen=True)
class Fold:
    """One fold: training ``[train_start, test_start)``, out of sample ``[test_start, test_end)``."""

    train_start: datetime
    test_start: datetime
    test_end: datetime

    @property
    def key(self) -> str:
        """The fold's name: the first day of its out-of-sample window, ``YYYY-MM-DD``."""
        return self.test_start.date().isoformat()

    @property
    def train_end(self) -> datetime:
        return self.test_start


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)
