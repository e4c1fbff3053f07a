"""The reproducibility core: a changed input partition is named, outputs are compared value by value."""

from datetime import datetime

import polars as pl
import pytest

from quant_assets.quant.reproducibility import (
    MATCH,
    MISMATCH,
    compare_values,
    first_changed_input,
    verify,
)

RECORDED = {"features_1h": {"2024-03-01": "a" * 64, "2024-03-02": "b" * 64}, "bars_1h": {"2024-03-02": "c" * 64}}


def test_the_first_changed_input_partition_is_named_in_table_then_day_order():
    assert first_changed_input(RECORDED, RECORDED) is None
    edited = {**RECORDED, "features_1h": {"2024-03-01": "a" * 64, "2024-03-02": "d" * 64}}
    assert first_changed_input(RECORDED, edited) == "features_1h 2024-03-02 (sha256 bbbbbbbbbbbb -> dddddddddddd)"
    gone = {"features_1h": RECORDED["features_1h"]}
    assert first_changed_input(RECORDED, gone) == "bars_1h 2024-03-02 (sha256 cccccccccccc -> missing)"


def _frame(values, strategy="a"):
    ts = [datetime(2024, 3, 2, h) for h in range(len(values))]
    return pl.DataFrame({"ts": ts, "cost_mode": "realistic", "strategy": strategy, "net_return": values})


def test_outputs_within_the_tolerance_match_and_the_first_difference_is_named():
    stored = _frame([0.01, -0.02, 0.03])
    same = compare_values(stored, _frame([0.01, -0.02 + 1e-12, 0.03]), ["ts", "cost_mode"], ["net_return"], 1e-10)
    assert same[1] is None and 0 < same[0] < 1e-11
    largest, first = compare_values(stored, _frame([0.01, -0.02, 0.031]), ["ts", "cost_mode"], ["net_return"], 1e-10)
    assert largest == pytest.approx(0.001) and first.startswith("net_return at ts=2024-03-02 02:00:00")
    _, missing = compare_values(stored, _frame([0.01, -0.02]), ["ts", "cost_mode"], ["net_return"], 1e-10)
    assert "recomputed None" in missing
    _, name = compare_values(stored, _frame([0.01, -0.02, 0.03], "b"), ["ts"], ["strategy"], 1e-10)
    assert name.startswith("strategy at ts=2024-03-02 00:00:00: stored a, recomputed b")
    with pytest.raises(ValueError, match="tolerance"):
        compare_values(stored, stored, ["ts"], ["net_return"], -1.0)


def test_the_verdict_names_a_changed_input_before_any_output():
    assert verify(None, 0.0, None).status == MATCH
    v = verify("features_1h 2024-03-02 (sha256 b -> d)", 0.0, "net_return at ...")
    assert v.status == MISMATCH and v.first_mismatch.startswith("input changed: features_1h 2024-03-02")
