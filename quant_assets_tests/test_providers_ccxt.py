"""The ccxt candle provider against the loopback exchange server: ccxt's binance, its API URLs
pointed at 127.0.0.1 (``QUANT_CCXT_BASE_URL``), loading its markets from the server's
``exchangeInfo`` and paging its klines; real freqtrade candles served and read back exactly; the
platform's limiter, retries, breaker and health around every ccxt request; raw_candles through it.
"""

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import ccxt
import dagster as dg
import duckdb
import polars as pl
import pytest

from quant_assets.config import ConfigError, ResilienceSettings, load_settings
from quant_assets.definitions import resources_for
from quant_assets.defs.ingestion.raw_candles import (
    build_raw_candles,
    build_raw_candles_provenance_check,
)
from quant_assets.providers import registry
from quant_assets.providers.base import (
    CANDLE_SCHEMA,
    BannedError,
    ClientError,
    MalformedResponse,
    RetryableError,
)
from quant_assets.providers.ccxt_exchange import CcxtProvider, spot_only, with_origin
from quant_assets.providers.files import read_ohlcv_file
from quant_assets.providers.resilience import CLOSED, OPEN, TokenBucket, utcnow
from quant_assets.providers.simulator import SimulatorCandleProvider
from quant_assets.secrets import exception_chain
from quant_assets_tests.conftest import INVALID_CANDLES, SHARED_DATA
from quant_assets_tests.exchange_server import (
    FAST_RESILIENCE,
    Fault,
    base_url_env,
    corrupt_prices,
    start_server,
)
from quant_assets_tests.fake_clock import FakeClock

FREQTRADE = SHARED_DATA / "freqtrade_testdata"
needs_freqtrade = pytest.mark.skipif(not FREQTRADE.is_dir(), reason=f"real freqtrade test data not present at {FREQTRADE}")
KLINES, MARKETS = "/api/v3/klines", "/api/v3/exchangeInfo"
DAY = datetime(2024, 3, 4)
PRICES = ["ts", "open", "high", "low", "close", "volume"]


@pytest.fixture(scope="module")
def server():
    srv = start_server(["BTC/USDT", "ETH/USDT"])
    for symbol in ("BTC/USDT", "ETH/USDT"):  # simulate the days once, so no first request times out on it
        for interval in ("1m", "5m"):
            srv.candles(symbol, interval, DAY, DAY + timedelta(days=3))
    if FREQTRADE.is_dir():
        srv.serve("ETH/BTC", "5m", read_ohlcv_file(FREQTRADE / "ETH_BTC-5m.feather", "ETH/BTC"))
        srv.serve("XRP/ETH", "1m", read_ohlcv_file(FREQTRADE / "XRP_ETH-1m.feather", "XRP/ETH"))
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _clean(server):
    server.reset()


def ccxt_provider(server, sleep=None, **resilience):
    settings = ResilienceSettings(**{"timeout_s": 2.0, "max_attempts": 3, "backoff_multiplier_s": 0.001,
                                     "backoff_max_s": 0.01, "retry_after_max_s": 60, "breaker_failures": 2,
                                     **resilience})
    return CcxtProvider("binance", settings, base_url=server.url, **({"sleep": sleep} if sleep else {}))


def simulated(symbol, interval, start, end):
    return SimulatorCandleProvider(42).fetch_candles(symbol, interval, start, end)


# -- settings ----------------------------------------------------------------------------------

def test_ccxt_settings_the_exchange_is_validated_and_the_base_url_reaches_the_provider(server):
    assert "binance" in ccxt.exchanges  # the default, which the loader does not import ccxt to check
    with pytest.raises(ConfigError) as info:
        load_settings(config_file=None, env={"QUANT_CCXT_EXCHANGE": "binanse"})
    message = str(info.value)
    assert message.startswith("config key 'providers.ccxt_exchange' = 'binanse' (QUANT_CCXT_EXCHANGE) must be a ccxt")
    assert "has no exchange 'binanse'" in message and "\n" not in message
    settings = load_settings(config_file=None, env={"QUANT_CCXT_EXCHANGE": "okx", "QUANT_CANDLE_PROVIDERS": "ccxt",
                                                    "QUANT_CCXT_BASE_URL": server.url + "/"})
    assert settings.ingestion.ccxt_exchange == "okx" and settings.ingestion.base_url_override("ccxt") == server.url
    assert load_settings(config_file=None, env={}).ingestion.base_url_override("ccxt") is None
    provider = registry.CANDLE_PROVIDER_FACTORIES["ccxt"](settings)
    assert isinstance(provider, CcxtProvider) and provider.exchange_id == "okx"
    urls = _urls(provider._idle[0].urls["api"])  # okx's {hostname} template included
    assert urls == [server.url]
    provider.close()


def _urls(value):
    if isinstance(value, dict):
        return [u for v in value.values() for u in _urls(v)]
    return [value] if isinstance(value, str) else []


def test_the_exchange_shapes_the_fingerprint_only_when_ccxt_is_in_the_chain():
    plain = load_settings(config_file=None, env={}).fingerprint()
    assert load_settings(config_file=None, env={"QUANT_CCXT_EXCHANGE": "kraken"}).fingerprint() == plain
    with_ccxt = {"QUANT_CANDLE_PROVIDERS": "ccxt"}
    binance = load_settings(config_file=None, env=with_ccxt).fingerprint()
    kraken = load_settings(config_file=None, env={**with_ccxt, "QUANT_CCXT_EXCHANGE": "kraken"}).fingerprint()
    assert len({plain, binance, kraken}) == 3


def test_origins_are_replaced_paths_kept_and_only_spot_markets_are_loaded():
    urls = {"public": "https://api.binance.com/api/v3", "fapi": {"v1": "https://fapi.binance.com/fapi/v1"},
            "rest": "https://{hostname}/api/v5", "doc": 5}
    assert with_origin(urls, "http://127.0.0.1:9/mirror/") == {
        "public": "http://127.0.0.1:9/mirror/api/v3", "fapi": {"v1": "http://127.0.0.1:9/mirror/fapi/v1"},
        "rest": "http://127.0.0.1:9/mirror/api/v5", "doc": 5}
    assert spot_only(ccxt.okx().options)["fetchMarkets"]["types"] == ["spot"]
    assert spot_only({"fetchMarkets": "fetchMarketsV3"}) == {}


# -- real candles, exactly ------------------------------------------------------------------------

@needs_freqtrade
@pytest.mark.parametrize(("symbol", "interval", "first", "days", "file"), [
    ("XRP/ETH", "1m", datetime(2019, 10, 11), 3, "XRP_ETH-1m.feather"),
    ("ETH/BTC", "5m", datetime(2018, 1, 10), 21, "ETH_BTC-5m.feather"),
])
def test_a_real_freqtrade_pair_comes_back_exactly_through_ccxt(server, symbol, interval, first, days, file):
    provider = ccxt_provider(server)
    got = pl.concat([provider.fetch_candles(symbol, interval, first + timedelta(days=i), first + timedelta(days=i + 1))
                     for i in range(days)])
    want = read_ohlcv_file(FREQTRADE / file, symbol)
    assert got.schema == pl.Schema(CANDLE_SCHEMA)
    assert got.select(PRICES).equals(want.select(PRICES))  # every candle, every value, bit for bit
    assert got["quote_volume"].null_count() == got.height  # ccxt's OHLCV has no quote volume
    pages = [q for path, q, _ in server.requests if path == KLINES]
    assert all(int(q["limit"]) <= 1000 for q in pages) and server.count(MARKETS) == 1  # markets loaded once
    if interval == "1m":  # 1,022 real candles on the first day: two pages, the second one limited to the day
        assert [int(q["limit"]) for q in pages[:2]] == [1000, 49]
    assert all(exchange.enableRateLimit is False for exchange in provider._every)
    snap = provider.state.metrics.snapshot()
    assert snap.requests == snap.successes == len(pages) + 1 and provider.state.breaker.state == CLOSED
    provider.close()


def test_every_request_is_paced_by_the_platform_limiter_in_ccxts_cost(server):
    provider = ccxt_provider(server)
    clock = FakeClock()
    costs: list[float] = []

    class Counting(TokenBucket):
        def acquire(self, cost: float = 1.0) -> float:
            costs.append(cost)
            return super().acquire(cost)

    provider.limiter = Counting(rate=1.0, capacity=4.0, clock=clock, sleep=clock.sleep)
    frame = provider.fetch_candles("BTC/USDT", "1m", DAY, DAY + timedelta(days=1))
    assert frame.select(PRICES).equals(simulated("BTC/USDT", "1m", DAY, DAY + timedelta(days=1)).select(PRICES))
    # One acquire per HTTP request, at ccxt's cost for it (exchangeInfo weight 20, klines weight 2, per 5).
    assert len(costs) == len(server.requests) == 3 and costs == pytest.approx([4.0, 0.4, 0.4])
    assert sum(clock.slept) == pytest.approx(sum(costs) - 4.0)  # the banked burst, then the rate
    assert provider.state.metrics.rate_limit_wait_s == pytest.approx(sum(clock.slept))
    assert provider.limiter.rate == 1.0 and ccxt_provider(server).limiter.rate == 1000 / ccxt.binance().rateLimit


def test_threads_share_one_markets_load_and_each_borrow_their_own_exchange(server):
    provider = ccxt_provider(server, max_workers=3)
    jobs = [("BTC/USDT", DAY), ("ETH/USDT", DAY), ("BTC/USDT", DAY + timedelta(days=1))]
    with ThreadPoolExecutor(max_workers=3) as pool:
        frames = list(pool.map(lambda job: provider.fetch_candles(job[0], "5m", job[1], job[1] + timedelta(days=1)),
                               jobs))
    for (symbol, day), frame in zip(jobs, frames, strict=True):
        assert frame.select(PRICES).equals(simulated(symbol, "5m", day, day + timedelta(days=1)).select(PRICES))
    assert server.count(MARKETS) == 1 and server.count(KLINES) == 3


# -- faults: retried or not, and what they do to the breaker ----------------------------------------------

def test_a_429_is_retried_after_its_retry_after(server):
    clock = FakeClock()
    provider = ccxt_provider(server, sleep=clock.sleep)
    server.fault(KLINES, Fault.http(429, retry_after="3", body={"code": -1003, "msg": "Too many requests."}))
    frame = provider.fetch_candles("BTC/USDT", "1m", DAY, DAY + timedelta(hours=1))
    assert frame.height == 60
    assert len(clock.slept) == 1 and clock.slept[0] >= 3.0  # the server's Retry-After, not the 1 ms backoff
    assert server.count(KLINES) == 2 and provider.state.breaker.state == CLOSED
    assert "DDoSProtection (HTTP 429)" in provider.state.metrics.last_error  # ccxt's class for Binance's -1003
    assert "Retry-After 3s" in provider.state.metrics.last_error


def test_a_418_ban_longer_than_retry_after_max_opens_the_breaker_until_then(server):
    clock = FakeClock()
    provider = ccxt_provider(server, sleep=clock.sleep)
    server.fault(KLINES, Fault.http(418, retry_after="7200"))
    with pytest.raises(BannedError, match="DDoSProtection"):
        provider.fetch_candles("BTC/USDT", "1m", DAY, DAY + timedelta(hours=1))
    assert clock.slept == [] and server.count(KLINES) == 1
    breaker = provider.state.breaker
    assert breaker.state == OPEN and breaker.open_until - utcnow() > timedelta(seconds=7000)


@pytest.mark.parametrize("fault", [Fault.http(503), Fault.http(500), Fault.http(502, body=b"<html>Bad Gateway</html>"),
                                   Fault.timeout(1.0), Fault.drop()], ids=["503", "500", "502_html", "timeout", "drop"])
def test_transient_faults_are_retried(server, fault):
    clock = FakeClock()
    provider = ccxt_provider(server, sleep=clock.sleep, timeout_s=0.5)
    server.fault(KLINES, fault)
    assert provider.fetch_candles("BTC/USDT", "1m", DAY, DAY + timedelta(hours=1)).height == 60
    assert len(clock.slept) == 1 and server.count(KLINES) == 2
    assert provider.state.metrics.snapshot().recent == "101"  # markets, failed page, retried page


def test_transient_faults_exhaust_their_attempts_then_the_breaker_opens(server):
    provider = ccxt_provider(server)
    server.fault(KLINES, Fault.http(503), repeat=True)
    for _ in range(2):
        with pytest.raises(RetryableError):
            provider.fetch_candles("BTC/USDT", "1m", DAY, DAY + timedelta(hours=1))
    assert server.count(KLINES) == 6 and provider.state.breaker.state == OPEN
    assert provider.state.health_status() == "DOWN"


@pytest.mark.parametrize(("status", "body", "ccxt_error", "counts"), [
    (401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}, "AuthenticationError", 1),
    (400, {"code": -1121, "msg": "Invalid symbol."}, "BadSymbol", 0),
    (400, {"code": -1100, "msg": "Illegal characters found in parameter 'symbol'."}, "BadRequest", 0),
])
def test_permanent_errors_are_never_retried(server, status, body, ccxt_error, counts):
    clock = FakeClock()
    provider = ccxt_provider(server, sleep=clock.sleep)
    server.fault(KLINES, Fault.http(status, body=body))
    with pytest.raises(ClientError, match=ccxt_error) as info:
        provider.fetch_candles("BTC/USDT", "1m", DAY, DAY + timedelta(hours=1))
    assert info.value.status == (401 if ccxt_error == "AuthenticationError" else 400)
    assert server.count(KLINES) == 1 and clock.slept == []
    # A bad symbol or request says nothing about the exchange's health; a failed login does.
    assert provider.state.breaker.consecutive_failures == counts


def test_a_symbol_the_exchange_does_not_list_is_refused_without_a_klines_request(server):
    provider = ccxt_provider(server)
    with pytest.raises(ClientError, match="BadSymbol"):
        provider.fetch_candles("DOGE/EUR", "1m", DAY, DAY + timedelta(hours=1))
    assert server.count(KLINES) == 0 and provider.state.breaker.consecutive_failures == 0
    with pytest.raises(ClientError, match="no 7m candles"):
        provider.fetch_candles("BTC/USDT", "7m", DAY, DAY + timedelta(hours=1))


@pytest.mark.parametrize("fault", [
    Fault.malformed(),
    Fault.http(200, body=b"<html>maintenance</html>"),
    Fault.change(lambda rows: [[r[0], "abc", *r[2:]] for r in rows]),
    Fault.change(lambda rows: [r[:1] for r in rows]),
], ids=["truncated_json", "html", "price_not_a_number", "row_cut_short"])
def test_malformed_bodies_are_errors_not_silently_empty_and_never_retried(server, fault):
    clock = FakeClock()
    provider = ccxt_provider(server, sleep=clock.sleep)
    server.fault(KLINES, fault)
    with pytest.raises(MalformedResponse, match=r"ccxt\(binance\): fetch_ohlcv BTC/USDT"):
        provider.fetch_candles("BTC/USDT", "1m", DAY, DAY + timedelta(hours=1))
    assert server.count(KLINES) == 1 and clock.slept == []
    assert provider.state.breaker.consecutive_failures == 1


def test_api_keys_go_to_ccxt_but_never_into_errors_metrics_or_repr(server, monkeypatch):
    key, secret = "cCxT-kEy-0123456789abcdef", "cCxT-sEcReT-fedcba9876543210"
    monkeypatch.setenv("QUANT_CCXT_API_KEY", key)
    monkeypatch.setenv("QUANT_CCXT_API_SECRET", secret)
    provider = ccxt_provider(server)
    assert provider._idle[0].apiKey == key and provider._idle[0].secret == secret
    server.canaries = [key, secret]  # a misbehaving mirror echoes them in an auth error's body
    server.fault(KLINES, Fault.echo(401, "object"))
    with pytest.raises(ClientError, match="AuthenticationError") as info:
        provider.fetch_candles("BTC/USDT", "1m", DAY, DAY + timedelta(hours=1))
    assert server.echoes == 1
    texts = [str(e) for e in exception_chain(info.value)] + [repr(provider), provider.state.metrics.last_error or ""]
    assert all(key not in text and secret not in text for text in texts)
    assert "***" in str(info.value)


# -- through the raw_candles asset ----------------------------------------------------------------------

def materialize(settings, partition):
    return dg.materialize(
        [build_raw_candles(settings), build_raw_candles_provenance_check(settings)],
        partition_key=partition, resources=resources_for(settings), raise_on_error=False,
    )


STORED = {  # what a run left in the DuckDB file
    "rows": "SELECT symbol, ts, open, high, low, close, volume, quote_volume, provider, fetch_status, error "
            "FROM raw_candles ORDER BY symbol, ts",
    "invalid": INVALID_CANDLES,
    "health": "SELECT provider_name, status, fail_count, last_error FROM provider_health",
    "metrics": "SELECT provider_name, requests, successes FROM provider_metrics",
}


def stored(settings):
    """(raw_candles rows, count of invalid rows, health and metrics by provider name)."""
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        got = {name: conn.execute(sql).fetchall() for name, sql in STORED.items()}
    by_name = {name: {r[0]: r[1:] for r in got[name]} for name in ("health", "metrics")}
    return got["rows"], got["invalid"][0][0], by_name["health"], by_name["metrics"]


@needs_freqtrade
def test_raw_candles_through_ccxt_store_the_real_pair_with_ccxt_provenance(server, make_settings):
    settings = make_settings(env={
        **base_url_env(server, "ccxt"), "QUANT_CANDLE_PROVIDERS": "ccxt", "QUANT_SYMBOLS": "XRP/ETH",
        "QUANT_START_DATE": "2019-10-01",
    }, resilience=FAST_RESILIENCE)
    began = utcnow()
    result = materialize(settings, "2019-10-11")
    assert result.success
    rows, invalid, health, metrics = stored(settings)
    day = datetime(2019, 10, 11)
    want = read_ohlcv_file(FREQTRADE / "XRP_ETH-1m.feather", "XRP/ETH").filter(
        (pl.col("ts") >= day) & (pl.col("ts") < day + timedelta(days=1)))
    assert want.height == 1022 and invalid == 0
    assert [r[:7] for r in rows] == list(want.select("symbol", *PRICES).iter_rows())
    assert {r[7:] for r in rows} == {(None, "ccxt", "OK", None)}
    assert health["ccxt"][:2] == ("OK", 0) and metrics["ccxt"] == (3, 3)  # markets and two pages
    meta = result.asset_materializations_for_node("raw_candles")[0].metadata
    assert meta["rows_by_provider"].value == {"ccxt": 1022}
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        fetched = conn.execute("SELECT min(fetched_at), max(fetched_at) FROM raw_candles").fetchone()
    assert began <= fetched[0] <= fetched[1] <= utcnow()


@pytest.mark.parametrize(("name", "fault", "provider", "rejected", "ccxt_health"), [
    ("malformed_body", Fault.malformed(), "binance", 0, ("DEGRADED", 1)),
    ("negative_and_zero_prices", Fault.change(corrupt_prices), "ccxt", 10, ("OK", 0)),
])
def test_a_bad_ccxt_answer_lands_no_invalid_row(server, make_settings, name, fault, provider, rejected, ccxt_health):
    settings = make_settings(env={
        **base_url_env(server, "ccxt", "binance"), "QUANT_CANDLE_PROVIDERS": "ccxt,binance",
        "QUANT_SYMBOLS": "BTC/USDT",
    }, resilience=FAST_RESILIENCE)
    server.fault(KLINES, fault)
    result = materialize(settings, "2024-03-04")
    assert result.success, name
    rows, invalid, health, _ = stored(settings)
    assert invalid == 0 and {r[8:] for r in rows} == {(provider, "OK", None)}
    want = simulated("BTC/USDT", "1m", DAY, DAY + timedelta(days=1))
    assert len(rows) == want.height - rejected
    assert health["ccxt"][:2] == ccxt_health
    meta = result.asset_materializations_for_node("raw_candles")[0].metadata
    assert meta["rejected_rows"].value == rejected
    if provider == "binance":
        assert meta["fallbacks"].value == {"BTC/USDT": ["ccxt"]} and "body is not JSON" in health["ccxt"][2]
