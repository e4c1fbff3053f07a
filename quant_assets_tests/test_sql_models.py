"""The dbt-like loader on its own: headers, refs, cycles, parameters, syntax, test semantics."""

from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from quant_assets.lib.sql_models import SqlModelError, evaluate_test, load_sql, run_model

KNOWN = {"raw_candles"}


def _write(folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


GOOD = """-- asset: hourly_{interval}
-- group: bars
-- description: test model
-- for_each: bar_intervals
SELECT symbol, time_bucket($interval, ts) AS ts, count(*) AS n
FROM {{ ref('raw_candles') }}
WHERE ts >= $window_start AND ts < $window_end
GROUP BY ALL
"""


def test_models_and_tests_load_as_assets_and_checks(tmp_path, settings):
    _write(tmp_path, "hourly.sql", GOOD)
    _write(tmp_path, "tests/no_empty.sql", "-- check: hourly_{interval}_nonempty\n-- asset: hourly_{interval}\n"
           "-- for_each: bar_intervals\n-- severity: WARN\n-- description: d\n"
           "SELECT * FROM {{ ref('hourly_{interval}') }} WHERE n = 0 AND ts >= $window_start AND ts < $window_end\n")
    loaded = load_sql(settings, KNOWN, tmp_path)
    names = {k.to_user_string() for a in loaded.assets for k in a.keys}
    assert names == {f"hourly_{i}" for i in settings.bar_intervals}
    deps = {dep.asset_key.to_user_string() for a in loaded.assets for dep in a.specs_by_key[a.key].deps}
    assert deps == {"raw_candles"}
    assert len(loaded.checks) == len(settings.bar_intervals)


BACK = """-- asset: back_{interval}
-- group: bars
-- description: reads earlier partitions
-- for_each: bar_intervals
-- lookback: raw_candles
SELECT symbol, ts, close FROM {{ ref('raw_candles') }}
WHERE ts >= $lookback_start AND ts < $window_end AND ts >= $window_start
"""


def test_a_lookback_header_declares_the_earlier_days_as_a_partition_mapping(tmp_path, make_settings):
    s = make_settings(env={"QUANT_BAR_INTERVALS": "1h,4h,1d"}, bars={"roll_vol_window": 20})
    _write(tmp_path, "back.sql", BACK)
    loaded = load_sql(s, KNOWN, tmp_path)
    offsets = {}
    for a in loaded.assets:
        (dep,) = a.specs_by_key[a.key].deps
        mapping = dep.partition_mapping
        assert isinstance(mapping, dg.TimeWindowPartitionMapping) and mapping.end_offset == 0
        offsets[a.key.to_user_string()] = -mapping.start_offset
        assert "Lookback: raw_candles: the partition's day and" in a.specs_by_key[a.key].description
    # roll_vol_window = 20 bars: 20 hours, 80 hours, 20 days back
    assert offsets == {"back_1h": 1, "back_4h": 4, "back_1d": 20}


LOOKBACK_ERRORS = [
    (BACK.replace("-- lookback: raw_candles\n", ""), r"a\.sql:5: the model reads \$lookback_start .* declares no '-- lookback"),
    (BACK.replace("lookback: raw_candles", "lookback: bars_1h"), r"a\.sql:5: lookback 'bars_1h' is not a ref of this model"),
    (BACK.replace("$lookback_start", "$window_start"), r"a\.sql:5: lookback declared but the model never reads \$lookback_start"),
    (BACK.replace("-- for_each: bar_intervals\n", "").replace("_{interval}", "").replace("$lookback_start", "$window_start"),
     r"a\.sql:4: a lookback spans roll_vol_window bars of the interval"),
]


@pytest.mark.parametrize(("text", "message"), LOOKBACK_ERRORS, ids=["undeclared", "not_a_ref", "unused", "no_interval"])
def test_lookback_header_errors_name_file_and_line(tmp_path, settings, text, message):
    _write(tmp_path, "a.sql", text)
    with pytest.raises(SqlModelError, match=message):
        load_sql(settings, KNOWN, tmp_path)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.sql": "SELECT 1 AS ts\n"}, r"a\.sql:1: missing header key 'asset'"),
        ({"a.sql": "-- asset: a\n-- group: g\n-- description: d\n-- colour: red\nSELECT 1\n"}, r"a\.sql:4: unknown header key 'colour'"),
        ({"a.sql": "-- asset: a\n-- group: g\n-- description: d\nSELECT *\nFROM {{ ref('nope') }}\n"}, r"a\.sql:5: ref\('nope'\) names no asset"),
        ({"a.sql": "-- asset: a\n-- group: g\n-- description: d\nSELECT * FROM {{ ref('b') }}\n",
          "b.sql": "-- asset: b\n-- group: g\n-- description: d\nSELECT * FROM {{ ref('a') }}\n"}, r"ref cycle a -> b -> a"),
        ({"a.sql": "-- asset: a\n-- group: g\n-- description: d\nSELEC * FROM x WHERE\n"}, r"a\.sql:4: SQL syntax error"),
        ({"a.sql": "-- asset: a\n-- group: g\n-- description: d\nSELECT 1\nWHERE x = $symbol\n"}, r"a\.sql:5: unknown parameter \$symbol"),
        ({"a.sql": "-- asset: a\n-- group: g\n-- description: d\nSELECT 1; SELECT 2\n"}, r"exactly one SELECT"),
        ({"a.sql": "-- asset: a\n-- group: g\n-- description: d\nSELECT 1 AS ts\n"}, r"a\.sql:4: a daily model must filter on \$window_start and \$window_end"),
        ({"a.sql": "-- asset: a\n-- group: g\n-- description: d\n-- partitioned: none\nSELECT $window_start AS ts\n"}, r"a\.sql:5: an unpartitioned file cannot use \$window_start"),
        ({"a.sql": "-- asset: a\n-- group: g\n-- description: d\n-- partitioned: hourly\nSELECT 1\n"}, r"a\.sql:4: partitioned must be daily or none"),
        ({"a.sql": "-- asset: a\n-- group: g\n-- description: d\n-- requires: moon\nSELECT 1\n"}, r"a\.sql:4: requires 'moon' is unknown"),
        ({"tests/t.sql": "-- check: c\n-- asset: raw_candles\n-- severity: FATAL\n-- description: d\nSELECT 1\n"}, r"t\.sql:3: severity must be ERROR or WARN"),
        ({"tests/t.sql": "-- check: c\n-- asset: ghost\n-- severity: WARN\n-- description: d\nSELECT 1\n"}, r"t\.sql:2: asset 'ghost' does not exist"),
    ],
)
def test_load_errors_name_file_and_line(tmp_path, settings, files, message):
    for name, text in files.items():
        _write(tmp_path, name, text)
    with pytest.raises(SqlModelError, match=message):
        load_sql(settings, KNOWN, tmp_path)


@pytest.fixture
def conn():
    with duckdb.connect() as c:
        c.execute("CREATE TABLE src (symbol VARCHAR, ts TIMESTAMP, v DOUBLE)")
        c.execute("INSERT INTO src VALUES ('A', '2024-01-01 00:00', 1), ('A', '2024-01-01 01:00', -2), ('A', '2024-01-02 00:00', 3)")
        yield c


WINDOW = {"window_start": datetime(2024, 1, 1), "window_end": datetime(2024, 1, 2)}
BOUNDS = (WINDOW["window_start"], WINDOW["window_end"])


def test_run_model_replaces_exactly_the_window(conn):
    sql = "SELECT symbol, ts, v * 10 AS v10 FROM src WHERE ts >= $window_start AND ts < $window_end"
    assert run_model(conn, "out", sql, WINDOW, BOUNDS, "ts") == 2
    assert run_model(conn, "out", sql, WINDOW, BOUNDS, "ts") == 2
    assert conn.execute("SELECT count(*), sum(v10) FROM out").fetchone() == (2, -10.0)


def test_run_model_rejects_rows_outside_the_window_and_writes_nothing(conn):
    sql = "SELECT symbol, ts, v FROM src WHERE ts >= $window_start"
    with pytest.raises(SqlModelError, match="outside the partition window"):
        run_model(conn, "out", sql, {"window_start": BOUNDS[0]}, BOUNDS, "ts")
    assert conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'out'").fetchone()[0] == 0


def test_a_test_passes_on_no_rows_and_reports_failing_rows(conn):
    window = (WINDOW["window_start"], WINDOW["window_end"])
    failing = evaluate_test(
        conn, "SELECT * FROM src WHERE v < 0 AND ts >= $window_start AND ts < $window_end", WINDOW, window,
    )
    assert not failing.passed and failing.metadata["failing_rows"] == 1
    assert "-2" in failing.metadata["sample"].value
    passing = evaluate_test(
        conn, "SELECT * FROM src WHERE v > 100 AND ts >= $window_start AND ts < $window_end", WINDOW, window,
    )
    assert passing.passed and passing.metadata["failing_rows"] == 0
