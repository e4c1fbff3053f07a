"""Rate limiter, circuit breaker and the retry policy, with injected clocks and sleeps."""

from datetime import datetime, timedelta

import pytest

from quant_assets.config import ResilienceSettings
from quant_assets.providers.base import (
    BannedError,
    CircuitOpenError,
    ClientError,
    MalformedResponse,
    RetryableError,
)
from quant_assets.providers.binance import BinanceProvider
from quant_assets.providers.resilience import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    CircuitBreaker,
    TokenBucket,
    utcnow,
)
from quant_assets_tests.exchange_server import Fault, start_server
from quant_assets_tests.fake_clock import FakeClock


def test_token_bucket_spends_its_burst_then_waits_exactly_for_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=10, capacity=5, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        assert bucket.acquire() == 0
    assert bucket.acquire() == pytest.approx(0.1)
    assert bucket.acquire(2) == pytest.approx(0.2)  # Binance-style weight 2
    assert clock.t == pytest.approx(0.3)


def test_circuit_breaker_closed_open_half_open_closed():
    now = [datetime(2024, 1, 1)]
    breaker = CircuitBreaker(threshold=3, cooldown_s=30, now=lambda: now[0])
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state == CLOSED
    breaker.record_failure()
    assert breaker.state == OPEN and not breaker.allow()
    now[0] += timedelta(seconds=31)
    assert breaker.state == HALF_OPEN
    assert breaker.allow() and not breaker.allow()  # one probe at a time
    breaker.record_failure()                         # failed probe: open again
    assert breaker.state == OPEN
    now[0] += timedelta(seconds=31)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == CLOSED and breaker.consecutive_failures == 0
    assert breaker.transitions == ["CLOSED->OPEN", "OPEN->HALF_OPEN", "HALF_OPEN->OPEN", "OPEN->HALF_OPEN",
                                   "HALF_OPEN->CLOSED"]


def test_a_ban_opens_the_breaker_for_its_retry_after():
    now = [datetime(2024, 1, 1)]
    breaker = CircuitBreaker(threshold=3, cooldown_s=30, now=lambda: now[0])
    breaker.record_failure(open_for_s=600)
    assert breaker.state == OPEN and breaker.open_until == now[0] + timedelta(seconds=600)


def test_restore_resumes_open_or_probes_after_cooldown():
    now = datetime(2024, 1, 1)
    b = CircuitBreaker(threshold=2, cooldown_s=30, now=lambda: now)
    b.restore(2, now + timedelta(seconds=10))
    assert b.state == OPEN
    b = CircuitBreaker(threshold=2, cooldown_s=30, now=lambda: now)
    b.restore(2, now - timedelta(seconds=10))
    assert b.state == HALF_OPEN


@pytest.fixture
def server():
    srv = start_server(["BTC/USDT"])
    yield srv
    srv.stop()


def _binance(server, **overrides):
    settings = ResilienceSettings(**{"timeout_s": 0.5, "max_attempts": 4, "backoff_multiplier_s": 0.001,
                                     "backoff_max_s": 0.01, "retry_after_max_s": 60, "breaker_failures": 2,
                                     **overrides})
    clock = FakeClock()
    provider = BinanceProvider(server.url, settings, sleep=clock.sleep)
    return provider, clock


START = datetime(2024, 3, 4)


def test_429_is_retried_after_its_retry_after(server):
    provider, clock = _binance(server)
    server.fault("/api/v3/klines", Fault.http(429, retry_after="3"))
    frame = provider.fetch_candles("BTC/USDT", "1m", START, START + timedelta(hours=1))
    assert frame.height == 60
    assert clock.slept and clock.slept[0] >= 3.0  # the server's Retry-After, not the tiny backoff
    assert provider.state.breaker.state == CLOSED
    assert server.count("/api/v3/klines") == 2


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_5xx_are_retried_with_exponential_backoff(server, status):
    provider, clock = _binance(server)
    server.fault("/api/v3/klines", Fault.http(status), times=2)
    assert provider.fetch_candles("BTC/USDT", "1m", START, START + timedelta(hours=1)).height == 60
    assert len(clock.slept) == 2 and server.count("/api/v3/klines") == 3
    snap = provider.state.metrics.snapshot()
    assert (snap.requests, snap.successes, snap.recent) == (3, 1, "001")


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_are_never_retried(server, status):
    provider, clock = _binance(server)
    server.fault("/api/v3/klines", Fault.http(status))
    with pytest.raises(ClientError):
        provider.fetch_candles("BTC/USDT", "1m", START, START + timedelta(hours=1))
    assert server.count("/api/v3/klines") == 1 and clock.slept == []
    # An unknown symbol says nothing about health; auth failures do.
    assert provider.state.breaker.consecutive_failures == (0 if status in (400, 404) else 1)


def test_malformed_and_changed_bodies_are_never_retried(server):
    provider, clock = _binance(server)
    server.fault("/api/v3/klines", Fault.malformed())
    with pytest.raises(MalformedResponse):
        provider.fetch_candles("BTC/USDT", "1m", START, START + timedelta(hours=1))
    server.fault("/api/v3/klines", Fault.change(lambda rows: [r[:7] for r in rows]))
    with pytest.raises(MalformedResponse):
        provider.fetch_candles("BTC/USDT", "1m", START, START + timedelta(hours=1))
    assert server.count("/api/v3/klines") == 2 and clock.slept == []
    assert provider.state.breaker.state == OPEN  # two consecutive failures, threshold 2


def test_timeouts_and_dropped_connections_are_retried(server):
    provider, clock = _binance(server)
    server.fault("/api/v3/klines", Fault.timeout(1.5))
    server.fault("/api/v3/klines", Fault.drop())
    assert provider.fetch_candles("BTC/USDT", "1m", START, START + timedelta(hours=1)).height == 60
    assert len(clock.slept) == 2
    assert "timeout" in provider.state.metrics.last_error or "connection" in provider.state.metrics.last_error


def test_exhausted_retries_count_one_failure_and_open_after_threshold(server):
    provider, _ = _binance(server, max_attempts=2)
    server.fault("/api/v3/klines", Fault.http(503), repeat=True)
    for _ in range(2):
        with pytest.raises(RetryableError):
            provider.fetch_candles("BTC/USDT", "1m", START, START + timedelta(hours=1))
    assert provider.state.breaker.state == OPEN
    assert server.count("/api/v3/klines") == 4
    with pytest.raises(CircuitOpenError):  # skipped without a request
        provider.fetch_candles("BTC/USDT", "1m", START, START + timedelta(hours=1))
    assert server.count("/api/v3/klines") == 4
    assert provider.state.health_status() == "DOWN"


def test_418_with_a_long_retry_after_opens_the_breaker_until_then(server):
    provider, clock = _binance(server, retry_after_max_s=60)
    server.fault("/api/v3/klines", Fault.http(418, retry_after="7200"))
    with pytest.raises(BannedError):
        provider.fetch_candles("BTC/USDT", "1m", START, START + timedelta(hours=1))
    assert clock.slept == [] and server.count("/api/v3/klines") == 1
    breaker = provider.state.breaker
    assert breaker.state == OPEN
    assert breaker.open_until - utcnow() > timedelta(seconds=7000)
