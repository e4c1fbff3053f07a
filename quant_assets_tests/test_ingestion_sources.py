"""Done-when: the real freqtrade files ingest exactly; a [binance, coinbase, kraken] chain on
loopback servers, binance failing, completes a backfill from the others with provenance."""

from datetime import datetime, timedelta

import dagster as dg
import duckdb
import polars as pl
import pytest

from quant_assets.definitions import resources_for
from quant_assets.defs.ingestion.raw_candles import (
    build_raw_candles,
    build_raw_candles_provenance_check,
)
from quant_assets.providers.files import FilesProvider
from quant_assets.providers.resilience import utcnow
from quant_assets.providers.simulator import SimulatorCandleProvider
from quant_assets_tests.conftest import SHARED_DATA
from quant_assets_tests.exchange_server import FAST_RESILIENCE, Fault, base_url_env, start_server

FREQTRADE = SHARED_DATA / "freqtrade_testdata"
def materialize(settings, partition_key=None, start=None, end=None):
    """raw_candles and its provenance check, dg.materialize, into the settings' temp DuckDB."""
    tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end} if start else {}
    return dg.materialize(
        [build_raw_candles(settings), build_raw_candles_provenance_check(settings)],
        partition_key=partition_key, tags=tags,
        resources=resources_for(settings),
    )


PAIRS = ["ADA", "DASH", "ETC", "ETH", "LTC", "NXT", "TRX", "XLM", "XMR", "ZEC"]


@pytest.mark.slow
@pytest.mark.skipif(not FREQTRADE.is_dir(), reason=f"real freqtrade test data not present at {FREQTRADE}")
def test_files_provider_ingests_the_ten_real_5m_pairs_exactly(make_settings):
    symbols = ",".join(f"{p}/BTC" for p in PAIRS)
    settings = make_settings(env={
        "QUANT_SYMBOLS": symbols, "QUANT_BASE_INTERVAL": "5m", "QUANT_BAR_INTERVALS": "15m,1h,1d",
        "QUANT_START_DATE": "2018-01-01", "QUANT_CANDLE_PROVIDERS": "files", "QUANT_FILES_DIR": str(FREQTRADE),
    })
    result = materialize(settings, start="2018-01-10", end="2018-01-30")
    assert result.success
    meta = result.asset_materializations_for_node("raw_candles")[0].metadata
    assert "| rejected_rows | 0 |" in meta["run_summary"].value  # a range's total is labelled as the run's
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        for pair in PAIRS:
            symbol = f"{pair}/BTC"
            got = conn.execute(
                "SELECT ts, open, high, low, close, volume, provider, fetch_status, quote_volume "
                "FROM raw_candles WHERE symbol = ? ORDER BY ts", [symbol]).fetchall()
            source = pl.read_ipc(FREQTRADE / f"{pair}_BTC-5m.feather")
            want = [(d.replace(tzinfo=None), o, h, lo, c, v) for d, o, h, lo, c, v in source.iter_rows()]
            assert [g[:6] for g in got] == want, symbol  # every candle, every value, bit for bit
            assert {g[6:] for g in got} == {("files", "OK", None)}
        assert conn.execute("SELECT count(*) FROM raw_candles").fetchone()[0] == sum(
            pl.read_ipc(FREQTRADE / f"{p}_BTC-5m.feather").height for p in PAIRS)


@pytest.mark.skipif(not FREQTRADE.is_dir(), reason=f"real freqtrade test data not present at {FREQTRADE}")
def test_files_provider_reads_json_and_feather_of_one_minute_data():
    provider = FilesProvider(FREQTRADE)
    json_rows = provider.fetch_candles("UNITTEST/BTC", "1m", datetime(2017, 11, 1), datetime(2017, 12, 1))
    assert json_rows.height == 13681 and json_rows["ts"][0] == datetime(2017, 11, 4, 23, 2)
    feather = provider.fetch_candles("XRP/ETH", "1m", datetime(2019, 10, 11), datetime(2019, 10, 14))
    assert feather.height == 2469


def test_chain_with_binance_failing_backfills_from_coinbase_and_kraken(make_settings):
    server = start_server(["BTC/USDT", "ETH/USDT"])
    try:
        server.now = datetime(2024, 3, 5, 2, 0)  # Kraken serves only its 720 most recent candles
        server.fault("/api/v3/klines", Fault.http(503), repeat=True)
        server.fault("/products/ETH-USDT", Fault.http(404, body={"message": "NotFound"}), repeat=True)
        settings = make_settings(env={
            **base_url_env(server), "QUANT_SYMBOLS": "BTC/USDT,ETH/USDT", "QUANT_BASE_INTERVAL": "5m",
            "QUANT_BAR_INTERVALS": "15m,1h,1d", "QUANT_CANDLE_PROVIDERS": "binance,coinbase,kraken",
        }, resilience=FAST_RESILIENCE)
        began = utcnow()
        result = materialize(settings, partition_key="2024-03-04")
        assert result.success
        assert server.count("/0/public/OHLC") == 1 and server.count("/api/v3/klines") >= 3
    finally:
        server.stop()
    day = datetime(2024, 3, 4)
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        for symbol, provider in (("BTC/USDT", "coinbase"), ("ETH/USDT", "kraken")):
            got = conn.execute(
                "SELECT ts, open, high, low, close, volume, provider, fetch_status, error, fetched_at "
                "FROM raw_candles WHERE symbol = ? ORDER BY ts", [symbol]).fetchall()
            want = SimulatorCandleProvider(42).fetch_candles(symbol, "5m", day, day + timedelta(days=1))
            assert [g[:6] for g in got] == list(want.select("ts", "open", "high", "low", "close", "volume").iter_rows())
            assert {g[6:9] for g in got} == {(provider, "OK", None)}
            assert all(began <= g[9] <= utcnow() for g in got)
        health = dict(conn.execute("SELECT provider_name, status FROM provider_health").fetchall())
    assert health["binance"] in ("DEGRADED", "DOWN") and health["coinbase"] == "OK" and health["kraken"] == "OK"
    meta = result.asset_materializations_for_node("raw_candles")[0].metadata
    assert set(meta["rows_by_provider"].value) == {"coinbase", "kraken"}
    assert meta["fallbacks"].value == {"BTC/USDT": ["binance"], "ETH/USDT": ["binance", "coinbase"]}
