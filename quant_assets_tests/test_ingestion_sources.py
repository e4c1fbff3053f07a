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
    meta = result.asset_materializations_for_node("raw_candles")[-1].metadata  # the run's views: its last day
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


def _archive_zip(directory, symbol: str, day: datetime, corrupt_checksum: bool = False) -> None:
    """A real data.binance.vision daily zip (12-column CSV, no header, ms open times) and its
    ``.CHECKSUM`` sidecar (``sha256  name``), from the simulator's candles of ``day``."""
    import hashlib
    import io
    import zipfile

    code = symbol.replace("/", "")
    name = f"{code}-1m-{day:%Y-%m-%d}.zip"
    frame = SimulatorCandleProvider(42).fetch_candles(symbol, "1m", day, day + timedelta(days=1))
    lines = []
    for ts, o, h, lo, c, v, qv in frame.select("ts", "open", "high", "low", "close", "volume", "quote_volume").iter_rows():
        ms = int((ts - datetime(1970, 1, 1)).total_seconds() * 1000)
        lines.append(f"{ms},{o!r},{h!r},{lo!r},{c!r},{v!r},{ms + 59_999},{qv!r},10,0,0,0\n")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name.replace(".zip", ".csv"), "".join(lines))
    data = buffer.getvalue()
    (directory / name).write_bytes(data)
    digest = hashlib.sha256(data + (b"tampered" if corrupt_checksum else b"")).hexdigest()
    (directory / f"{name}.CHECKSUM").write_text(f"{digest}  {name}\n")


def test_archive_day_with_a_bad_checksum_fails_alone_in_a_range(make_settings, tmp_path):
    """D2's BTC zip fails its CHECKSUM: D1 and D3 are written and materialized, D2 is not written
    (for any symbol: a day is whole or absent), its gap is recorded, the run fails naming D2; once
    the file is fixed, D2 alone completes the range."""
    archive_dir = tmp_path / "archive"
    archive_dir.mkdir()
    days = [datetime(2024, 3, 4) + timedelta(days=i) for i in range(3)]
    for day in days:
        for symbol in ("BTC/USDT", "ETH/USDT"):
            _archive_zip(archive_dir, symbol, day, corrupt_checksum=(symbol == "BTC/USDT" and day == days[1]))
    settings = make_settings(env={"QUANT_SYMBOLS": "BTC/USDT,ETH/USDT", "QUANT_CANDLE_PROVIDERS": "binance_archive",
                                  "QUANT_FILES_DIR": str(archive_dir)})
    assets = [build_raw_candles(settings), build_raw_candles_provenance_check(settings)]
    key = dg.AssetKey("raw_candles")
    with dg.instance_for_test() as instance:
        result = dg.materialize(assets, instance=instance, resources=resources_for(settings), raise_on_error=False,
                                tags={"dagster/asset_partition_range_start": "2024-03-04",
                                      "dagster/asset_partition_range_end": "2024-03-06"})
        assert not result.success
        failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
        assert "\n" not in failure.description
        assert failure.description.startswith("raw_candles: 1 of 3 day(s) not written, gap recorded")
        assert "2024-03-05 (BTC/USDT:" in failure.description and "BTCUSDT-1m-2024-03-05.zip sha256" in failure.description
        assert failure.description.endswith("written: 2024-03-04, 2024-03-06")
        assert failure.metadata["failed_days"].value == ["2024-03-05"]
        assert instance.get_materialized_partitions(key) == {"2024-03-04", "2024-03-06"}
        per_day = {e.dagster_event.partition: e.asset_materialization.metadata for e in instance.all_logs(
            result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)}
        assert set(per_day) == {"2024-03-04", "2024-03-06"} and all("content_hash" in m for m in per_day.values())

        with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
            stored = dict(conn.execute("SELECT CAST(ts AS DATE)::VARCHAR, count(*) FROM raw_candles GROUP BY ALL").fetchall())
            gaps = conn.execute("SELECT kind, key, window_start, window_end, reason FROM ingestion_gaps").fetchall()
            hashed = {r[0] for r in conn.execute(
                "SELECT partition_key FROM partition_hashes WHERE table_name = 'raw_candles'").fetchall()}
            btc_d1 = conn.execute("SELECT ts, open, close FROM raw_candles WHERE symbol = 'BTC/USDT' AND ts < ? "
                                  "ORDER BY ts", [days[1]]).fetchall()
        want = SimulatorCandleProvider(42).fetch_candles("BTC/USDT", "1m", days[0], days[1])
        assert btc_d1 == list(want.select("ts", "open", "close").iter_rows())
        assert set(stored) == {"2024-03-04", "2024-03-06"} and hashed == {"2024-03-04", "2024-03-06"}
        assert [g[:4] for g in gaps] == [("candles", "BTC/USDT", days[1], days[2])]
        assert "CHECKSUM" in gaps[0][4] and "BTCUSDT-1m-2024-03-05.zip" in gaps[0][4]

        _archive_zip(archive_dir, "BTC/USDT", days[1])  # the file is fixed: D2 alone completes the range
        assert dg.materialize(assets, instance=instance, partition_key="2024-03-05",
                              resources=resources_for(settings)).success
        assert instance.get_materialized_partitions(key) == {"2024-03-04", "2024-03-05", "2024-03-06"}


def test_a_range_keeps_at_most_max_workers_requests_in_flight_and_fills_them(make_settings):
    """A range's symbol-days are fetched ``max_workers`` at a time: never more requests on the
    wire at once, and no fewer while days are left."""
    symbols = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    server = start_server(symbols, latency_s=0.05)
    try:
        settings = make_settings(env={
            **base_url_env(server), "QUANT_SYMBOLS": ",".join(symbols), "QUANT_BASE_INTERVAL": "5m",
            "QUANT_BAR_INTERVALS": "15m,1h,1d", "QUANT_CANDLE_PROVIDERS": "binance", "QUANT_START_DATE": "2024-03-01",
        }, resilience={**FAST_RESILIENCE, "timeout_s": 5.0, "max_workers": 2})
        result = materialize(settings, start="2024-03-01", end="2024-03-04")
        assert result.success
        assert server.count("/api/v3/klines") == 12  # 3 symbols x 4 days, one page of 288 candles each
        assert server.max_in_flight == 2
    finally:
        server.stop()
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        days = conn.execute("SELECT count(DISTINCT (symbol, CAST(ts AS DATE))) FROM raw_candles "
                            "WHERE provider = 'binance'").fetchone()[0]
    assert days == 12  # every symbol-day stored, from the one provider
