"""Fear & Greed and funding-rate assets against the loopback server; API keys never leak."""

import json
from dataclasses import asdict
from datetime import datetime, timedelta

import dagster as dg
import duckdb
import pytest

from quant_assets.definitions import resources_for
from quant_assets.defs.ingestion.alternative_data import build_alternative_data
from quant_assets.defs.ingestion.raw_candles import build_raw_candles
from quant_assets_tests.exchange_server import FAST_RESILIENCE, Fault, base_url_env, start_server

DAY = datetime(2024, 3, 4)


@pytest.fixture(scope="module")
def server():
    srv = start_server(["BTC/USDT", "ETH/USDT"])
    day_s = int((DAY - datetime(1970, 1, 1)).total_seconds())
    srv.fear_greed = [{"value": str(40 + i), "value_classification": "Fear", "timestamp": str(day_s - i * 86400)}
                      for i in range(5)]
    srv.funding = {code: [{"symbol": code, "fundingRate": f"{0.0001 * (i + 1):.8f}",
                           "fundingTime": (day_s - 86400 + i * 28800) * 1000, "markPrice": "60000.5"}
                          for i in range(9)] for code in ("BTCUSDT", "ETHUSDT")}
    yield srv
    srv.stop()


def _run(settings, raise_on_error=True):
    assets, checks = build_alternative_data(settings)
    return dg.materialize([*assets, *checks], partition_key="2024-03-04", raise_on_error=raise_on_error,
                          resources=resources_for(settings))


def test_alternative_data_is_off_by_default_and_never_calls_out(settings):
    result = _run(settings)
    assert result.success
    for name in ("fear_greed", "funding_rates"):
        assert result.asset_materializations_for_node(name)[0].metadata["enabled"].value is False


def test_fear_greed_and_funding_rates_from_loopback(make_settings, server):
    settings = make_settings(env={**base_url_env(server), "QUANT_ALTERNATIVE_PROVIDERS": "alternative_me,binance_futures"},
                             resilience=FAST_RESILIENCE)
    server.clear_faults()
    result = _run(settings)
    assert result.success and all(e.passed for e in result.get_asset_check_evaluations())
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        assert conn.execute("SELECT ts, value, provider FROM fear_greed").fetchall() == [(DAY, 40, "alternative_me")]
        funding = conn.execute("SELECT symbol, ts, funding_rate FROM funding_rates ORDER BY symbol, ts").fetchall()
    assert [(s, t) for s, t, _ in funding] == [(s, DAY + timedelta(hours=h)) for s in ("BTC/USDT", "ETH/USDT")
                                               for h in (0, 8, 16)]
    assert funding[0][2] == pytest.approx(0.0004)


def test_funding_provider_down_fails_the_partition_with_nothing_written(make_settings, server):
    settings = make_settings(env={**base_url_env(server), "QUANT_ALTERNATIVE_PROVIDERS": "binance_futures"},
                             resilience=FAST_RESILIENCE)
    server.clear_faults()
    server.fault("/fapi/v1/fundingRate", Fault.http(503), repeat=True)
    result = _run(settings, raise_on_error=False)
    server.clear_faults()
    assert not result.success
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM funding_rates").fetchone()[0] == 0
        status, fails = conn.execute(
            "SELECT status, fail_count FROM provider_health WHERE provider_name = 'binance_futures'").fetchone()
    assert status == "DEGRADED" and fails == 1


def test_api_keys_never_reach_logs_metadata_tables_or_settings(make_settings, server, monkeypatch):
    secret = "K3y-" + "9" * 40
    monkeypatch.setenv("QUANT_BINANCE_API_KEY", secret)
    settings = make_settings(env={**base_url_env(server), "QUANT_CANDLE_PROVIDERS": "binance,coinbase",
                                  "QUANT_SYMBOLS": "BTC/USDT"}, resilience=FAST_RESILIENCE)
    server.clear_faults()
    server.requests.clear()
    server.fault("/api/v3/klines", Fault.http(401, body={"code": -2015, "msg": f"Invalid API-key {secret}"}))
    result = dg.materialize([build_raw_candles(settings)], partition_key="2024-03-04",
                            resources=resources_for(settings))
    assert result.success
    assert any(headers.get("x-mbx-apikey") == secret for _, _, headers in server.requests)
    events = "\n".join(repr(e) for e in result.all_events)
    assert "Invalid API-key ***" in events  # the error is reported, the key is not
    assert secret not in events
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        for table in ("provider_health", "provider_metrics", "raw_candles", "partition_hashes"):
            dump = json.dumps(conn.execute(f'SELECT * FROM "{table}"').fetchall(), default=str)
            assert secret not in dump, table
    assert secret not in json.dumps(asdict(settings), default=str) and secret not in settings.fingerprint()
    server.clear_faults()
