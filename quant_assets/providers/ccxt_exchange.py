"""Candles from any ccxt exchange (``providers.ccxt_exchange``), through the platform's limiter,
retries, circuit breaker and metrics (:class:`~quant_assets.providers.resilient.ResilientProvider`).

Rate limit: ccxt's own limiter is off (``enableRateLimit=False``). Every HTTP request ccxt makes
first takes ccxt's cost for it (``calculate_rate_limiter_cost``, e.g. Binance klines by limit) from
the platform's token bucket, refilled at ccxt's documented pace for the exchange: 1000 /
``rateLimit`` cost units per second, bursts of one second's worth, times ``resilience.rate_scale``.

One platform call = one ccxt method: the spot markets once per provider (only spot where the
exchange lets one choose, ``options.fetchMarkets.types``; no margin lists, no currencies), then one
``fetch_ohlcv`` page per call. Paging: ``since`` = the window's start, ``limit`` = the smaller of
the exchange's page size (``features.spot.fetchOHLCV.limit``) and the bars left in the window; the
next page starts one interval after the last row; paging ends at the window's end, on an empty
page or on a page that makes no progress (a short page is not an end: exchanges cap pages
differently). Rows outside ``[start, end)`` are dropped, identical rows merged, rows sharing a
``ts`` but differing left for the quality gate. ccxt's OHLCV has no quote volume: it is null.

Errors, ccxt class -> platform class:

* ``NetworkError`` (``RequestTimeout``, ``ExchangeNotAvailable``, ``DDoSProtection``,
  ``RateLimitExceeded``, ...) -> :class:`RetryableError` carrying the response's ``Retry-After``;
  a ``Retry-After`` above ``resilience.retry_after_max_s`` -> :class:`BannedError` (breaker open
  until then);
* ``AuthenticationError`` (and ``PermissionDenied``, ...) -> :class:`ClientError` 401: never
  retried, counts against health;
* ``BadSymbol``, ``BadRequest`` -> :class:`ClientError` 400: never retried, says nothing about health;
* any other ccxt error -> :class:`RetryableError` when the HTTP status was 408/418/429/5xx (ccxt
  reads an exchange's own error codes first), else :class:`ProviderError` (not retried, counts);
* a body that is not JSON (ccxt would return no rows), a row that is not ``[ms, o, h, l, c, v]``
  numbers, or a shape ccxt's parser trips on -> :class:`MalformedResponse` (not retried, counts).

Provenance: rows carry ``provider = 'ccxt'``, the registry name, so ``provider_health`` and bars'
``provider_mix`` name it; the exchange is ``providers.ccxt_exchange``, part of the settings
fingerprint (so of every manifest) whenever ccxt is in the chain, and every error names it
(``ccxt(okx): ...``). ``QUANT_CCXT_BASE_URL`` points every API URL of the exchange at a mirror: the
``scheme://host`` of each is replaced by it, the path kept.

Keys are optional (OHLCV is public): ``QUANT_CCXT_API_KEY``, ``QUANT_CCXT_API_SECRET`` and
``QUANT_CCXT_PASSPHRASE`` (ccxt's ``password``), from the environment only; they are scrubbed from
every error, metric, log record and ``repr``.

A ccxt exchange object is not thread-safe (one ``requests`` session, the last response kept on
it), so each attempt borrows one from a pool; all share the markets loaded once.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ccxt
import polars as pl

from quant_assets.config import ResilienceSettings
from quant_assets.providers import frames
from quant_assets.providers.base import ClientError, MalformedResponse, ProviderError
from quant_assets.providers.resilience import one_line
from quant_assets.providers.resilient import RETRY_STATUS, ResilientProvider, retry_after_seconds
from quant_assets.secrets import scrub

T = TypeVar("T")
EPOCH = datetime(1970, 1, 1)
CREDENTIALS = {"apiKey": "QUANT_CCXT_API_KEY", "secret": "QUANT_CCXT_API_SECRET", "password": "QUANT_CCXT_PASSPHRASE"}


@functools.cache
def platform_exchange_class(exchange_id: str) -> type:
    """ccxt's class for ``exchange_id``, each request charged to ``quant_acquire`` and its HTTP
    status kept in ``last_status``."""
    if exchange_id not in ccxt.exchanges:
        raise ProviderError(f"ccxt {ccxt.__version__} has no exchange {exchange_id!r}")
    base = getattr(ccxt, exchange_id)

    class PlatformLimited(base):  # type: ignore[misc, valid-type]
        quant_acquire: Callable[[float], None]
        last_status: int | None = None

        def fetch2(self, path, api=["public"], method="GET", params={}, config={}):  # noqa: B006 (ccxt's signature)
            self.quant_acquire(float(self.calculate_rate_limiter_cost(api, method, path, params, config)))
            return super().fetch2(path, api, method, params, config)

        def on_rest_response(self, code, reason, url, method, response_headers, response_body, request_headers,
                             request_body):
            self.last_status = code
            return super().on_rest_response(code, reason, url, method, response_headers, response_body,
                                            request_headers, request_body)

    PlatformLimited.__name__ = PlatformLimited.__qualname__ = f"PlatformLimited_{exchange_id}"
    return PlatformLimited


def with_origin(urls: Any, base_url: str) -> Any:
    """ccxt's ``urls['api']`` (a URL or a nested mapping of them) with each URL's
    ``scheme://host`` replaced by ``base_url``, its path kept."""
    if isinstance(urls, dict):
        return {key: with_origin(value, base_url) for key, value in urls.items()}
    if isinstance(urls, str) and "://" in urls:
        parts = urlsplit(urls)
        return base_url.rstrip("/") + urls[len(f"{parts.scheme}://{parts.netloc}"):]
    return urls


def spot_only(options: dict[str, Any]) -> dict[str, Any]:
    """The ``options`` update that makes ``fetch_markets`` load spot markets only, where the
    exchange has the choice (``options.fetchMarkets.types``, ccxt's common convention), and no
    margin pair lists (``options.fetchMargins``: signed requests when keys are set)."""
    update: dict[str, Any] = {"fetchMargins": False} if "fetchMargins" in options else {}
    choice = options.get("fetchMarkets")
    if isinstance(choice, dict) and isinstance(choice.get("types"), list):
        update["fetchMarkets"] = {**choice, "types": ["spot"]}
    return update


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def ohlcv_rows(rows: object) -> list[list[Any]]:
    """ccxt's unified OHLCV rows, checked: each ``[ms, open, high, low, close, volume]`` numbers."""
    if not isinstance(rows, list):
        raise MalformedResponse(f"OHLCV answer is {type(rows).__name__}, not a list")
    for row in rows:
        if not (isinstance(row, list) and len(row) >= 6 and isinstance(row[0], int) and not isinstance(row[0], bool)
                and all(_is_number(v) for v in row[1:6])):
            raise MalformedResponse(f"OHLCV row is not [ms, open, high, low, close, volume] numbers: {frames.excerpt(row)}")
    return rows


class CcxtProvider(ResilientProvider):
    """:class:`~quant_assets.providers.base.CandleProvider` over one ccxt exchange."""

    name = "ccxt"

    def __init__(
        self,
        exchange_id: str,
        resilience: ResilienceSettings,
        base_url: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.exchange_id = exchange_id
        self.label = f"ccxt({exchange_id})"
        self.base_url = base_url.rstrip("/") if base_url else None
        credentials = {field: os.environ[var] for field, var in CREDENTIALS.items() if os.environ.get(var, "").strip()}
        self._class = platform_exchange_class(exchange_id)
        self._config = {
            "enableRateLimit": False, "timeout": int(resilience.timeout_s * 1000),
            # what the attempt reads back: the body (JSON or not), its headers (Retry-After)
            "enableLastHttpResponse": True, "enableLastJsonResponse": True, "enableLastResponseHeaders": True,
            **credentials,
        }
        self._pool_lock = threading.Lock()
        self._markets_lock = threading.Lock()
        self._markets: list[dict[str, Any]] | None = None
        first = self._new_exchange()
        rate = 1000.0 / float(first.rateLimit)  # ccxt: milliseconds per cost unit
        super().__init__(resilience, sleep, secrets=credentials.values(), rate_per_s=rate, burst=rate)
        self._idle, self._every = [first], [first]
        self.timeframes: dict[str, Any] = dict(first.timeframes or {})
        self.has_ohlcv = bool(first.has.get("fetchOHLCV"))
        ohlcv_features = ((first.features or {}).get("spot") or {}).get("fetchOHLCV") or {}
        self.page_limit: int | None = ohlcv_features.get("limit")

    def __repr__(self) -> str:  # never a key, nor a password in the base URL
        return scrub(f"CcxtProvider(exchange={self.exchange_id!r}, base_url={self.base_url!r})", extra=self._secrets)

    def close(self) -> None:
        with self._pool_lock:
            for exchange in self._every:
                exchange.session.close()

    # -- exchange objects ------------------------------------------------------------------------
    def _new_exchange(self) -> Any:
        exchange = self._class(dict(self._config))
        exchange.quant_acquire = lambda cost: self._acquire(cost)
        if self.base_url:
            exchange.urls["api"] = with_origin(exchange.urls["api"], self.base_url)
        exchange.options.update(spot_only(exchange.options))
        return exchange

    @contextmanager
    def _borrow(self) -> Iterator[Any]:
        with self._pool_lock:
            exchange = self._idle.pop() if self._idle else None
        if exchange is None:
            exchange = self._new_exchange()
            with self._pool_lock:
                self._every.append(exchange)
        if self._markets is not None and not exchange.markets:
            exchange.set_markets(self._markets)
        try:
            yield exchange
        finally:
            with self._pool_lock:
                self._idle.append(exchange)

    def _ensure_markets(self) -> None:
        with self._markets_lock:
            if self._markets is None:
                self._markets = self.resilient(self._attempt, "fetch_markets", lambda ex: ex.fetch_markets(),
                                               lambda markets: markets)

    # -- one attempt ------------------------------------------------------------------------------
    def _attempt(self, what: str, method: Callable[[Any], Any], parse: Callable[[Any], T]) -> T:
        began = time.perf_counter()
        with self._borrow() as exchange:
            exchange.last_status = None
            exchange.last_response_headers = exchange.last_http_response = exchange.last_json_response = None
            try:
                answer = method(exchange)
            except ccxt.BaseError as exc:
                error = self._classify(exc, exchange, what)
                self._record(False, began, str(error))
                raise error from None
            except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
                message = f"{self.label}: {what}: unexpected response shape: {one_line(self._scrub(str(exc)), 120)}"
                self._record(False, began, message)
                raise MalformedResponse(message) from None
            body, decoded, status = exchange.last_http_response, exchange.last_json_response, exchange.last_status
        try:
            if isinstance(body, str) and body and decoded is None:
                raise MalformedResponse(f"body is not JSON (HTTP {status}): {frames.excerpt(self._scrub(body), 60)}")
            result = parse(answer)
        except ProviderError as exc:
            message = f"{self.label}: {what}: {one_line(self._scrub(str(exc)), 200)}"
            self._record(False, began, message)
            raise MalformedResponse(message) from None
        self._record(True, began)
        return result

    def _classify(self, exc: ccxt.BaseError, exchange: Any, what: str) -> ProviderError:
        status = exchange.last_status
        message = (f"{self.label}: {what}: {type(exc).__name__}"
                   + (f" (HTTP {status})" if status else "") + f": {one_line(self._scrub(str(exc)), 160)}")
        if isinstance(exc, ccxt.NetworkError) or (not isinstance(exc, ccxt.AuthenticationError | ccxt.BadRequest)
                                                   and status is not None and (status in RETRY_STATUS or status >= 500)):
            retry_after = retry_after_seconds(exchange.last_response_headers)
            if retry_after is not None:
                message += f" (Retry-After {retry_after:g}s)"
            return self._transient(message, retry_after, status)
        if isinstance(exc, ccxt.AuthenticationError):
            return ClientError(message, status=401)
        if isinstance(exc, ccxt.BadRequest):  # BadSymbol is one
            return ClientError(message, status=400)
        return ProviderError(message)

    # -- candles ------------------------------------------------------------------------------------
    def fetch_candles(self, symbol: str, interval: str, start: datetime, end: datetime) -> pl.DataFrame:
        if not self.has_ohlcv:
            raise ClientError(f"{self.label}: the exchange has no fetchOHLCV", status=400)
        if interval not in self.timeframes:
            raise ClientError(f"{self.label}: no {interval} candles; timeframes {', '.join(self.timeframes)}", status=400)
        self._ensure_markets()
        step_ms = frames.INTERVAL_SECONDS[interval] * 1000
        cursor, end_ms = frames.epoch_us(start) // 1000, frames.epoch_us(end) // 1000
        rows: list[list[Any]] = []
        while cursor < end_ms:
            left = -(-(end_ms - cursor) // step_ms)  # bars still in the window, rounded up
            limit = min(self.page_limit, left) if self.page_limit else left
            since_text = (EPOCH + timedelta(milliseconds=cursor)).isoformat(timespec="minutes")
            page = self.resilient(
                self._attempt, f"fetch_ohlcv {symbol} {interval} since {since_text}",
                lambda ex, since=cursor, n=limit: ex.fetch_ohlcv(symbol, interval, since=since, limit=n), ohlcv_rows,
            )
            if not page:
                break
            rows.extend(page)
            following = max(row[0] for row in page) + step_ms
            if following <= cursor:
                break
            cursor = following
        frame = frames.candle_frame(symbol, ((row[0] * 1000, *row[1:6], None) for row in rows))
        return frames.in_window(frame, start, end)
