"""The resilient HTTP call every network provider makes.

One call = rate limiter (per provider, in the provider's own units, e.g. Binance weight) ->
one request on the provider's pooled ``httpx.Client`` -> classification -> tenacity retry with
exponential backoff and jitter, honouring ``Retry-After``, for 429/418/408/5xx, timeouts and
dropped connections -> circuit breaker bookkeeping. 400/401/403/404, bodies that are not JSON
and bodies whose shape changed are never retried.

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
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from quant_assets.config import ResilienceSettings
from quant_assets.providers.base import (
    BannedError,
    CircuitOpenError,
    ClientError,
    MalformedResponse,
    ProviderError,
    RetryableError,
)
from quant_assets.providers.resilience import (
    CircuitBreaker,
    ProviderMetrics,
    ProviderState,
    TokenBucket,
    one_line,
)
from quant_assets.secrets import ScrubbedError, scrub, scrub_exception

T = TypeVar("T")
RETRY_STATUS = {408, 418, 429, 500, 502, 503, 504}


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class _WaitRetryAfter:
    """Exponential backoff with jitter, but never less than the server's ``Retry-After``."""

    def __init__(self, settings: ResilienceSettings) -> None:
        self.backoff = wait_exponential_jitter(
            multiplier=settings.backoff_multiplier_s, max=settings.backoff_max_s,
            jitter=settings.backoff_multiplier_s,
        )

    def __call__(self, retry_state: Any) -> float:
        wait = self.backoff(retry_state)
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, RetryableError) and exc.retry_after is not None:
            wait = max(wait, exc.retry_after)
        return wait


class HttpProvider:
    """Base class of network providers: ``self.call(path, params, parse, cost)``."""

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
        self.base_url = base_url.rstrip("/")
        self.resilience = resilience
        self.sleep = sleep
        scale = resilience.rate_scale
        self.limiter = TokenBucket(self.rate_per_s * scale, max(self.burst * scale, 1.0))
        self.state = ProviderState(
            self.name,
            CircuitBreaker(resilience.breaker_failures, resilience.breaker_cooldown_s),
            ProviderMetrics(),
        )
        all_headers = {"User-Agent": "quant-assets/0.1", "Accept": "application/json", **(headers or {})}
        key = os.environ.get(f"QUANT_{self.name.upper()}_API_KEY")
        if key and self.api_key_header:
            all_headers[self.api_key_header] = key
        self._secret = key
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

    def _scrub(self, text: str) -> str:
        return scrub(text, extra=(self._secret,))

    # -- one request -------------------------------------------------------------------------
    def _attempt(self, path: str, params: Mapping[str, Any] | None, parse: Callable[[Any, httpx.Response], T],
                 cost: float) -> T:
        self.state.metrics.rate_limit_wait_s += self.limiter.acquire(cost)
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
            retry_after = _retry_after(response)
            detail = one_line(self._scrub(response.text), 80)
            message = f"{self.name}: HTTP {status} on {path}" + (
                f" (Retry-After {retry_after:g}s)" if retry_after is not None else ""
            ) + (f": {detail}" if detail else "")
            self._record(False, began, message)
            if retry_after is not None and retry_after > self.resilience.retry_after_max_s:
                raise BannedError(message, retry_after)
            raise RetryableError(message, retry_after=retry_after, status=status)
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

    def _record(self, ok: bool, began: float, error: str | None = None) -> None:
        self.state.metrics.record(ok, time.perf_counter() - began, self._scrub(error) if error else None)

    # -- one call: retries, breaker ------------------------------------------------------------
    def call(self, path: str, params: Mapping[str, Any] | None = None,
             parse: Callable[[Any, httpx.Response], T] = lambda body, _r: body, cost: float = 1.0) -> T:
        breaker = self.state.breaker
        if not breaker.allow():
            raise CircuitOpenError(f"{self.name}: circuit {breaker.state}, skipped until {breaker.open_until}")
        retrying = Retrying(
            stop=stop_after_attempt(self.resilience.max_attempts),
            wait=_WaitRetryAfter(self.resilience),
            retry=retry_if_exception_type(RetryableError),
            sleep=self._sleep_counted,
            reraise=True,
        )
        try:
            result = self._scrubbed(retrying, path, params, parse, cost)
        except BannedError as exc:
            breaker.record_failure(open_for_s=exc.retry_after)
            self.state.last_call_failed = True
            raise
        except ProviderError as exc:
            if exc.counts_against_health:
                breaker.record_failure()
                self.state.last_call_failed = True
            else:
                breaker.release()
            raise
        except Exception:
            breaker.record_failure()
            self.state.last_call_failed = True
            raise
        breaker.record_success()
        self.state.last_call_failed = False
        return result

    def _scrubbed(self, retrying: Retrying, *args: Any) -> Any:
        """The retried call; any exception leaves with its whole chain scrubbed of secrets."""
        try:
            return retrying(self._attempt, *args)
        except Exception as exc:
            clean = scrub_exception(exc)
            if isinstance(clean, ScrubbedError):
                raise MalformedResponse(f"{self.name}: {clean}") from None
            raise

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

    def _sleep_counted(self, seconds: float) -> None:
        self.state.metrics.retries += 1
        self.sleep(seconds)
