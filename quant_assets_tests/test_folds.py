"""The walk-forward fold calendar: which fold tests a day, and on which days it trains."""

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quant_assets.quant.folds import FoldCalendar

ORIGIN = date(2024, 1, 1)


def test_daily_folds_train_on_the_days_before_never_before_the_origin():
    calendar = FoldCalendar(ORIGIN, train_days=14, min_train_days=7, test_days=1, step_days=1)
    assert calendar.fold_of(date(2024, 1, 7)) is None  # six days of history: no fold yet
    first = calendar.fold_of(date(2024, 1, 8))
    assert (first.train_start, first.test_start, first.test_end) == (
        datetime(2024, 1, 1), datetime(2024, 1, 8), datetime(2024, 1, 9))
    later = calendar.fold_of(date(2024, 3, 1))
    assert later.train_start == datetime(2024, 2, 16) and later.key == "2024-03-01"
    assert calendar.lookback_days() == 14


def test_longer_test_windows_and_gaps_between_folds():
    calendar = FoldCalendar(ORIGIN, train_days=10, min_train_days=10, test_days=3, step_days=5)
    days = [ORIGIN + timedelta(days=i) for i in range(10, 22)]
    keys = [f.key if (f := calendar.fold_of(d)) else None for d in days]
    assert keys == ["2024-01-11"] * 3 + [None, None] + ["2024-01-16"] * 3 + [None, None] + ["2024-01-21"] * 2
    fold = calendar.fold_of(date(2024, 1, 18))
    assert fold.train_start == datetime(2024, 1, 6) and fold.test_end == datetime(2024, 1, 19)
    assert calendar.lookback_days() == 12


def test_expanding_training_starts_at_the_origin():
    calendar = FoldCalendar(ORIGIN, 14, 7, 1, 1, training="expanding")
    assert calendar.fold_of(date(2024, 6, 1)).train_start == datetime(2024, 1, 1)
    assert calendar.lookback_days() is None


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"step_days": 1, "test_days": 2}, "tested twice"),
    ({"min_train_days": 20}, "min_train_days 20 > train_days 14"),
    ({"training": "sliding"}, "training must be one of"),
    ({"test_days": 0}, "test_days must be >= 1"),
])
def test_bad_calendars_are_refused(kwargs, message):
    base = {"train_days": 14, "min_train_days": 7, "test_days": 1, "step_days": 1}
    with pytest.raises(ValueError, match=message):
        FoldCalendar(ORIGIN, **{**base, **kwargs})


@given(train=st.integers(1, 30), extra=st.integers(0, 29), test=st.integers(1, 7), gap=st.integers(0, 7),
       offset=st.integers(0, 400), training=st.sampled_from(["rolling", "expanding"]))
def test_training_never_overlaps_testing_and_each_day_is_tested_once(train, extra, test, gap, offset, training):
    minimum = max(1, train - extra)
    calendar = FoldCalendar(ORIGIN, train, minimum, test, test + gap, training)
    day = ORIGIN + timedelta(days=offset)
    fold = calendar.fold_of(day)
    if fold is None:
        return
    start = datetime.combine(day, datetime.min.time())
    assert fold.train_start < fold.train_end == fold.test_start <= start < fold.test_end
    assert fold.train_start >= datetime.combine(ORIGIN, datetime.min.time())
    assert (fold.test_start - fold.train_start).days >= minimum
    assert (fold.test_end - fold.test_start).days == test
    for other in range(offset - 40, offset + 40):  # another day of the same fold gives the same fold
        d = ORIGIN + timedelta(days=other)
        if other >= 0 and fold.test_start <= datetime.combine(d, datetime.min.time()) < fold.test_end:
            assert calendar.fold_of(d) == fold
