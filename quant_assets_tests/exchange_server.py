"""A loopback HTTP server replaying the real response shapes of Binance, Coinbase, Kraken,
Dexscreener, alternative.me and Binance futures, with injectable faults.

Candle values come from the deterministic simulator, so a test can compute exactly what a
correct ingestion must store, or from a real candle file served for one symbol and interval
(:meth:`ExchangeServer.serve`). Binance's ``/api/v3/exchangeInfo`` lists the symbols, so ccxt
can load its markets here. Faults are queued per path prefix and consumed one per request
(``server.fault("/api/v3/klines", Fault.status(503))``) or set to repeat (``repeat=True``).
Nothing here reaches the internet: the server binds 127.0.0.1 on a free port.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from quant_assets.providers.simulator import SimulatorCandleProvider

_KRAKEN_ASSET = {"BTC": "XBT", "DOGE": "XDG"}
_INTERVAL_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000, "1d": 86_400_000}


@dataclass
class Fault:
    kind: str  # status | timeout | drop | malformed | transform
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    seconds: float = 0.0
    transform: Callable[[Any], Any] | None = None

    @staticmethod
    def http(status: int, retry_after: str | None = None, body: Any = None) -> Fault:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return Fault("status", status=status, headers=headers,
                     body=body if body is not None else {"code": -1, "msg": f"injected {status}"})

    @staticmethod
    def timeout(seconds: float) -> Fault:
        return Fault("timeout", seconds=seconds)

    @staticmethod
    def drop() -> Fault:
        return Fault("drop")

    @staticmethod
    def malformed() -> Fault:
        return Fault("malformed")

    @staticmethod
    def change(transform: Callable[[Any], Any]) -> Fault:
        return Fault("transform", transform=transform)

    @staticmethod
    def echo(status: int = 200, shape: str = "rows") -> Fault:
        """A misbehaving upstream or mirror that echoes what it was sent (every request header,
        so the API key too) and the server's ``canaries`` back: in response headers
        (``X-Echo-<name>``, and ``Retry-After``) and in the body, shaped as ``rows`` (a JSON list of
        one-value rows: a malformed 200 klines page), ``padded`` (one row whose value puts the
        secret across the 80th character of its text), ``object`` (an error object with ``msg``),
        ``kraken`` (a Kraken ``error`` array) or ``text`` (not JSON)."""
        return Fault("echo", status=status, body=shape)


def _naive(ms: int) -> datetime:
    return datetime(1970, 1, 1) + timedelta(milliseconds=ms)


def _ms(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1)).total_seconds() * 1000)


class ExchangeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, symbols: list[str], seed: int = 42, latency_s: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.sim = SimulatorCandleProvider(seed=seed)
        self.symbols = list(symbols)
        self.latency_s = latency_s
        self.now: datetime = datetime.now(UTC).replace(tzinfo=None)
        self.requests: list[tuple[str, dict[str, str], dict[str, str]]] = []  # path, query, headers
        self._faults: dict[str, list[tuple[Fault, bool]]] = {}
        self._lock = threading.Lock()
        self.used_weight = 0
        self.in_flight = self.max_in_flight = 0  # requests being answered now, and the most at once
        self.dex_pairs: dict[str, dict] = {}
        self.canaries: list[str] = []   # values ``Fault.echo`` sends back besides the request headers
        self.echoes = 0                 # responses sent by ``Fault.echo``
        self.fear_greed: list[dict] = []
        self.funding: dict[str, list[dict]] = {}
        self._cache: dict[tuple, list] = {}
        self._served: dict[tuple[str, str], list[tuple]] = {}  # (symbol, interval): rows of a real file
        self._json: dict[tuple, bytes] = {}
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    # -- control ---------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> ExchangeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def fault(self, prefix: str, fault: Fault, times: int = 1, repeat: bool = False) -> None:
        with self._lock:
            queue = self._faults.setdefault(prefix, [])
            queue.extend([(fault, repeat)] * (1 if repeat else times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def reset(self) -> None:
        """No faults, no recorded requests, no canaries: a clean slate between tests."""
        self.clear_faults()
        self.requests.clear()
        self.canaries = []
        self.max_in_flight = 0

    def take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for prefix, queue in self._faults.items():
                if path.startswith(prefix) and queue:
                    fault, repeat = queue[0]
                    if not repeat:
                        queue.pop(0)
                    return fault
        return None

    def count(self, prefix: str) -> int:
        return sum(1 for path, _, _ in self.requests if path.startswith(prefix))

    def serve(self, symbol: str, interval: str, frame: Any) -> None:
        """Answer ``symbol``'s ``interval`` candles from ``frame`` (``ts``, open .. volume, and
        ``quote_volume`` when it has one) instead of the simulator's."""
        if symbol not in self.symbols:
            self.symbols.append(symbol)
        qv = frame["quote_volume"] if "quote_volume" in frame.columns else [None] * frame.height
        self._served[(symbol, interval)] = [
            (_ms(ts), o, h, lo, c, v, q) for (ts, o, h, lo, c, v), q in zip(
                frame.select("ts", "open", "high", "low", "close", "volume").iter_rows(), qv, strict=True)
        ]

    # -- data --------------------------------------------------------------------------------------
    def _symbol(self, code: str, style: str) -> str | None:
        for symbol in self.symbols:
            base, quote = symbol.split("/")
            codes = {
                "binance": base + quote,
                "coinbase": f"{base}-{quote}",
                "kraken": _KRAKEN_ASSET.get(base, base) + _KRAKEN_ASSET.get(quote, quote),
            }
            if codes[style] == code:
                return symbol
        return None

    def row_json(self, row: tuple, interval: str) -> bytes:
        key = (row, interval)
        encoded = self._json.get(key)
        if encoded is None:
            encoded = self._json[key] = json.dumps(binance_row(row, interval)).encode()
        return encoded

    def candles(self, symbol: str, interval: str, start: datetime, end: datetime) -> list[tuple]:
        """Simulated (or served) candles ``[start, end)`` as ``(ts_ms, o, h, l, c, v, qv)`` rows,
        cached by day."""
        if (symbol, interval) in self._served:
            return [r for r in self._served[(symbol, interval)] if _ms(start) <= r[0] < _ms(end)]
        rows: list[tuple] = []
        day = datetime(start.year, start.month, start.day)
        while day < end:
            key = (symbol, interval, day)
            if key not in self._cache:
                frame = self.sim.fetch_candles(symbol, interval, day, day + timedelta(days=1))
                self._cache[key] = [
                    (_ms(r[0]), *r[1:]) for r in frame.select(
                        "ts", "open", "high", "low", "close", "volume", "quote_volume").iter_rows()
                ]
            rows.extend(r for r in self._cache[key] if _ms(start) <= r[0] < _ms(end))
            day += timedelta(days=1)
        return rows


def binance_row(r: tuple, interval: str) -> list:
    quote_volume = repr(r[6]) if r[6] is not None else "0"  # a served file without quote volume
    return [r[0], repr(r[1]), repr(r[2]), repr(r[3]), repr(r[4]), repr(r[5]),
            r[0] + _INTERVAL_MS[interval] - 1, quote_volume, 100, "0.0", "0.0", "0"]


def binance_symbol_info(symbol: str) -> dict:
    """One ``symbols`` entry of Binance's ``GET /api/v3/exchangeInfo``, as the real API writes it."""
    base, quote = symbol.split("/")
    return {
        "symbol": base + quote, "status": "TRADING", "baseAsset": base, "baseAssetPrecision": 8,
        "quoteAsset": quote, "quotePrecision": 8, "quoteAssetPrecision": 8, "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8, "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT",
                                                      "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True, "ocoAllowed": True, "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": True,
        "cancelReplaceAllowed": True, "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.00000001", "maxPrice": "1000000.00000000",
             "tickSize": "0.00000001"},
            {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
        ],
        "permissions": [], "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


class _Handler(BaseHTTPRequestHandler):
    server: ExchangeServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def do_GET(self) -> None:  # noqa: N802
        parsed = urlparse(self.path)
        path = parsed.path
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        srv = self.server
        with srv._lock:
            srv.requests.append((path, query, {k.lower(): v for k, v in self.headers.items()}))
            srv.in_flight += 1
            srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
        try:
            self._answer(srv, path, query)
        finally:
            with srv._lock:
                srv.in_flight -= 1

    def _answer(self, srv: ExchangeServer, path: str, query: dict[str, str]) -> None:
        if srv.latency_s:
            time.sleep(srv.latency_s)
        fault = srv.take_fault(path)
        if fault and fault.kind == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        if fault and fault.kind == "timeout":
            time.sleep(fault.seconds)
        if fault and fault.kind == "status":
            return self._send(fault.status, fault.body, fault.headers)
        if fault and fault.kind == "malformed":
            return self._send(200, b'{"truncated": [1, 2', {})
        if fault and fault.kind == "echo":
            return self._echo(fault)
        try:
            status, body, headers = self._route(path, query, raw_ok=fault is None)
        except Exception as exc:  # a bug in the fake is a 500, visible in the test
            return self._send(500, {"error": repr(exc)}, {})
        if fault and fault.kind == "transform" and fault.transform:
            body = fault.transform(body)
        self._send(status, body, headers)

    def _echo(self, fault: Fault) -> None:
        srv = self.server
        sent = {k: v for k, v in self.headers.items()}
        values = [*srv.canaries, *sent.values()]  # secrets first: they must survive any cut to be seen
        headers = {f"X-Echo-{k}": v for k, v in sent.items()}
        headers["Retry-After"] = srv.canaries[0] if srv.canaries else "soon"
        shape = fault.body
        if shape == "rows":
            body: Any = [[v] for v in values]
        elif shape == "padded":
            body = [["~" * 60 + v + "~" * 60] for v in values]
        elif shape == "object":
            body = {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action; sent " + " ".join(values),
                    "message": " ".join(values), "echo": sent}
        elif shape == "kraken":
            body = {"error": [f"EGeneral:Invalid arguments:{v}" for v in values], "result": {}}
        else:
            body = ("mirror echo " + " ".join(values) + "\n" + "\n".join(f"{k}: {v}" for k, v in sent.items())).encode()
        with srv._lock:
            srv.echoes += 1
        self._send(fault.status, body, headers)

    def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    # -- routes ------------------------------------------------------------------------------------
    def _route(self, path: str, q: dict[str, str], raw_ok: bool = False) -> tuple[int, Any, dict[str, str]]:
        srv = self.server
        if path == "/api/v3/klines":
            symbol = srv._symbol(q.get("symbol", ""), "binance")
            if symbol is None:
                return 400, {"code": -1121, "msg": "Invalid symbol."}, {}
            limit = int(q.get("limit", 500))
            if limit > 1000:
                return 400, {"code": -1130, "msg": "Invalid limit."}, {}
            interval = q["interval"]
            start = _naive(int(q["startTime"]))
            end = _naive(int(q["endTime"]) + 1) if "endTime" in q else start + timedelta(days=30)
            rows = srv.candles(symbol, interval, start, end)[:limit]
            with srv._lock:
                srv.used_weight += 2
                weight = srv.used_weight
            headers = {"X-MBX-USED-WEIGHT-1m": str(weight)}
            if raw_ok:  # the same bytes, from per-row JSON encoded once (keeps the fake off the CPU)
                return 200, b"[" + b",".join(srv.row_json(r, interval) for r in rows) + b"]", headers
            return 200, [binance_row(r, interval) for r in rows], headers
        if path == "/api/v3/exchangeInfo":
            return 200, {"timezone": "UTC", "serverTime": _ms(srv.now), "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}],
                "exchangeFilters": [], "symbols": [binance_symbol_info(s) for s in srv.symbols]}, {}
        if path == "/api/v3/ticker/bookTicker":
            symbol = srv._symbol(q.get("symbol", ""), "binance")
            if symbol is None:
                return 400, {"code": -1121, "msg": "Invalid symbol."}, {}
            close = self._last_close(symbol)
            return 200, {"symbol": q["symbol"], "bidPrice": repr(close * 0.9999), "bidQty": "1.0",
                         "askPrice": repr(close * 1.0001), "askQty": "1.0"}, {}
        if path.startswith("/products/"):
            parts = path.split("/")
            symbol = srv._symbol(parts[2], "coinbase")
            if symbol is None:
                return 404, {"message": "NotFound"}, {}
            if parts[3] == "ticker":
                close = self._last_close(symbol)
                return 200, {"ask": repr(close * 1.0001), "bid": repr(close * 0.9999), "volume": "1207.5",
                             "trade_id": "18502105", "price": repr(close), "size": "0.0073",
                             "time": srv.now.isoformat() + "Z"}, {}
            granularity = int(q.get("granularity", 0))
            if granularity not in (60, 300, 900, 3600, 21600, 86400):
                return 400, {"message": "Unsupported granularity"}, {}
            start = datetime.fromisoformat(q["start"].replace("Z", ""))
            end = datetime.fromisoformat(q["end"].replace("Z", ""))
            if (end - start).total_seconds() / granularity + 1 > 300:
                return 400, {"message": "granularity too small for the requested time range"}, {}
            interval = {60: "1m", 300: "5m", 900: "15m", 3600: "1h", 86400: "1d"}[granularity]
            rows = srv.candles(symbol, interval, start, end + timedelta(seconds=granularity))
            return 200, [[r[0] // 1000, r[3], r[2], r[1], r[4], r[5]] for r in reversed(rows)], {}
        if path == "/0/public/OHLC":
            symbol = srv._symbol(q.get("pair", ""), "kraken")
            if symbol is None:
                return 200, {"error": ["EQuery:Unknown asset pair"]}, {}
            minutes = int(q.get("interval", 1))
            interval = {1: "1m", 5: "5m", 15: "15m", 60: "1h", 1440: "1d"}[minutes]
            step = timedelta(minutes=minutes)
            open_candle = datetime.fromtimestamp(
                (_ms(srv.now) // (minutes * 60_000)) * minutes * 60, UTC).replace(tzinfo=None)
            rows = srv.candles(symbol, interval, open_candle - step * 720, open_candle + step)[-721:]
            since = int(q.get("since", 0))
            rows = [r for r in rows if r[0] // 1000 > since]
            key = "X" + q["pair"][:3] + "Z" + q["pair"][3:] if len(q["pair"]) == 6 else q["pair"]
            body_rows = [[r[0] // 1000, repr(r[1]), repr(r[2]), repr(r[3]), repr(r[4]),
                          repr((r[2] + r[3] + r[4]) / 3), repr(r[5]), 10] for r in rows]
            return 200, {"error": [], "result": {key: body_rows, "last": rows[-1][0] // 1000 if rows else 0}}, {}
        if path == "/0/public/Ticker":
            symbol = srv._symbol(q.get("pair", ""), "kraken")
            if symbol is None:
                return 200, {"error": ["EQuery:Unknown asset pair"]}, {}
            close = self._last_close(symbol)
            return 200, {"error": [], "result": {"X" + q["pair"]: {
                "a": [repr(close * 1.0001), "1", "1.000"], "b": [repr(close * 0.9999), "1", "1.000"],
                "c": [repr(close), "0.0006"], "v": ["1", "1"]}}}, {}
        if path.startswith("/latest/dex/pairs/"):
            # Like the real API: an EVM (0x hex) address is found in any letter case and answered
            # in the form the pair is stored in (EIP-55 checksummed); base58 must match exactly.
            _, _, _, _, chain, addresses = path.split("/", 5)
            stored = {_dex_key(key): pair for key, pair in srv.dex_pairs.items()}
            pairs = [stored[_dex_key(f"{chain}/{a}")] for a in addresses.split(",") if _dex_key(f"{chain}/{a}") in stored]
            return 200, {"schemaVersion": "1.0.0", "pairs": pairs or None}, {}
        if path == "/latest/dex/search":
            term = q.get("q", "").lower()
            pairs = [p for p in srv.dex_pairs.values() if term in json.dumps(p).lower()]
            return 200, {"schemaVersion": "1.0.0", "pairs": pairs}, {}
        if path == "/fng/":
            limit = int(q.get("limit", 1))
            data = srv.fear_greed if limit == 0 else srv.fear_greed[:limit]
            return 200, {"name": "Fear and Greed Index", "data": data, "metadata": {"error": None}}, {}
        if path == "/fapi/v1/fundingRate":
            rows = srv.funding.get(q.get("symbol", ""), [])
            start, end = int(q.get("startTime", 0)), int(q.get("endTime", 2**62))
            limit = min(int(q.get("limit", 100)), 1000)
            return 200, [r for r in rows if start <= r["fundingTime"] <= end][:limit], {}
        return 404, {"error": f"no route {path}"}, {}

    def _last_close(self, symbol: str) -> float:
        now = self.server.now.replace(second=0, microsecond=0)
        rows = self.server.candles(symbol, "1m", now - timedelta(minutes=30), now)
        return float(rows[-1][4])


def _dex_key(pair: str) -> str:
    chain, _, address = pair.partition("/")
    is_hex = address.startswith("0x") and all(c in "0123456789abcdefABCDEF" for c in address[2:])
    return f"{chain}/{address.lower() if is_hex else address}"


def dex_pair(chain: str, address: str, price_native: str | None = "0.007055", price_usd: str | None = "0.004531",
             minimal: bool = False) -> dict:
    """A Dexscreener pair object; ``minimal`` leaves out every optional field."""
    pair: dict[str, Any] = {
        "chainId": chain, "dexId": "raydium", "url": f"https://dexscreener.com/{chain}/{address}",
        "pairAddress": address,
        "baseToken": {"address": "So11111111111111111111111111111111111111112", "name": "Token", "symbol": "TKN"},
        "quoteToken": {"address": "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", "name": "USD Coin", "symbol": "USDC"},
        "priceNative": price_native,
    }
    if not minimal:
        pair.update({"priceUsd": price_usd, "txns": {"h24": {"buys": 14, "sells": 768}},
                     "volume": {"h24": 250142.62}, "liquidity": {"usd": 879284.45}, "fdv": 751181.04,
                     "pairCreatedAt": 1710685033000})
    return pair


def corrupt_prices(rows: list, n: int = 5) -> list:
    """A klines page with ``n`` negative opens (rows 10..) and ``n`` zero closes (rows 100..)."""
    rows = [list(r) for r in rows]
    for i in range(n):
        rows[10 + i][1] = "-1.0"
        rows[100 + i][4] = "0.00000000"
    return rows


def start_server(symbols: list[str], seed: int = 42, latency_s: float = 0.0) -> ExchangeServer:
    return ExchangeServer(symbols, seed=seed, latency_s=latency_s).start()


# Resilience settings that keep the fault matrix to milliseconds of waiting.
FAST_RESILIENCE = {
    "timeout_s": 0.5,
    "max_attempts": 3,
    "backoff_multiplier_s": 0.001,
    "backoff_max_s": 0.01,
    "retry_after_max_s": 0.5,
    "breaker_failures": 2,
    "breaker_cooldown_s": 60,
    "lkg_ttl_s": 900,
    "max_workers": 2,
}


def base_url_env(server: ExchangeServer, *providers: str) -> dict[str, str]:
    names = providers or ("binance", "coinbase", "kraken", "dexscreener", "binance_futures", "alternative_me")
    return {f"QUANT_{name.upper()}_BASE_URL": server.url for name in names}
