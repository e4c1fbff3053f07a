"""The resilient call every network provider makes, whatever carries its requests.

One call = breaker check -> tenacity retry with exponential backoff and jitter, never less than
the server's ``Retry-After`` (only :class:`RetryableError` is retried) around one *attempt*
(the subclass's: an httpx request in :mod:`providers.http`, a ccxt method in
:mod:`providers.ccxt_exchange`) -> circuit-breaker bookkeeping. Attempts spend the provider's
:class:`TokenBucket` and record their outcome in its :class:`ProviderMetrics`; every exception
leaving :meth:`ResilientProvider.resilient` has its whole chain scrubbed of secrets.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from quant_assets.config import ResilienceSettings
from quant_assets.providers.base import (
    BannedError,
    CircuitOpenError,
    MalformedResponse,
    ProviderError,
    RetryableError,
)
from quant_assets.providers.resilience import (
    CircuitBreaker,
    ProviderMetrics,
    ProviderState,
    TokenBucket,
)
from quant_assets.secrets import ScrubbedError, scrub, scrub_exception

T = TypeVar("T")
RETRY_STATUS = {408, 418, 429, 500, 502, 503, 504}


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """``Retry-After`` in seconds (the delta-seconds form; an HTTP date is ignored), or None."""
    value = headers.get("Retry-After") if headers is not None else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class WaitRetryAfter:
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


class ResilientProvider:
    """Limiter, breaker, metrics and the retried call, shared by every network provider.

    ``rate_per_s`` and ``burst`` are the documented limit in the provider's own cost units
    (Binance weight, ccxt's cost), scaled by ``resilience.rate_scale``; a subclass that learns
    them at run time passes them to ``__init__``.
    """

    name = "provider"
    rate_per_s = 1.0
    burst = 1.0

    def __init__(
        self,
        resilience: ResilienceSettings,
        sleep: Callable[[float], None] = time.sleep,
        secrets: Iterable[str | None] = (),
        rate_per_s: float | None = None,
        burst: float | None = None,
    ) -> None:
        self.resilience = resilience
        self.sleep = sleep
        self._secrets = tuple(s for s in secrets if s)
        scale = resilience.rate_scale
        rate = self.rate_per_s if rate_per_s is None else rate_per_s
        self.limiter = TokenBucket(rate * scale, max((self.burst if burst is None else burst) * scale, 1.0))
        self.state = ProviderState(
            self.name,
            CircuitBreaker(resilience.breaker_failures, resilience.breaker_cooldown_s),
            ProviderMetrics(),
        )

    def _scrub(self, text: str) -> str:
        return scrub(text, extra=self._secrets)

    def _acquire(self, cost: float) -> None:
        self.state.metrics.rate_limit_wait_s += self.limiter.acquire(cost)

    def _transient(self, message: str, retry_after: float | None, status: int | None) -> ProviderError:
        """A fault to retry after backoff (at least ``retry_after`` seconds), or a ban when
        ``retry_after`` is longer than ``resilience.retry_after_max_s``."""
        if retry_after is not None and retry_after > self.resilience.retry_after_max_s:
            return BannedError(message, retry_after)
        return RetryableError(message, retry_after=retry_after, status=status)

    def _record(self, ok: bool, began: float, error: str | None = None) -> None:
        self.state.metrics.record(ok, time.perf_counter() - began, self._scrub(error) if error else None)

    def resilient(self, attempt: Callable[..., T], *args: Any) -> T:
        """``attempt(*args)`` behind the breaker, retried on :class:`RetryableError`."""
        breaker = self.state.breaker
        if not breaker.allow():
            raise CircuitOpenError(f"{self.name}: circuit {breaker.state}, skipped until {breaker.open_until}")
        retrying = Retrying(
            stop=stop_after_attempt(self.resilience.max_attempts),
            wait=WaitRetryAfter(self.resilience),
            retry=retry_if_exception_type(RetryableError),
            sleep=self._sleep_counted,
            reraise=True,
        )
        try:
            result = self._scrubbed(retrying, attempt, *args)
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

    def _scrubbed(self, retrying: Retrying, attempt: Callable[..., T], *args: Any) -> T:
        """The retried call; any exception leaves with its whole chain scrubbed of secrets."""
        try:
            return retrying(attempt, *args)
        except Exception as exc:
            clean = scrub_exception(exc)
            if isinstance(clean, ScrubbedError):
                raise MalformedResponse(f"{self.name}: {clean}") from None
            raise

    def _sleep_counted(self, seconds: float) -> None:
        self.state.metrics.retries += 1
        self.sleep(seconds)
