"""Each adapter against the loopback server's replay of the real response shapes."""

import hashlib
import io
import zipfile
from datetime import datetime, timedelta

import polars as pl
import pytest

from quant_assets import config
from quant_assets.config import ConfigError, ResilienceSettings, load_settings
from quant_assets.providers import registry
from quant_assets.providers.alternative import BinanceFundingProvider, FearGreedProvider
from quant_assets.providers.base import CANDLE_SCHEMA, ClientError, ProviderError, RetryableError
from quant_assets.providers.binance import BinanceProvider
from quant_assets.providers.binance_archive import BinanceArchiveProvider
from quant_assets.providers.coinbase import CoinbaseProvider
from quant_assets.providers.dexscreener import DexscreenerProvider, address_key
from quant_assets.providers.kraken import KrakenProvider
from quant_assets.providers.simulator import SimulatorCandleProvider
from quant_assets_tests.exchange_server import Fault, dex_pair, start_server

FAST = ResilienceSettings(timeout_s=0.5, max_attempts=3, backoff_multiplier_s=0.001, backoff_max_s=0.01, rate_scale=50)
DAY = datetime(2024, 3, 4)
PRICES = ["open", "high", "low", "close", "volume"]


@pytest.fixture(scope="module")
def server():
    srv = start_server(["BTC/USDT", "ETH/USDT", "BTC/USD"])
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _clean(server):
    server.clear_faults()
    server.requests.clear()


def expected(symbol, interval, start, end):
    return SimulatorCandleProvider(42).fetch_candles(symbol, interval, start, end)


def test_registry_names_match_the_config_constants():
    assert tuple(registry.CANDLE_PROVIDER_FACTORIES) == config.CANDLE_PROVIDERS
    assert tuple(registry.SPOT_PROVIDER_FACTORIES) == config.SPOT_PROVIDERS
    assert tuple(registry.DEX_PROVIDER_FACTORIES) == config.DEX_PROVIDERS
    assert tuple(registry.ALTERNATIVE_FACTORIES) == config.ALTERNATIVE_PROVIDERS
    assert set(registry.HTTP_PROVIDERS) == set(config.HTTP_BASE_URLS)


@pytest.mark.parametrize(("env", "key"), [
    ({"QUANT_CANDLE_PROVIDERS": "binance,nasdaq"}, "'providers.candles'"),
    ({"QUANT_SPOT_PROVIDERS": "files"}, "'providers.spot'"),
    ({"QUANT_DEX_PROVIDERS": "uniswap"}, "'providers.dex'"),
    ({"QUANT_ALTERNATIVE_PROVIDERS": "glassnode"}, "'providers.alternative'"),
    ({"QUANT_BINANCE_BASE_URL": "ftp://x"}, "'providers.base_urls.binance'"),
    ({"QUANT_DEX_PAIRS": "solana"}, "'providers.dex_pairs'"),
    ({"QUANT_POLL_INTERVAL_S": "0"}, "'polling.interval_s'"),
])
def test_invalid_provider_settings_fail_in_one_line_naming_the_key(env, key):
    with pytest.raises(ConfigError) as info:
        load_settings(config_file=None, env=env)
    assert key in str(info.value) and "\n" not in str(info.value)


def test_base_urls_and_chains_come_from_env():
    s = load_settings(config_file=None, env={"QUANT_COINBASE_BASE_URL": "http://127.0.0.1:9/",
                                             "QUANT_CANDLE_PROVIDERS": "binance,coinbase,kraken",
                                             "QUANT_SPOT_PROVIDERS": "kraken", "QUANT_FILES_DIR": "/tmp/x"})
    assert s.ingestion.base_url("coinbase") == "http://127.0.0.1:9"
    assert s.ingestion.base_url("binance") == "https://api.binance.com"
    assert s.candle_providers == ("binance", "coinbase", "kraken") and s.ingestion.spot_providers == ("kraken",)
    assert str(s.ingestion.files_dir) == "/tmp/x"


def test_binance_pages_1000_rows_per_request_and_reproduces_every_candle(server):
    provider = BinanceProvider(server.url, FAST)
    frame = provider.fetch_candles("BTC/USDT", "1m", DAY, DAY + timedelta(days=1))
    want = expected("BTC/USDT", "1m", DAY, DAY + timedelta(days=1))
    assert frame.schema == pl.Schema(CANDLE_SCHEMA)
    assert frame.select(["ts", *PRICES]).equals(want.select(["ts", *PRICES]))
    assert frame["quote_volume"].to_list() == want["quote_volume"].to_list()
    klines = [q for p, q, _ in server.requests if p == "/api/v3/klines"]
    assert len(klines) == 2 and all(int(q["limit"]) == 1000 for q in klines)
    assert provider.state.metrics.used_weight == server.used_weight


def test_binance_duplicate_and_out_of_order_pages_are_merged_in_order(server):
    provider = BinanceProvider(server.url, FAST)
    server.fault("/api/v3/klines", Fault.change(lambda rows: list(reversed(rows + rows[:50]))))
    frame = provider.fetch_candles("BTC/USDT", "5m", DAY, DAY + timedelta(days=1))
    want = expected("BTC/USDT", "5m", DAY, DAY + timedelta(days=1))
    assert frame.select(["ts", *PRICES]).equals(want.select(["ts", *PRICES]))


def test_coinbase_pages_300_buckets_newest_first_with_missing_buckets(server):
    provider = CoinbaseProvider(server.url, FAST)
    frame = provider.fetch_candles("BTC/USDT", "1m", DAY, DAY + timedelta(days=1))
    want = expected("BTC/USDT", "1m", DAY, DAY + timedelta(days=1))
    assert want.height < 1440  # the simulator drops candles: buckets the server leaves out
    assert frame.select(["ts", *PRICES]).equals(want.select(["ts", *PRICES]))
    assert frame["quote_volume"].null_count() == frame.height
    assert server.count("/products/BTC-USDT/candles") == 5  # ceil(1440 / 300)


def test_coinbase_rejects_granularities_it_does_not_have(server):
    with pytest.raises(ClientError):
        CoinbaseProvider(server.url, FAST).fetch_candles("BTC/USD", "4h", DAY, DAY + timedelta(days=1))
    assert server.count("/products") == 0


def test_kraken_maps_pairs_drops_the_open_candle_and_refuses_old_windows(server):
    provider = KrakenProvider(server.url, FAST)
    now = server.now.replace(second=0, microsecond=0)
    start = now - timedelta(hours=3)
    frame = provider.fetch_candles("BTC/USDT", "1m", start, now + timedelta(minutes=5))
    assert server.requests[-1][1]["pair"] == "XBTUSDT"
    assert frame["ts"].max() < now  # the open candle (ts == now) is not stored
    want = expected("BTC/USDT", "1m", start, now)
    assert frame.select(["ts", *PRICES]).equals(want.select(["ts", *PRICES]))
    with pytest.raises(ProviderError, match="720 most recent"):
        provider.fetch_candles("BTC/USDT", "1m", DAY, DAY + timedelta(days=1))


def test_kraken_error_array_rate_limit_is_retried_unknown_pair_is_not(server):
    provider = KrakenProvider(server.url, FAST)
    now = server.now.replace(second=0, microsecond=0)
    server.fault("/0/public/OHLC", Fault.change(lambda _: {"error": ["EAPI:Rate limit exceeded"]}))
    server.fault("/0/public/OHLC", Fault.change(lambda _: {"error": ["EService:Unavailable"]}))
    assert provider.fetch_candles("ETH/USDT", "1m", now - timedelta(hours=1), now).height > 0
    assert server.count("/0/public/OHLC") == 3
    with pytest.raises(ClientError, match="EQuery:Unknown asset pair"):
        provider.fetch_candles("DOGE/EUR", "1m", now - timedelta(hours=1), now)
    server.fault("/0/public/OHLC", Fault.change(lambda _: {"error": ["EGeneral:Too many requests"]}), repeat=True)
    with pytest.raises(RetryableError):
        provider.fetch_candles("ETH/USDT", "1m", now - timedelta(hours=1), now)


def test_tickers_of_all_three_exchanges(server):
    for cls in (BinanceProvider, CoinbaseProvider, KrakenProvider):
        quotes = cls(server.url, FAST).fetch_spot(["BTC/USDT", "ETH/USDT"])
        assert quotes["symbol"].to_list() == ["BTC/USDT", "ETH/USDT"]
        assert (quotes["price"] > 0).all() and (quotes["bid"] < quotes["ask"]).all()


def test_dexscreener_string_prices_and_missing_optional_fields(server):
    server.dex_pairs = {
        "solana/PairAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1": dex_pair("solana", "PairAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1"),
        "solana/PairBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB2": dex_pair(
            "solana", "PairBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB2", price_native="1.5", minimal=True),
    }
    provider = DexscreenerProvider(server.url, FAST)
    frame = provider.fetch_dex(list(server.dex_pairs))
    assert server.count("/latest/dex/pairs/solana/") == 1  # one comma-separated call
    full, minimal = frame.row(0, named=True), frame.row(1, named=True)
    assert full["price_native"] == 0.007055 and full["price_usd"] == 0.004531 and full["liquidity_usd"] == 879284.45
    assert full["txns_h24_sells"] == 768
    assert minimal["price_native"] == 1.5
    assert all(minimal[k] is None for k in ("price_usd", "liquidity_usd", "volume_h24", "fdv", "txns_h24_buys"))
    assert provider.search("TKN").height == 2


CHECKSUMMED = "0x88e6A0c2dDD26FEEb64F039a2c41296FcB3f5640"  # EIP-55 form, as Dexscreener answers
BASE58 = "7qbRF6YsyGuLUVs6Y1q64bdVrfe4ZcUUz1JRdoVNUJnm"


def test_address_key_folds_case_of_hex_only():
    assert address_key(CHECKSUMMED) == address_key(CHECKSUMMED.lower()) == CHECKSUMMED.lower()
    assert address_key(BASE58) == BASE58 and address_key(BASE58.swapcase()) != address_key(BASE58)
    assert address_key("0xZZ") == "0xZZ"  # not hex: compared exactly


def test_dexscreener_lowercase_evm_address_matches_the_checksummed_answer(server):
    server.dex_pairs = {f"ethereum/{CHECKSUMMED}": dex_pair("ethereum", CHECKSUMMED),
                        f"solana/{BASE58}": dex_pair("solana", BASE58)}
    provider = DexscreenerProvider(server.url, FAST)
    asked = [f"ethereum/{CHECKSUMMED.lower()}", f"solana/{BASE58}"]
    frame = provider.fetch_dex(asked)
    assert server.requests[0][0] == f"/latest/dex/pairs/ethereum/{CHECKSUMMED.lower()}"
    assert (frame["chain_id"] + "/" + frame["pair_address"]).to_list() == asked  # keyed as configured


def test_dexscreener_base58_address_in_another_case_is_another_pair(server):
    server.dex_pairs = {f"solana/{BASE58}": dex_pair("solana", BASE58)}
    provider = DexscreenerProvider(server.url, FAST)
    assert provider.fetch_dex([f"solana/{BASE58.swapcase()}"]).is_empty()  # the API does not find it
    # Even an answer in another case is not taken for the pair asked for.
    server.fault("/latest/dex/pairs/", Fault.change(
        lambda body: {**body, "pairs": [{**p, "pairAddress": BASE58.swapcase()} for p in body["pairs"]]}))
    assert provider.fetch_dex([f"solana/{BASE58}"])["pair_address"].to_list() == [BASE58.swapcase()]


def test_alternative_me_and_funding_parsers(server):
    server.fear_greed = [{"value": "47", "value_classification": "Neutral", "timestamp": "1709510400"}]
    frame = FearGreedProvider(server.url, FAST).fetch(limit=0)
    assert frame.row(0) == (datetime(2024, 3, 4), 47, "Neutral")
    base = 1709510400000
    server.funding = {"BTCUSDT": [{"symbol": "BTCUSDT", "fundingRate": "-0.00037500", "fundingTime": base + i * 28800000,
                                   "markPrice": "34287.54619963"} for i in range(3)]}
    rates = BinanceFundingProvider(server.url, FAST).fetch("BTC/USDT", DAY, DAY + timedelta(days=1))
    assert rates["funding_rate"].to_list() == [-0.000375] * 3
    assert rates["ts"].to_list() == [DAY + timedelta(hours=8 * i) for i in range(3)]


def test_api_key_is_sent_but_never_shown(server, monkeypatch):
    secret = "sEcReT-kEy-123456"
    monkeypatch.setenv("QUANT_BINANCE_API_KEY", secret)
    provider = BinanceProvider(server.url, FAST)
    server.fault("/api/v3/klines", Fault.http(401, body={"code": -2015, "msg": f"Invalid API-key {secret}"}))
    with pytest.raises(ClientError) as info:
        provider.fetch_candles("BTC/USDT", "1m", DAY, DAY + timedelta(hours=1))
    assert server.requests[-1][2]["x-mbx-apikey"] == secret
    assert secret not in str(info.value) and secret not in repr(provider)
    assert secret not in (provider.state.metrics.last_error or "")


# -- Binance public archive zips ----------------------------------------------------------------

def _archive(tmp_path, name, rows, header=False, checksum=True, corrupt=False):
    buffer = io.BytesIO()
    text = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
            "taker_buy_quote_volume,ignore\n" if header else "")
    text += "".join(",".join(str(v) for v in row) + "\n" for row in rows)
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name.replace(".zip", ".csv"), text)
    data = buffer.getvalue()
    path = tmp_path / name
    path.write_bytes(data)
    if checksum:
        digest = hashlib.sha256(data if not corrupt else data + b"x").hexdigest()
        (tmp_path / (name + ".CHECKSUM")).write_text(f"{digest}  {name}\n")
    return path


def _kline_rows(symbol, start, scale):
    want = expected(symbol, "1m", start, start + timedelta(days=1))
    step = 60 * scale
    return want, [[int((r[0] - datetime(1970, 1, 1)).total_seconds()) * scale, r[1], r[2], r[3], r[4], r[5],
                   int((r[0] - datetime(1970, 1, 1)).total_seconds()) * scale + step - 1, r[6], 10, 0, 0, 0]
                  for r in want.select("ts", "open", "high", "low", "close", "volume", "quote_volume").iter_rows()]


def test_archive_spot_ms_and_microseconds_and_futures_header(tmp_path):
    old, new = datetime(2024, 12, 31), datetime(2025, 1, 2)
    want_old, rows_old = _kline_rows("BTC/USDT", old, 1000)
    _archive(tmp_path, "BTCUSDT-1m-2024-12-31.zip", rows_old)
    want_new, rows_new = _kline_rows("BTC/USDT", new, 1_000_000)  # microseconds from 2025
    assert rows_new[0][0] == 1735776000000000
    _archive(tmp_path, "BTCUSDT-1m-2025-01.zip", rows_new)  # monthly file
    want_fut, rows_fut = _kline_rows("ETH/USDT", old, 1000)
    (tmp_path / "futures").mkdir()
    _archive(tmp_path / "futures", "ETHUSDT-1m-2024-12-31.zip", rows_fut, header=True, checksum=False)
    provider = BinanceArchiveProvider(tmp_path)
    for symbol, day, want in (("BTC/USDT", old, want_old), ("BTC/USDT", new, want_new), ("ETH/USDT", old, want_fut)):
        frame = provider.fetch_candles(symbol, "1m", day, day + timedelta(days=1))
        assert frame.select(["ts", *PRICES, "quote_volume"]).equals(want.select(["ts", *PRICES, "quote_volume"]))


def test_archive_checksum_mismatch_rejects_the_file(tmp_path):
    _, rows = _kline_rows("BTC/USDT", DAY, 1000)
    _archive(tmp_path, "BTCUSDT-1m-2024-03-04.zip", rows, corrupt=True)
    with pytest.raises(ProviderError, match="CHECKSUM"):
        BinanceArchiveProvider(tmp_path).fetch_candles("BTC/USDT", "1m", DAY, DAY + timedelta(days=1))
