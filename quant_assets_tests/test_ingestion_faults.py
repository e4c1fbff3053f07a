"""The fault matrix: raw_candles materialized (dg.materialize, temp DuckDB) through a
[binance, coinbase] chain on the loopback server, one injected fault per case.

For each: which provider's rows were stored, the breaker state and provider_health row, the
server's request count (retried or not), and that no invalid row reached the table.
"""

from datetime import datetime, timedelta

import dagster as dg
import duckdb
import pytest

from quant_assets.cli import degraded_lines
from quant_assets.definitions import resources_for
from quant_assets.defs.ingestion.raw_candles import (
    build_raw_candles,
    build_raw_candles_provenance_check,
)
from quant_assets.providers.resilience import utcnow
from quant_assets.providers.simulator import SimulatorCandleProvider
from quant_assets_tests.conftest import INVALID_CANDLES as INVALID
from quant_assets_tests.conftest import table_digest
from quant_assets_tests.exchange_server import FAST_RESILIENCE, Fault, base_url_env, start_server
from quant_assets_tests.exchange_server import corrupt_prices as _corrupt

DAY = "2024-03-04"
START = datetime(2024, 3, 4)
KLINES = "/api/v3/klines"


@pytest.fixture(scope="module")
def server():
    srv = start_server(["BTC/USDT", "ETH/USDT"])
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _clean(server):
    server.clear_faults()
    server.requests.clear()


@pytest.fixture
def chain_settings(make_settings, server):
    def _make(providers="binance,coinbase", symbols="BTC/USDT", **resilience):
        env = {**base_url_env(server), "QUANT_CANDLE_PROVIDERS": providers, "QUANT_SYMBOLS": symbols}
        return make_settings(env=env, resilience={**FAST_RESILIENCE, **resilience})
    return _make


def run(settings, partition=DAY):
    return dg.materialize(
        [build_raw_candles(settings), build_raw_candles_provenance_check(settings)],
        partition_key=partition,
        resources=resources_for(settings),
        raise_on_error=False,
    )


def stored(settings):
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        rows = conn.execute("SELECT symbol, ts, open, high, low, close, volume, provider, fetch_status, error "
                            "FROM raw_candles ORDER BY symbol, ts").fetchall()
        invalid = conn.execute(INVALID).fetchone()[0]
        health = {r[0]: r[1:] for r in conn.execute(
            "SELECT provider_name, status, fail_count, disabled_until, last_error, last_ok_at FROM provider_health"
        ).fetchall()}
        metrics = {r[0]: r[1:] for r in conn.execute(
            "SELECT provider_name, requests, successes, recent_calls FROM provider_metrics").fetchall()}
    return rows, invalid, health, metrics


def expected(symbol="BTC/USDT", interval="1m", start=START):
    frame = SimulatorCandleProvider(42).fetch_candles(symbol, interval, start, start + timedelta(days=1))
    return [(symbol, *r) for r in frame.select("ts", "open", "high", "low", "close", "volume").iter_rows()]


def _garbage(rows):
    return [[r[0], "0", "0", "0", "0", *r[5:]] for r in rows]


# name, faults [(fault, times, repeat)], stored provider, binance status, fail_count, klines requests, rejected
MATRIX = [
    ("429_long_retry_after", [(Fault.http(429, retry_after="1"), 1, False)], "coinbase", "DOWN", 1, 1, 0),
    ("418_banned", [(Fault.http(418, retry_after="120"), 1, False)], "coinbase", "DOWN", 1, 1, 0),
    ("500_once", [(Fault.http(500), 1, False)], "binance", "OK", 0, 3, 0),
    ("502_once", [(Fault.http(502), 1, False)], "binance", "OK", 0, 3, 0),
    ("503_twice", [(Fault.http(503), 2, False)], "binance", "OK", 0, 4, 0),
    ("503_persistent", [(Fault.http(503), 1, True)], "coinbase", "DEGRADED", 1, 3, 0),
    ("timeout_once", [(Fault.timeout(1.0), 1, False)], "binance", "OK", 0, 3, 0),
    ("dropped_connection", [(Fault.drop(), 1, False)], "binance", "OK", 0, 3, 0),
    ("malformed_json", [(Fault.malformed(), 1, False)], "coinbase", "DEGRADED", 1, 1, 0),
    ("changed_schema", [(Fault.change(lambda rows: [r[:11] for r in rows]), 1, False)], "coinbase", "DEGRADED", 1, 1, 0),
    ("changed_schema_object", [(Fault.change(lambda rows: {"data": rows}), 1, False)], "coinbase", "DEGRADED", 1, 1, 0),
    ("bad_request", [(Fault.http(400), 1, False)], "coinbase", "OK", 0, 1, 0),
    ("unauthorized", [(Fault.http(401), 1, False)], "coinbase", "DEGRADED", 1, 1, 0),
    ("negative_and_zero_prices", [(Fault.change(_corrupt), 1, False)], "binance", "OK", 0, 2, 10),
    ("every_price_zero", [(Fault.change(_garbage), 1, True)], "coinbase", "OK", 0, 2, 0),
    ("duplicates_out_of_order", [(Fault.change(lambda rows: list(reversed(rows + rows[:40]))), 1, True)],
     "binance", "OK", 0, 2, 0),
    ("empty_pages", [(Fault.change(lambda rows: []), 1, True)], "coinbase", "OK", 0, 1, 0),
]


@pytest.mark.parametrize(("name", "faults", "provider", "status", "fail_count", "klines", "rejected"), MATRIX,
                         ids=[m[0] for m in MATRIX])
def test_fault_matrix(server, chain_settings, name, faults, provider, status, fail_count, klines, rejected):
    settings = chain_settings()
    for fault, times, repeat in faults:
        server.fault(KLINES, fault, times=times, repeat=repeat)
    result = run(settings)
    assert result.success, name
    rows, invalid, health, metrics = stored(settings)
    assert invalid == 0
    assert {r[7] for r in rows} == {provider}
    assert {(r[8], r[9]) for r in rows} == {("OK", None)}
    want = expected()
    if rejected:
        bad_ts = {want[10 + i][1] for i in range(5)} | {want[100 + i][1] for i in range(5)}
        want = [w for w in want if w[1] not in bad_ts]
    assert [r[:7] for r in rows] == want
    assert server.count(KLINES) == klines
    b_status, b_fails, b_disabled, b_error, _ = health["binance"]
    assert (b_status, b_fails) == (status, fail_count)
    if status == "DOWN":
        assert b_disabled is not None and b_disabled > utcnow()
    else:
        assert b_disabled is None
    if status != "OK" or name in ("500_once", "timeout_once", "dropped_connection", "bad_request"):
        assert b_error  # the last error is kept for the alert sensor
    meta = result.asset_materializations_for_node("raw_candles")[0].metadata
    assert meta["rejected_rows"].value == rejected
    assert meta["provider_health"].value["binance"]["status"] == status
    if provider == "coinbase":
        assert meta["fallbacks"].value == {"BTC/USDT": ["binance"]}
        assert health["coinbase"][0] == "OK"
    requests, successes, recent = metrics["binance"]
    assert requests == klines and len(recent) == requests and recent.count("1") == successes


def test_breaker_opens_persists_across_runs_then_half_open_probe_closes_it(server, chain_settings):
    settings = chain_settings(breaker_cooldown_s=3600)
    server.fault(KLINES, Fault.http(503), repeat=True)
    for expected_status in ("DEGRADED", "DOWN"):
        assert run(settings).success
        assert stored(settings)[2]["binance"][0] == expected_status
    before = server.count(KLINES)
    assert run(settings).success  # a new run restores the OPEN breaker: binance is not asked
    assert server.count(KLINES) == before
    # Cooldown over (simulated by moving disabled_until into the past): one probe, it succeeds.
    with duckdb.connect(str(settings.duckdb_path)) as conn:
        conn.execute("UPDATE provider_health SET disabled_until = now()::TIMESTAMP - INTERVAL 1 SECOND")
    server.clear_faults()
    assert run(settings, "2024-03-05").success
    rows, _, health, _ = stored(settings)
    assert health["binance"][:3] == ("OK", 0, None)
    assert {r[7] for r in rows if r[1] >= datetime(2024, 3, 5)} == {"binance"}


def test_a_failed_page_fails_the_provider_whole_and_nothing_half_written(server, chain_settings):
    settings = chain_settings()
    server.fault(KLINES, Fault.change(lambda rows: rows), times=1)  # first page fine
    server.fault(KLINES, Fault.http(503), times=3)                  # second page exhausted
    assert run(settings).success
    rows, invalid, _, _ = stored(settings)
    assert {r[7] for r in rows} == {"coinbase"} and [r[:7] for r in rows] == expected() and invalid == 0


def test_every_provider_failing_fails_the_partition_records_the_gap_and_next_run_completes(server, chain_settings):
    settings = chain_settings()
    server.fault(KLINES, Fault.http(503), repeat=True)
    server.fault("/products/", Fault.http(503), repeat=True)
    result = run(settings)
    assert not result.success
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM raw_candles").fetchone()[0] == 0
        gap = conn.execute("SELECT kind, key, window_start, reason FROM ingestion_gaps").fetchall()
        health = dict(conn.execute("SELECT provider_name, status FROM provider_health").fetchall())
    assert gap[0][:3] == ("candles", "BTC/USDT", START) and "binance" in gap[0][3] and "coinbase" in gap[0][3]
    assert health == {"binance": "DEGRADED", "coinbase": "DEGRADED"}
    server.clear_faults()
    assert run(settings).success
    assert [r[:7] for r in stored(settings)[0]] == expected()


def test_last_known_good_is_degraded_within_ttl_and_a_gap_after(server, chain_settings, make_settings):
    settings = chain_settings()
    assert run(settings).success
    server.fault(KLINES, Fault.http(503), repeat=True)
    server.fault("/products/", Fault.http(503), repeat=True)
    degraded = run(settings)
    assert degraded.success
    (line,) = degraded_lines(degraded)  # what the quant command prints under its "done" line
    assert line.startswith("degraded: raw_candles kept last-known-good rows (fetch_status DEGRADED) for BTC/USDT")
    rows, invalid, _, _ = stored(settings)
    assert [r[:7] for r in rows] == expected() and invalid == 0
    assert {r[7] for r in rows} == {"binance"}  # provenance of the kept rows is unchanged
    assert {r[8] for r in rows} == {"DEGRADED"} and all("no provider delivered" in r[9] for r in rows)
    stale = chain_settings(lkg_ttl_s=0.000001)
    assert not run(stale).success  # past the TTL: the gap is recorded, the rows are not refreshed
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM ingestion_gaps WHERE kind = 'candles'").fetchone()[0] == 1
    server.clear_faults()
    with duckdb.connect(str(settings.duckdb_path)) as conn:  # both breakers opened; let the cooldown pass
        assert conn.execute("SELECT count(*) FROM provider_health WHERE status = 'DOWN'").fetchone()[0] == 2
        conn.execute("UPDATE provider_health SET disabled_until = now()::TIMESTAMP - INTERVAL 1 SECOND")
    assert run(settings).success
    assert {(r[7], r[8], r[9]) for r in stored(settings)[0]} == {("binance", "OK", None)}


def test_refetching_identical_data_leaves_the_table_byte_identical(server, chain_settings):
    settings = chain_settings(symbols="BTC/USDT,ETH/USDT")
    assert run(settings).success
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        before = table_digest(conn, "raw_candles")
    assert run(settings).success
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        assert table_digest(conn, "raw_candles") == before
