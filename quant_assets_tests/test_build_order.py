"""Results do not depend on the order days are built in (issue 15).

Six simulated days (3 symbols, 5m base candles, bars and features of 5m, 1h and 1d; the first day
is ``partitions.start_date``) are built in many orders: permutations split into runs, a run of
consecutive days as one range run, with or without the automation ticking between runs. Then
the automation is let settle: ``dg.evaluate_automation_conditions`` is ticked and every
partition it requests is materialized, until it requests nothing more (that is Dagster's own
verdict of what is stale, from the declared lookback dependencies). Every (table, day) must then
hash exactly like the in-order day-by-day build. Before settling, a day built ahead of its
lookback says so: NULL values, ``lookback_status``, per-day metadata and a failing WARN check.
"""

import hashlib
import shutil
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quant_assets.config import Settings, load_settings
from quant_assets.definitions import build_definitions
from quant_assets_tests.conftest import TEST_SYMBOLS, all_defs

FIRST = date(2024, 3, 1)
DAYS = [(FIRST + timedelta(days=i)).isoformat() for i in range(6)]
INTERVALS = ("5m", "1h", "1d")
ASSETS = ["raw_candles", "bar_gaps", *(f"bars_{i}" for i in INTERVALS), *(f"features_{i}" for i in INTERVALS)]
SELECTION = dg.AssetSelection.assets(*ASSETS)
# Half past midnight after the last day: every day is a complete partition, the last the latest.
NOW = datetime.combine(FIRST + timedelta(days=len(DAYS)), datetime.min.time(), UTC) + timedelta(minutes=30)
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
TIME_COLUMNS = {"bar_gaps": "gap_start", "lookback_status": "partition_key", "feature_hashes": "partition_key"}


def _settings(root: Path) -> Settings:
    return load_settings(config_file=None, env={
        "QUANT_DATA_DIR": str(root), "QUANT_SYMBOLS": TEST_SYMBOLS, "QUANT_START_DATE": DAYS[0],
        "QUANT_BASE_INTERVAL": "5m", "QUANT_BAR_INTERVALS": ",".join(INTERVALS),
    })


def _definitions(s: Settings) -> dg.Definitions:
    """The platform's definitions (automation conditions included) cut down to the tested assets
    and their checks: the automation is evaluated, and runs are built, over these alone."""
    full = build_definitions(s)
    keys = set(map(dg.AssetKey, ASSETS))
    assets = [a for a in full.assets if set(a.keys) & keys]
    checks = [c for c in full.asset_checks if {k.asset_key for k in c.check_keys} <= keys]
    return dg.Definitions(assets=assets, asset_checks=checks, resources=full.resources)


def _run(defs: dg.Definitions, instance: dg.DagsterInstance, days: Sequence[str],
         selection: dg.AssetSelection = SELECTION) -> dg.ExecuteInProcessResult:
    """One run over ``days`` (consecutive: a single-run range when there are several)."""
    tags = {"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]}
    result = dg.materialize(
        all_defs(defs), partition_key=days[0] if len(days) == 1 else None, tags=tags if len(days) > 1 else {},
        resources=defs.resources, selection=selection, instance=instance, run_config=QUIET,
    )
    assert result.success
    return result


def _tick(defs, instance, cursor):
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=NOW, cursor=cursor)
    wanted: dict[str, list[dg.AssetKey]] = {}
    for key in map(dg.AssetKey, ASSETS):
        for partition in result.get_requested_partitions(key) if result.get_num_requested(key) else ():
            wanted.setdefault(partition, []).append(key)
    return result.cursor, wanted


def settle(defs: dg.Definitions, instance: dg.DagsterInstance, cursor, max_ticks: int = 12) -> tuple[object, int]:
    """Tick the automation and run what it requests (within the tested assets, one run per day)
    until it requests nothing; return the cursor and the number of partitions re-materialized."""
    refreshed = 0
    for _ in range(max_ticks):
        cursor, wanted = _tick(defs, instance, cursor)
        if not wanted:
            return cursor, refreshed
        for partition, keys in sorted(wanted.items()):
            _run(defs, instance, [partition], dg.AssetSelection.assets(*keys))
            refreshed += len(keys)
    raise AssertionError(f"the automation did not settle within {max_ticks} ticks")


def day_digests(path: Path) -> dict[tuple[str, str], str]:
    """SHA-256 per (table, day) over the day's rows as text, sorted; ``fetched_at`` (when a
    candle was fetched) left out, so two builds of the same days compare by content."""
    out = {}
    with duckdb.connect(str(path), read_only=True) as conn:
        tables = [t for (t,) in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()
                  if t in ASSETS or t in ("lookback_status", "feature_hashes")]
        for table in tables:
            col = TIME_COLUMNS.get(table, "ts")
            day = col if col == "partition_key" else f"strftime(CAST({col} AS DATE), '%Y-%m-%d')"
            rows = f'(SELECT * EXCLUDE (fetched_at) FROM "{table}")' if table == "raw_candles" else f'"{table}"'
            for key, digest in conn.execute(
                f"SELECT {day}, sha256(string_agg(CAST(t AS VARCHAR), chr(10) ORDER BY CAST(t AS VARCHAR))) "
                f"FROM {rows} AS t GROUP BY 1"
            ).fetchall():
                out[(table, key)] = digest
    return out


def build(root: Path, runs: Sequence[Sequence[str]], tick_between: bool = False) -> tuple[dict, int]:
    """Build ``runs`` in order on a fresh file and instance, then let the automation settle."""
    shutil.rmtree(root, ignore_errors=True)
    s = _settings(root)
    defs = _definitions(s)
    with dg.DagsterInstance.ephemeral() as instance:
        cursor, _ = _tick(defs, instance, None)
        for days in runs:
            _run(defs, instance, days)
            if tick_between:
                cursor, _ = settle(defs, instance, cursor)
        _, refreshed = settle(defs, instance, cursor)
    return day_digests(s.duckdb_path), refreshed


@cache
def in_order(root: Path) -> dict[tuple[str, str], str]:
    digests, refreshed = build(root, [[d] for d in DAYS])
    assert refreshed == 0, "an in-order build must leave nothing stale"
    return digests


def runs_of(order: Sequence[str], cuts: Sequence[bool]) -> list[list[str]]:
    """``order`` cut into runs after each position whose cut is true; within a run, consecutive
    days in ascending order become one range run."""
    chunks, current = [], []
    for i, day in enumerate(order):
        current.append(day)
        if i == len(order) - 1 or cuts[i]:
            chunks.append(current)
            current = []
    runs = []
    for chunk in chunks:
        days = [date.fromisoformat(d) for d in chunk]
        if days == [days[0] + timedelta(days=k) for k in range(len(days))]:
            runs.append(chunk)
        else:
            runs.extend([d] for d in chunk)
    return runs


def _diff(a: dict, b: dict) -> list[tuple[str, str]]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[tuple[str, str], str]:
    return in_order(tmp_path_factory.mktemp("in_order"))


def test_later_days_first_are_flagged_then_refreshed_to_the_in_order_result(reference, tmp_path):
    """The hostile test's order: the last three days, then the first three (two range runs)."""
    s = _settings(tmp_path / "late")
    defs = _definitions(s)
    key = dg.AssetCheckKey(dg.AssetKey("features_1h"), "features_1h_lookback_complete")
    with dg.DagsterInstance.ephemeral() as instance:
        cursor, _ = _tick(defs, instance, None)
        late = _run(defs, instance, DAYS[3:])
        first = {e.partition: e for e in late.get_asset_check_evaluations() if e.asset_check_key == key}
        # Built before their lookback: flagged, and NULL rather than computed from a shorter history.
        assert {p: e.passed for p, e in first.items()} == dict.fromkeys(DAYS[3:], False)
        assert first[DAYS[3]].severity == dg.AssetCheckSeverity.WARN
        assert f"bars_1h {DAYS[0]}..{DAYS[2]} (3 days)" in first[DAYS[3]].metadata["sample"].value
        meta = [m for m in late.get_asset_materialization_events()
                if m.asset_key == dg.AssetKey("bars_5m") and m.partition == DAYS[3]]
        with duckdb.connect(str(s.duckdb_path), read_only=True) as conn:
            nulls = conn.execute(
                "SELECT count(*), count(atr_14), count(ema_9) FROM features_1h WHERE ts >= ?", [DAYS[3]]).fetchone()
            first_bar = conn.execute(
                "SELECT log_return, cum_return, roll_vol FROM bars_5m WHERE ts = ? AND symbol = 'BTC/USDT'",
                [DAYS[3]]).fetchone()
            status = conn.execute(
                "SELECT asset, partition_key, complete, missing FROM lookback_status WHERE asset = 'bars_5m'"
            ).fetchall()
        assert nulls[0] == 3 * 24 * len(TEST_SYMBOLS.split(",")) and nulls[1:] == (0, 0)
        assert first_bar == (None, None, None)
        assert ("bars_5m", DAYS[3], False, f"raw_candles {DAYS[2]}") in status
        assert meta and meta[0].materialization.metadata["lookback_complete"].value is False

        _run(defs, instance, DAYS[:3])
        _, refreshed = settle(defs, instance, cursor)
    assert refreshed > 0
    assert _diff(day_digests(s.duckdb_path), reference) == []


@pytest.mark.slow
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    order=st.permutations(DAYS),
    cuts=st.lists(st.booleans(), min_size=len(DAYS), max_size=len(DAYS)),
    tick_between=st.booleans(),
)
def test_any_build_order_settles_to_the_in_order_tables(reference, tmp_path, order, cuts, tick_between):
    runs = runs_of(order, cuts)
    digests, _ = build(tmp_path / "order", runs, tick_between)
    assert len(digests) == len(reference) > 0
    assert _diff(digests, reference) == [], f"runs {runs}, ticks between runs: {tick_between}"


def test_runs_of_cuts_an_order_into_runs():
    assert runs_of(DAYS, [False] * 6) == [DAYS]
    assert runs_of(DAYS[::-1], [True] * 6) == [[d] for d in DAYS[::-1]]
    assert runs_of([DAYS[3], DAYS[4], DAYS[0], DAYS[2]], [False, True, False, False]) == [
        [DAYS[3], DAYS[4]], [DAYS[0]], [DAYS[2]]]
    digest = hashlib.sha256(b"").hexdigest()
    assert _diff({("t", "d"): digest}, {("t", "d"): digest}) == []
