"""The resilient HTTP call every network provider makes.

One call = rate limiter (per provider, in the provider's own units, e.g. Binance weight) ->
one request on the provider's pooled ``httpx.Client`` -> classification -> tenacity retry with
exponential backoff and jitter, honouring ``Retry-After``, for 429/418/408/5xx, timeouts and
dropped connections -> circuit breaker bookkeeping (the retry and breaker shell is
:class:`~quant_assets.providers.resilient.ResilientProvider`). 400/401/403/404, bodies that are
not JSON and bodies whose shape changed are never retried.

API keys come from the environment only (``QUANT_<PROVIDER>_API_KEY``); they are sent as a
header and kept out of ``repr``, errors, logs and metadata: every message built here from a
response is scrubbed (``quant_assets.secrets``) before it is cut short, and every exception
leaving :meth:`HttpProvider.call` has its whole chain scrubbed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx

from quant_assets.config import ResilienceSettings
from quant_assets.providers.base import (
    ClientError,
    MalformedResponse,
    ProviderError,
    RetryableError,
)
from quant_assets.providers.resilience import one_line
from quant_assets.providers.resilient import RETRY_STATUS, ResilientProvider, retry_after_seconds
from quant_assets.secrets import scrub

T = TypeVar("T")


class HttpProvider(ResilientProvider):
    """Base class of HTTP providers: ``self.call(path, params, parse, cost)``."""

    name = "http"
    rate_per_s = 1.0       # documented limit, in ``cost`` units per second
    burst = 1.0            # tokens that may be spent at once
    api_key_header: str | None = None

    def __init__(
        self,
        base_url: str,
        resilience: ResilienceSettings,
        sleep: Callable[[float], None] = time.sleep,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        key = os.environ.get(f"QUANT_{self.name.upper()}_API_KEY")
        super().__init__(resilience, sleep, secrets=(key,))
        self.base_url = base_url.rstrip("/")
        all_headers = {"User-Agent": "quant-assets/0.1", "Accept": "application/json", **(headers or {})}
        if key and self.api_key_header:
            all_headers[self.api_key_header] = key
        self.client = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(resilience.timeout_s),
            limits=httpx.Limits(
                max_connections=resilience.max_workers + 2, max_keepalive_connections=resilience.max_workers + 2
            ),
            headers=all_headers,
        )
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the key, nor a password in the base URL
        return scrub(f"{type(self).__name__}(base_url={self.base_url!r})")

    def close(self) -> None:
        self.client.close()

    # -- one request -------------------------------------------------------------------------
    def _attempt(self, path: str, params: Mapping[str, Any] | None, parse: Callable[[Any, httpx.Response], T],
                 cost: float) -> T:
        self._acquire(cost)
        began = time.perf_counter()
        try:
            response = self.client.get(path, params=params)
        except httpx.TimeoutException as exc:
            self._record(False, began, f"timeout: {one_line(exc)}")
            raise RetryableError(f"{self.name}: timeout on {path} after {self.resilience.timeout_s:g}s") from None
        except httpx.TransportError as exc:
            self._record(False, began, f"connection: {one_line(exc)}")
            raise RetryableError(f"{self.name}: connection error on {path}: {one_line(exc, 160)}") from None
        used = response.headers.get("X-MBX-USED-WEIGHT-1m")
        if used and used.isdigit():
            self.state.metrics.used_weight = int(used)
        status = response.status_code
        if status in RETRY_STATUS or status >= 500:
            retry_after = retry_after_seconds(response.headers)
            detail = one_line(self._scrub(response.text), 80)
            message = f"{self.name}: HTTP {status} on {path}" + (
                f" (Retry-After {retry_after:g}s)" if retry_after is not None else ""
            ) + (f": {detail}" if detail else "")
            self._record(False, began, message)
            raise self._transient(message, retry_after, status)
        if status >= 400:
            message = f"{self.name}: HTTP {status} on {path}: {one_line(self._scrub(response.text), 120)}"
            self._record(False, began, message)
            raise ClientError(one_line(message), status=status)
        try:
            body = response.json()
        except ValueError:
            excerpt = one_line(self._scrub(response.text[:4000]), 60)
            message = f"{self.name}: body of {path} is not JSON (HTTP {status}): {excerpt or 'empty'}"
            self._record(False, began, message)
            raise MalformedResponse(message) from None
        try:
            result = parse(body, response)
        except ProviderError as exc:
            self._record(False, began, one_line(exc))
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            message = f"{self.name}: unexpected response shape on {path}: {one_line(exc)}"
            self._record(False, began, message)
            raise MalformedResponse(message) from None
        self._record(True, began)
        return result

    # -- one call: retries, breaker ------------------------------------------------------------
    def call(self, path: str, params: Mapping[str, Any] | None = None,
             parse: Callable[[Any, httpx.Response], T] = lambda body, _r: body, cost: float = 1.0) -> T:
        return self.resilient(self._attempt, path, params, parse, cost)

    def per_symbol(self, symbols, fetch_one: Callable[[str], T]) -> list[T]:
        """``fetch_one`` per symbol; a symbol the provider does not list (400/404) is skipped."""
        out = []
        for symbol in symbols:
            try:
                out.append(fetch_one(symbol))
            except ClientError as exc:
                if exc.counts_against_health:
                    raise
        return out
