"""``provider_health`` and ``provider_metrics``: what every run learned about its providers.

Each run restores every provider's breaker from ``provider_health`` (an OPEN breaker stays open
until ``disabled_until``; a breaker whose cooldown passed starts HALF_OPEN), and at the end
upserts the health row and *adds* its call counts to ``provider_metrics`` (deltas, so
concurrent runs do not overwrite each other's counts). The alert sensor reads
``provider_health`` by these column names.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from quant_assets.providers.resilience import RECENT_CALLS, ProviderState, utcnow
from quant_assets.secrets import scrub


def restore_health(conn: duckdb.DuckDBPyConnection, states: Iterable[ProviderState]) -> None:
    rows = {
        r[0]: r[1:]
        for r in conn.execute("SELECT provider_name, fail_count, disabled_until FROM provider_health").fetchall()
    }
    for state in states:
        if state.name in rows:
            fail_count, disabled_until = rows[state.name]
            state.breaker.restore(fail_count, disabled_until)


def persist_health(conn: duckdb.DuckDBPyConnection, states: Iterable[ProviderState]) -> None:
    """Upsert health rows and add this process's call counts since the last persist."""
    now = utcnow()
    for state in states:
        m = state.metrics
        with m._lock:
            requests, successes, latency = m.requests, m.successes, m.latency_ms_total
            recent = "".join("1" if ok else "0" for ok in m.recent)
            m.requests = m.successes = 0
            m.latency_ms_total = 0.0
            m.recent.clear()
            last_ok_at, last_error = m.last_ok_at, scrub(m.last_error)
        breaker = state.breaker
        status = state.health_status()
        disabled_until = breaker.open_until if breaker.state == "OPEN" else None
        conn.execute(
            """
            INSERT INTO provider_health AS h
                (provider_name, status, last_ok_at, fail_count, disabled_until, last_error, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (provider_name) DO UPDATE SET
                status = excluded.status,
                last_ok_at = coalesce(excluded.last_ok_at, h.last_ok_at),
                fail_count = excluded.fail_count,
                disabled_until = excluded.disabled_until,
                last_error = coalesce(excluded.last_error, h.last_error),
                updated_at = excluded.updated_at
            """,
            [state.name, status, last_ok_at, breaker.consecutive_failures, disabled_until, last_error, now],
        ).fetchall()
        conn.execute(
            """
            INSERT INTO provider_metrics AS p
                (provider_name, requests, successes, latency_ms_total, recent_calls, updated_at)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (provider_name) DO UPDATE SET
                requests = p.requests + excluded.requests,
                successes = p.successes + excluded.successes,
                latency_ms_total = p.latency_ms_total + excluded.latency_ms_total,
                recent_calls = right(p.recent_calls || excluded.recent_calls, ?),
                updated_at = excluded.updated_at
            """,
            [state.name, requests, successes, latency, recent[-RECENT_CALLS:], now, RECENT_CALLS],
        ).fetchall()
