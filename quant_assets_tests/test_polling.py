"""The polling sensor: cadence, cursor (no repeats; missed ticks recorded as a gap), fallback,
last-known-good with TTL, DEX rows with missing optional fields, and the daily report assets."""

from datetime import datetime, timedelta

import dagster as dg
import duckdb
import pytest

from quant_assets.definitions import resources_for
from quant_assets.defs.ingestion.polling import SENSOR_NAME, build_polling, build_polling_sensor
from quant_assets_tests.exchange_server import (
    FAST_RESILIENCE,
    Fault,
    base_url_env,
    dex_pair,
    start_server,
)

T0 = datetime(2024, 3, 4, 12, 0)
PAIR_A = "solana/PairAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1"
PAIR_Z = "solana/PairZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ0"


@pytest.fixture
def server():
    srv = start_server(["BTC/USDT", "ETH/USDT"])
    srv.now = T0
    srv.dex_pairs = {
        PAIR_A: dex_pair("solana", PAIR_A.split("/")[1], minimal=True),
        PAIR_Z: dex_pair("solana", PAIR_Z.split("/")[1], price_native="0"),  # a zero price: rejected
    }
    yield srv
    srv.stop()


@pytest.fixture
def poller(make_settings, server):
    clock = [T0 + timedelta(seconds=17)]
    settings = make_settings(env={
        **base_url_env(server), "QUANT_SYMBOLS": "BTC/USDT,ETH/USDT", "QUANT_SPOT_PROVIDERS": "coinbase,kraken",
        "QUANT_DEX_PROVIDERS": "dexscreener", "QUANT_DEX_PAIRS": f"{PAIR_A},{PAIR_Z}",
    }, resilience={**FAST_RESILIENCE, "rate_scale": 50, "lkg_ttl_s": 300})
    sensor = build_polling_sensor(settings, clock=lambda: clock[0])
    resources = resources_for(settings)

    def tick(cursor):
        # The providers resource has a lifecycle (health restored, then persisted at teardown).
        with dg.build_sensor_context(cursor=cursor, resources=resources) as context:
            return sensor(context)

    def rows(sql, params=None):
        with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
            return conn.execute(sql, params or []).fetchall()

    return settings, sensor, clock, tick, rows


def test_sensor_is_stopped_by_default_and_runs_at_the_configured_cadence(make_settings):
    settings = make_settings(env={"QUANT_POLL_INTERVAL_S": "30"})
    sensor = build_polling_sensor(settings)
    assert sensor.name == SENSOR_NAME
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert sensor.minimum_interval_seconds == 30
    assert build_polling_sensor(make_settings()).minimum_interval_seconds == 60


def test_each_tick_once_and_missed_ticks_are_a_recorded_gap(poller, server):
    settings, _, clock, tick, rows = poller
    first = tick(None)
    assert first.cursor == T0.isoformat()
    spot = rows("SELECT symbol, ts, provider, fetch_status, price > 0 FROM spot_quotes ORDER BY symbol")
    assert spot == [("BTC/USDT", T0, "coinbase", "OK", True), ("ETH/USDT", T0, "coinbase", "OK", True)]
    dex = rows("SELECT pair, ts, price_native, price_usd, liquidity_usd, fetch_status FROM dex_snapshots")
    assert dex == [(PAIR_A, T0, 0.007055, None, None, "OK")]
    zero = rows("SELECT kind, key FROM ingestion_gaps")
    assert zero == [("dex", PAIR_Z)]  # the zero-priced pair never reaches the table

    requests = len(server.requests)
    clock[0] = T0 + timedelta(seconds=50)  # same tick again (a restart within the minute)
    again = tick(first.cursor)
    assert again.cursor == first.cursor and len(server.requests) == requests
    assert rows("SELECT count(*) FROM spot_quotes") == [(2,)]

    clock[0] = T0 + timedelta(seconds=61)
    second = tick(first.cursor)
    assert second.cursor == (T0 + timedelta(minutes=1)).isoformat()
    clock[0] = T0 + timedelta(minutes=5, seconds=3)  # sensor was stopped for three ticks
    third = tick(second.cursor)
    assert third.cursor == (T0 + timedelta(minutes=5)).isoformat()
    ticks = [r[0] for r in rows("SELECT DISTINCT ts FROM spot_quotes ORDER BY ts")]
    assert ticks == [T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=5)]
    gap = rows("SELECT window_start, window_end, reason FROM ingestion_gaps WHERE kind = 'poll'")
    assert gap == [(T0 + timedelta(minutes=2), T0 + timedelta(minutes=5), "sensor did not poll 3 tick(s)")]
    assert {o.asset_key.to_user_string() for o in third.asset_events} == {"spot_quotes", "dex_snapshots"}


def test_fallback_then_last_known_good_then_gap(poller, server):
    settings, _, clock, tick, rows = poller
    server.fault("/products/ETH-USDT/ticker", Fault.http(404), repeat=True)
    cursor = tick(None).cursor
    assert rows("SELECT symbol, provider FROM spot_quotes ORDER BY symbol") == [
        ("BTC/USDT", "coinbase"), ("ETH/USDT", "kraken")]
    server.fault("/products/", Fault.http(503), repeat=True)
    server.fault("/0/public/Ticker", Fault.malformed(), repeat=True)
    clock[0] = T0 + timedelta(minutes=1, seconds=1)
    cursor = tick(cursor).cursor
    degraded = rows("SELECT symbol, provider, fetch_status, error, price, quote_ts FROM spot_quotes "
                    "WHERE ts = ? ORDER BY symbol", [T0 + timedelta(minutes=1)])
    first = dict(((r[0], r[1]), r[2]) for r in rows("SELECT symbol, provider, price FROM spot_quotes WHERE ts = ?", [T0]))
    assert [(r[0], r[1], r[2]) for r in degraded] == [
        ("BTC/USDT", "coinbase", "DEGRADED"), ("ETH/USDT", "kraken", "DEGRADED")]
    assert all(r[3] and "coinbase" in r[3] for r in degraded)
    assert degraded[0][4] == first[("BTC/USDT", "coinbase")]  # the last good price, never passed off as fresh
    assert degraded[0][5] < T0 + timedelta(minutes=1)
    health = dict(rows("SELECT provider_name, status FROM provider_health"))
    assert health["coinbase"] in ("DEGRADED", "DOWN") and health["kraken"] in ("DEGRADED", "DOWN")
    clock[0] = T0 + timedelta(minutes=10, seconds=1)  # past the 300 s TTL
    tick(cursor)
    assert rows("SELECT count(*) FROM spot_quotes WHERE ts = ?", [T0 + timedelta(minutes=10)]) == [(0,)]
    assert rows("SELECT key FROM ingestion_gaps WHERE kind = 'spot' ORDER BY key") == [("BTC/USDT",), ("ETH/USDT",)]


def test_daily_report_assets_and_their_checks(poller):
    settings, _, clock, tick, rows = poller
    cursor = tick(None).cursor
    clock[0] = T0 + timedelta(minutes=1)
    tick(cursor)
    assets, checks, _ = build_polling(settings)
    result = dg.materialize([*assets, *checks], partition_key="2024-03-04",
                            resources=resources_for(settings))
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    meta = result.asset_materializations_for_node("spot_quotes")[0].metadata
    assert meta["dagster/row_count"].value == 4 and meta["ticks"].value == 2
    with duckdb.connect(str(settings.duckdb_path)) as conn:  # a bad row behind the poller's back
        conn.execute("INSERT INTO spot_quotes VALUES ('BTC/USDT', '2024-03-04 13:00:30', '2024-03-04 13:00:00', "
                     "1.0, NULL, NULL, 'x', now()::TIMESTAMP, 'OK', NULL)")
    result = dg.materialize([*assets, *checks], partition_key="2024-03-04", raise_on_error=False,
                            resources=resources_for(settings))
    failed = {e.asset_check_key.name for e in result.get_asset_check_evaluations() if not e.passed}
    assert failed == {"spot_quotes_valid"}


def test_a_lowercase_evm_pair_is_polled_without_gaps(make_settings):
    """A dexscreener.com URL shows an EVM pair in lowercase; the API answers it checksummed.
    Before the fix every tick recorded a gap while provider_health said OK."""
    checksummed = "0x88e6A0c2dDD26FEEb64F039a2c41296FcB3f5640"
    server = start_server(["BTC/USDT"])
    try:
        server.now = T0
        server.dex_pairs = {f"ethereum/{checksummed}": dex_pair("ethereum", checksummed)}
        pair = f"ethereum/{checksummed.lower()}"
        settings = make_settings(env={
            **base_url_env(server), "QUANT_SYMBOLS": "BTC/USDT", "QUANT_SPOT_PROVIDERS": "coinbase",
            "QUANT_DEX_PROVIDERS": "dexscreener", "QUANT_DEX_PAIRS": pair,
        }, resilience={**FAST_RESILIENCE, "rate_scale": 50})
        clock = [T0 + timedelta(seconds=1)]
        sensor = build_polling_sensor(settings, clock=lambda: clock[0])
        cursor = None
        for minute in range(3):
            clock[0] = T0 + timedelta(minutes=minute, seconds=1)
            with dg.build_sensor_context(cursor=cursor, resources=resources_for(settings)) as context:
                cursor = sensor(context).cursor
    finally:
        server.stop()
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        rows = conn.execute("SELECT pair, pair_address, fetch_status FROM dex_snapshots ORDER BY ts").fetchall()
        gaps = conn.execute("SELECT count(*) FROM ingestion_gaps WHERE kind = 'dex'").fetchone()[0]
        health = conn.execute("SELECT status FROM provider_health WHERE provider_name = 'dexscreener'").fetchone()
    assert rows == [(pair, checksummed.lower(), "OK")] * 3 and gaps == 0 and health == ("OK",)
