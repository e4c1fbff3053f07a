"""The quality gate: each rule rejects what it should, and valid rows pass untouched."""

from datetime import datetime

import polars as pl

from quant_assets.providers.base import CANDLE_SCHEMA
from quant_assets.quant.candle_quality import gate_candles

START, END = datetime(2024, 1, 1), datetime(2024, 1, 2)


def _frame(rows):
    return pl.DataFrame(
        [("BTC/USDT", ts, o, h, lo, c, v, None) for ts, o, h, lo, c, v in rows], schema=CANDLE_SCHEMA, orient="row"
    )


def test_each_rule_rejects_its_row_and_keeps_the_good_ones():
    rows = [
        (datetime(2024, 1, 1, 0, 0), 10.0, 11.0, 9.0, 10.5, 1.0),     # good
        (datetime(2024, 1, 1, 0, 1), 10.0, 11.0, 9.0, float("nan"), 1.0),
        (datetime(2024, 1, 1, 0, 2), -1.0, 11.0, 9.0, 10.0, 1.0),
        (datetime(2024, 1, 1, 0, 3), 10.0, 10.2, 9.0, 10.5, 1.0),     # high below close
        (datetime(2024, 1, 1, 0, 4), 10.0, 11.0, 10.1, 10.5, 1.0),    # low above open
        (datetime(2024, 1, 1, 0, 5), 10.0, 11.0, 9.0, 10.5, -3.0),
        (datetime(2024, 1, 1, 0, 6, 30), 10.0, 11.0, 9.0, 10.5, 1.0),  # off the 1m grid
        (datetime(2024, 1, 2, 0, 0), 10.0, 11.0, 9.0, 10.5, 1.0),     # outside the window
        (datetime(2024, 1, 1, 0, 7), 10.0, 11.0, 9.0, 10.5, 1.0),     # exact duplicate pair
        (datetime(2024, 1, 1, 0, 7), 10.0, 11.0, 9.0, 10.5, 1.0),
        (datetime(2024, 1, 1, 0, 8), 10.0, 11.0, 9.0, 10.5, 1.0),     # conflicting duplicate pair
        (datetime(2024, 1, 1, 0, 8), 10.0, 11.0, 9.0, 10.6, 1.0),
    ]
    result = gate_candles(_frame(rows), 1, START, END)
    assert result.valid["ts"].to_list() == [datetime(2024, 1, 1, 0, 0), datetime(2024, 1, 1, 0, 7)]
    assert result.duplicates_dropped == 1
    assert result.reject_counts() == {
        "non_finite_or_non_positive_price": 2,
        "high_below_open_or_close": 1,
        "low_above_open_or_close": 1,
        "negative_or_non_finite_volume": 1,
        "off_interval_grid": 1,
        "outside_window": 1,
        "conflicting_duplicate": 2,
    }


def test_valid_rows_come_out_sorted():
    rows = [(datetime(2024, 1, 1, 0, m), 10.0, 11.0, 9.0, 10.5, 1.0) for m in (5, 1, 3)]
    assert gate_candles(_frame(rows), 1, START, END).valid["ts"].dt.minute().to_list() == [1, 3, 5]
