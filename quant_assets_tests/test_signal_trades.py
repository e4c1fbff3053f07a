"""FIFO round trips: fractional stacking by hand, next-bar-open execution, the input hash, and
conservation laws on random position paths."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quant_assets.quant.trades import EPS, TRADE_SCHEMA, feature_hash, fifo_round_trips, round_trips

T0 = datetime(2024, 1, 1)


def test_fractional_positions_stack_and_unwind_first_in_first_out() -> None:
    held = [0.5, 1.0, 1.0, 0.3, 0.3, -0.4, 0.0, 0.2, 0.2]
    trips = fifo_round_trips(held)
    # bar 0 opens 0.5, bar 1 adds 0.5; bar 3 cuts to 0.3: the bar-0 lot closes whole, 0.2 of the
    # bar-1 lot closes; bar 5 flips: the remaining 0.3 of the bar-1 lot closes and 0.4 short
    # opens; bar 6 closes the short; bar 7's 0.2 long is still open.
    assert [(s, round(q, 12), e, x) for s, q, e, x in trips] == [
        (1, 0.5, 0, 3), (1, 0.2, 1, 3), (1, 0.3, 1, 5), (-1, 0.4, 5, 6)]
    assert fifo_round_trips([0.0, 0.0]) == [] and fifo_round_trips([]) == []
    assert fifo_round_trips([-0.25, -0.75, -0.5, -1.0, 0.0]) == [
        (-1, 0.25, 0, 2), (-1, 0.5, 1, 4), (-1, 0.5, 3, 4)]


def test_a_position_outside_minus_one_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        fifo_round_trips([0.5, 1.5])
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        fifo_round_trips([np.nan])


def _frame(target: list[float | None], opens: list[float]) -> pl.DataFrame:
    n = len(target)
    return pl.DataFrame({
        "symbol": ["A"] * n, "ts": [T0 + timedelta(hours=i) for i in range(n)], "open": opens,
        "value": target, "ema_2": [float(i) + 0.5 for i in range(n)], "ema_3": [None] + [float(i) for i in range(1, n)],
    }, schema_overrides={"value": pl.Float64, "ema_3": pl.Float64})


def test_round_trips_execute_at_the_next_bars_open_and_hash_the_decision_bar() -> None:
    # targets decided at each close; bar 1's +1 is bought at bar 2's open (11), bar 3's -0.5 sells
    # the whole long at bar 4's open (13) and shorts 0.5 there, bar 5's null (flat) covers at bar 6 (9).
    frame = _frame([None, 1.0, 1.0, -0.5, -0.5, None, 0.0], [10.0, 12.0, 11.0, 14.0, 13.0, 12.0, 9.0])
    trips = round_trips(frame, "sig", "ema_crossover", ["ema_2", "ema_3"])
    assert trips.schema == pl.Schema(TRADE_SCHEMA)
    rows = trips.select("side", "quantity", "entry_ts", "entry_price", "exit_ts", "exit_price", "bars_held",
                        "return").rows()
    hour = timedelta(hours=1)
    assert rows == [
        ("long", 1.0, T0 + 2 * hour, 11.0, T0 + 4 * hour, 13.0, 2, 13.0 / 11.0 - 1),
        ("short", 0.5, T0 + 4 * hour, 13.0, T0 + 6 * hour, 9.0, 2, -(9.0 / 13.0 - 1)),
    ]
    text = "ema_2=1.5\nema_3=1.0"  # the decision bar of the long is bar 1
    assert trips["entry_feature_hash"][0] == hashlib.sha256(text.encode()).hexdigest()[:16]
    assert feature_hash({"ema_3": 3.0, "ema_2": 3.5}) == trips["entry_feature_hash"][1]
    assert feature_hash({"x": None}) == hashlib.sha256(b"x=null").hexdigest()[:16]
    assert round_trips(frame, "sig", "ema_crossover", ["ema_2"], exit_since=T0 + 5 * hour).height == 1


def test_a_target_on_the_last_bar_is_not_executed_yet() -> None:
    frame = _frame([None, 1.0, 0.0], [10.0, 11.0, 12.0])  # the exit would fill at bar 3's open
    assert round_trips(frame, "sig", "ema_crossover", ["ema_2"]).height == 0


positions = st.lists(st.one_of(st.sampled_from([-1.0, -0.5, 0.0, 0.25, 1.0]), st.floats(-1, 1)), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(path=positions, seed=st.integers(0, 2**16))
def test_fifo_conserves_quantity_and_profit(path, seed) -> None:
    """Closing everything at the end: the round trips' quantities per bar equal the position
    changes, and their summed profit equals the mark-to-market profit of holding the path."""
    held = np.array([*path, 0.0])
    opens = 100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.05, held.size)))
    trips = fifo_round_trips(held)
    assert all(0 < q <= 1 and x > e for _, q, e, x in trips)
    pnl = sum(side * q * (opens[x] - opens[e]) for side, q, e, x in trips)
    marked = float(np.sum(held[:-1] * np.diff(opens)))
    assert pnl == pytest.approx(marked, abs=1e-9)
    opened_or_closed = np.zeros(held.size)
    for side, q, e, x in trips:
        opened_or_closed[e] += side * q
        opened_or_closed[x] -= side * q
    change = np.diff(np.concatenate([[0.0], held]))
    np.testing.assert_allclose(opened_or_closed[np.abs(change) > EPS], change[np.abs(change) > EPS], atol=1e-9)
