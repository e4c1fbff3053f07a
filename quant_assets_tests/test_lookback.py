"""Declared lookbacks on their own: which upstream days a partition reads and which were there."""

from datetime import date, datetime

import duckdb
import pytest

from quant_assets.lib.lookback import (
    Lookback,
    compact,
    lookback_status,
    record_status,
    status_figures,
)
from quant_assets.partitions import SINCE_ORIGIN_DAYS
from quant_assets.quant.calendar import Window
from quant_assets.resources.migrations import apply_migrations

ORIGIN = date(2024, 3, 1)


@pytest.fixture
def conn():
    with duckdb.connect() as c:
        apply_migrations(c)
        # raw_candles written by the graph for 03-01 and 03-03 (03-03 with no rows: a day with
        # no candles was still built), loaded by hand for 03-05; nothing for 03-02 and 03-04.
        c.execute("INSERT INTO partition_hashes VALUES ('raw_candles', 'raw_candles', '2024-03-01', 1, 'h', 'p'), "
                  "('raw_candles', 'raw_candles', '2024-03-03', 0, 'h', 'p')")
        c.execute("INSERT INTO raw_candles VALUES ('BTC/USDT', '2024-03-05 00:00', '1m', 1, 1, 1, 1, 1, NULL, "
                  "'simulator', '2024-03-05 00:00', 'OK', NULL)")
        yield c


def test_a_day_is_there_when_written_or_loaded_and_never_before_the_origin(conn):
    window = Window(datetime(2024, 3, 1), datetime(2024, 3, 7))
    status = lookback_status(conn, [Lookback("raw_candles", 1)], window, ORIGIN)
    missing = {key: s.missing[0][1] for key, s in status.items()}
    assert missing == {
        "2024-03-01": (),                                   # 02-29 is before the origin: not required
        "2024-03-02": (date(2024, 3, 2),),
        "2024-03-03": (date(2024, 3, 2),),
        "2024-03-04": (date(2024, 3, 4),),
        "2024-03-05": (date(2024, 3, 4),),
        "2024-03-06": (date(2024, 3, 6),),
    }
    since = lookback_status(conn, [Lookback("raw_candles", None)], window, ORIGIN)
    assert since["2024-03-06"].describe() == "raw_candles 2024-03-02, 2024-03-04, 2024-03-06"
    assert since["2024-03-01"].complete and not since["2024-03-03"].complete


def test_a_complete_lookback_also_needs_the_upstream_days_complete(conn):
    window = Window(datetime(2024, 3, 3), datetime(2024, 3, 4))
    record_status(conn, "raw_candles", [], {"2024-03-03": lookback_status(
        conn, [Lookback("raw_candles", 1)], window, ORIGIN)["2024-03-03"]})
    plain = lookback_status(conn, [Lookback("raw_candles", 0)], window, ORIGIN)["2024-03-03"]
    strict = lookback_status(conn, [Lookback("raw_candles", 0, complete=True)], window, ORIGIN)["2024-03-03"]
    assert plain.complete and not strict.complete and strict.lacks("raw_candles")
    assert status_figures({"2024-03-03": strict})["2024-03-03"] == {
        "lookback_complete": False, "lookback_missing_days": 1, "lookback_missing": "raw_candles 2024-03-03"}


def test_record_status_replaces_the_days_it_is_given(conn):
    window = Window(datetime(2024, 3, 2), datetime(2024, 3, 4))
    lookbacks = [Lookback("raw_candles", 1)]
    for _ in range(2):
        record_status(conn, "bars_1h", lookbacks, lookback_status(conn, lookbacks, window, ORIGIN))
    rows = conn.execute("SELECT partition_key, complete, missing_count, missing, lookback FROM lookback_status "
                        "ORDER BY 1").fetchall()
    assert rows == [
        ("2024-03-02", False, 1, "raw_candles 2024-03-02", "raw_candles: the partition's day and the 1 day before"),
        ("2024-03-03", False, 1, "raw_candles 2024-03-02", "raw_candles: the partition's day and the 1 day before"),
    ]


def test_compact_names_runs_of_days_and_the_mapping_reaches_the_origin():
    days = [date(2024, 3, d) for d in (1, 2, 3, 5, 7, 8)]
    assert compact(days) == "2024-03-01..2024-03-03 (3 days), 2024-03-05, 2024-03-07..2024-03-08 (2 days)"
    assert -Lookback("bars_1h", None).dep().partition_mapping.start_offset == SINCE_ORIGIN_DAYS
    assert Lookback("bars_1h", None).first_day(date(2030, 1, 1), ORIGIN) == ORIGIN


def test_a_lookahead_day_is_complete_only_once_the_days_after_it_are_there(conn):
    window = Window(datetime(2024, 3, 1), datetime(2024, 3, 6))
    status = lookback_status(conn, [Lookback("raw_candles", 0, ahead=1)], window, ORIGIN)
    missing = {key: s.missing[0][1] for key, s in status.items()}
    assert missing == {
        "2024-03-01": (date(2024, 3, 2),),
        "2024-03-02": (date(2024, 3, 2),),
        "2024-03-03": (date(2024, 3, 4),),
        "2024-03-04": (date(2024, 3, 4),),
        "2024-03-05": (date(2024, 3, 6),),                  # its next day has not landed yet
    }
    dep = Lookback("raw_candles", 0, ahead=1).dep()
    assert (dep.partition_mapping.start_offset, dep.partition_mapping.end_offset) == (0, 1)
