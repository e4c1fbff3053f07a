"""Per-provider rate limiter, circuit breaker and call metrics (thread-safe, injectable clock).

* :class:`TokenBucket` -- ``rate`` tokens per second, at most ``capacity`` banked; a call
  costing ``n`` tokens (Binance counts request *weight*) waits until they are there.
* :class:`CircuitBreaker` -- CLOSED; ``threshold`` consecutive failed calls -> OPEN (calls are
  refused without a request) for ``cooldown`` seconds -> HALF_OPEN: one probe call is let
  through; success closes the breaker, failure re-opens it for another cooldown. A ban with a
  known length (418/429 with a long ``Retry-After``) opens it for that long at once.
* :class:`ProviderMetrics` -- requests, successes, latency, and the last 100 outcomes.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from quant_assets.secrets import scrub

CLOSED, OPEN, HALF_OPEN = "CLOSED", "OPEN", "HALF_OPEN"
RECENT_CALLS = 100


def utcnow() -> datetime:
    """Naive UTC now (DuckDB ``TIMESTAMP``)."""
    return datetime.now(UTC).replace(tzinfo=None)


class TokenBucket:
    """Blocking token bucket: ``rate`` tokens/s, bursts up to ``capacity``."""

    def __init__(
        self,
        rate: float,
        capacity: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError("rate and capacity must be positive")
        self.rate, self.capacity = float(rate), float(capacity)
        self._tokens = float(capacity)
        self._clock, self._sleep = clock, sleep
        self._last = clock()
        self._lock = threading.Lock()
        self.waited_s = 0.0

    def acquire(self, cost: float = 1.0) -> float:
        """Take ``cost`` tokens, sleeping as needed; return the seconds waited."""
        cost = min(float(cost), self.capacity)
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= cost:
                    self._tokens -= cost
                    self.waited_s += waited
                    return waited
                delay = (cost - self._tokens) / self.rate
            self._sleep(delay)
            waited += delay


class CircuitBreaker:
    """CLOSED -> OPEN after ``threshold`` consecutive failures -> HALF_OPEN after ``cooldown``."""

    def __init__(self, threshold: int, cooldown_s: float, now: Callable[[], datetime] = utcnow) -> None:
        self.threshold, self.cooldown = threshold, timedelta(seconds=cooldown_s)
        self._now = now
        self._state = CLOSED
        self.consecutive_failures = 0
        self.open_until: datetime | None = None
        self._probing = False
        self._lock = threading.Lock()
        self.transitions: list[str] = []  # e.g. ["CLOSED->OPEN", "OPEN->HALF_OPEN", ...]

    def _move(self, state: str) -> None:
        if state != self._state:
            self.transitions.append(f"{self._state}->{state}")
            self._state = state

    @property
    def state(self) -> str:
        with self._lock:
            self._refresh()
            return self._state

    def _refresh(self) -> None:
        if self._state == OPEN and self.open_until is not None and self._now() >= self.open_until:
            self._move(HALF_OPEN)
            self._probing = False

    def allow(self) -> bool:
        """May a call go out now? In HALF_OPEN only one probe at a time."""
        with self._lock:
            self._refresh()
            if self._state == CLOSED:
                return True
            if self._state == HALF_OPEN and not self._probing:
                self._probing = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self.consecutive_failures = 0
            self.open_until = None
            self._probing = False
            self._move(CLOSED)

    def record_failure(self, open_for_s: float | None = None) -> None:
        with self._lock:
            self.consecutive_failures += 1
            self._probing = False
            if open_for_s is not None:
                self._open(max(timedelta(seconds=open_for_s), self.cooldown))
            elif self._state == HALF_OPEN or self.consecutive_failures >= self.threshold:
                self._open(self.cooldown)

    def release(self) -> None:
        """A call ended without telling anything about health (e.g. an unknown symbol)."""
        with self._lock:
            if self._state == HALF_OPEN:
                self.consecutive_failures = 0
                self.open_until = None
                self._move(CLOSED)
            self._probing = False

    def _open(self, length: timedelta) -> None:
        self.open_until = self._now() + length
        self._move(OPEN)

    def restore(self, fail_count: int, disabled_until: datetime | None) -> None:
        """Resume from a persisted ``provider_health`` row (a new run, same provider)."""
        with self._lock:
            self.consecutive_failures = int(fail_count or 0)
            if disabled_until is not None and disabled_until > self._now():
                self.open_until = disabled_until
                self._state = OPEN
            elif self.consecutive_failures >= self.threshold:
                # The cooldown is over: the next call is the HALF_OPEN probe.
                self._state = HALF_OPEN


@dataclass
class MetricsSnapshot:
    requests: int
    successes: int
    latency_ms_total: float
    recent: str  # "1"/"0" per call, oldest first, at most RECENT_CALLS
    last_ok_at: datetime | None
    last_error: str | None


class ProviderMetrics:
    """Counts of this process's calls; persisted as deltas by ``providers.health``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.successes = 0
        self.latency_ms_total = 0.0
        self.recent: deque[bool] = deque(maxlen=RECENT_CALLS)
        self.last_ok_at: datetime | None = None
        self.last_error: str | None = None
        self.retries = 0
        self.rate_limit_wait_s = 0.0
        self.used_weight: int | None = None

    def record(self, ok: bool, latency_s: float, error: str | None = None) -> None:
        with self._lock:
            self.requests += 1
            self.latency_ms_total += latency_s * 1000.0
            self.recent.append(ok)
            if ok:
                self.successes += 1
                self.last_ok_at = utcnow()
            else:
                self.last_error = scrub(error)

    def snapshot(self) -> MetricsSnapshot:
        with self._lock:
            return MetricsSnapshot(
                self.requests, self.successes, self.latency_ms_total,
                "".join("1" if ok else "0" for ok in self.recent), self.last_ok_at, self.last_error,
            )


def _describe(exc: BaseException) -> str:
    try:
        message = str(exc)
    except Exception:  # a broken __str__
        message = ""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def root_cause(exc: BaseException) -> BaseException | None:
    """The innermost exception behind ``exc`` (explicit ``__cause__``, else an unsuppressed
    ``__context__``), or ``None`` when there is none."""
    seen = [exc]
    current: BaseException | None = exc
    while current is not None:
        behind = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
        if behind is None or any(behind is s for s in seen):
            break
        seen.append(behind)
        current = behind
    return seen[-1] if len(seen) > 1 else None


def one_line(exc: BaseException | str, limit: int = 300) -> str:
    """One line for a person: ``Type: message``, naming the root cause when there is one
    (``... (cause: OSError: No space left on device)``), scrubbed of every secret (before it is
    cut to ``limit``, so a cut never leaves part of a secret)."""
    if isinstance(exc, str):
        lines = [line.strip() for line in scrub(exc).splitlines() if line.strip()]
        return (lines[0] if lines else "")[:limit]
    text = scrub(_describe(exc))
    cause = root_cause(exc)
    if cause is not None:
        because = scrub(_describe(cause))
        if because.split(": ", 1)[-1] not in text:
            tail = f" (cause: {because[: max(40, limit // 3)]})"
            return text[: max(0, limit - len(tail))] + tail
    return text[:limit]


@dataclass
class ProviderState:
    """Everything the chain and health table know about one provider in this process."""

    name: str
    breaker: CircuitBreaker
    metrics: ProviderMetrics
    last_call_failed: bool = False

    def health_status(self) -> str:
        state = self.breaker.state
        if state == OPEN:
            return "DOWN"
        if state == HALF_OPEN or self.breaker.consecutive_failures > 0 or self.last_call_failed:
            return "DEGRADED"
        return "OK"
