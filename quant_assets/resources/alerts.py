"""Alert sinks (Slack-compatible webhook, Telegram Bot API) and the ``alerts`` table.

Sink addresses and tokens come from the environment only and are read at delivery time:

- ``QUANT_ALERT_WEBHOOK_URL``: POSTed Slack-compatible JSON (``text`` + ``blocks``)
- ``QUANT_TELEGRAM_BOT_TOKEN`` and ``QUANT_TELEGRAM_CHAT_ID``: ``sendMessage`` of the Bot API
- ``QUANT_TELEGRAM_BASE_URL``: the Bot API server (default ``https://api.telegram.org``)

They never reach a log line, an error string, the ``alerts`` table or Dagster metadata: every
text that could hold them passes :func:`redact` (the project's one scrubber,
``quant_assets.secrets``, plus the values of this ``SinkConfig``), scrubbed before it is cut
short, and httpx's own request logging is filtered.

Order of work for a batch of observations (:func:`process_observations`): decide and write every
alert row first (one short DuckDB write), then deliver over HTTP with the DuckDB file closed
(retries with exponential backoff; 429, 5xx, timeouts and connection errors are retried, other
4xx are not), then record each sink's outcome. A sink that is down is recorded as ``FAILED``;
it neither raises nor loses the alert row.
"""

import json
import logging
import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from quant_assets.config import AlertSettings
from quant_assets.quant.alerting import Action, Observation, OpenAlert, decide, headline
from quant_assets.quant.calendar import utc_naive
from quant_assets.resources.migrations import apply_migrations
from quant_assets.resources.tables import table_exists
from quant_assets.secrets import MASK, scrub

SINKS = ("webhook", "telegram")
DEFAULT_TELEGRAM_BASE_URL = "https://api.telegram.org"
REDACTED = MASK


class AlertStoreBusy(RuntimeError):
    """The DuckDB file is held by another writer; try again on the next tick."""


@dataclass(frozen=True)
class SinkConfig:
    """Where alerts go, read from the environment. ``repr`` never shows the values."""

    webhook_url: str | None = field(default=None, repr=False)
    telegram_token: str | None = field(default=None, repr=False)
    telegram_chat_id: str | None = field(default=None, repr=False)
    telegram_base_url: str = field(default=DEFAULT_TELEGRAM_BASE_URL, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "SinkConfig":
        env = os.environ if env is None else env
        return cls(
            webhook_url=env.get("QUANT_ALERT_WEBHOOK_URL") or None,
            telegram_token=env.get("QUANT_TELEGRAM_BOT_TOKEN") or None,
            telegram_chat_id=env.get("QUANT_TELEGRAM_CHAT_ID") or None,
            telegram_base_url=(env.get("QUANT_TELEGRAM_BASE_URL") or DEFAULT_TELEGRAM_BASE_URL).rstrip("/"),
        )

    def configured(self, sink: str) -> bool:
        if sink == "webhook":
            return bool(self.webhook_url)
        return bool(self.telegram_token and self.telegram_chat_id)

    def secrets(self) -> list[str]:
        """Every value that must never be shown, longest first (a URL before its parts)."""
        values = [self.webhook_url, self.telegram_token, self.telegram_chat_id]
        if self.telegram_token:
            values.append(f"{self.telegram_base_url}/bot{self.telegram_token}")
        return sorted({v for v in values if v}, key=len, reverse=True)


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` without any configured secret (environment) nor any of ``secrets``."""
    return scrub(text, extra=secrets)


class _RedactingFilter(logging.Filter):
    """Rewrites httpx/httpcore log records (they print request URLs) without the secrets."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = list(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        return True


@contextmanager
def _quiet_http_logs(secrets: Sequence[str]) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in ("httpx", "httpcore")]
    filt = _RedactingFilter(secrets)
    for lg in loggers:
        lg.addFilter(filt)
    try:
        yield
    finally:
        for lg in loggers:
            lg.removeFilter(filt)


class DeliveryError(Exception):
    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class Delivery:
    sink: str
    status: str          # SENT | FAILED | NOT_CONFIGURED
    attempts: int
    error: str | None = None


@dataclass(frozen=True)
class Notification:
    alert_id: str
    alert_key: str
    source: str
    action: Action
    severity: str
    text: str            # the one-line headline
    link: str | None
    first_seen: datetime
    occurrences: int


def _excerpt(text: str, secrets: Sequence[str], limit: int = 200) -> str:
    """A piece of an answer for an error: redacted first, then cut (a cut never halves a secret)."""
    return " ".join(redact(text, secrets).split())[:limit]


def _post_json(client: httpx.Client, url: str, payload: dict, secrets: Sequence[str] = ()) -> httpx.Response:
    try:
        response = client.post(url, json=payload)
    except (httpx.TimeoutException, httpx.TransportError) as exc:
        raise DeliveryError(_excerpt(f"{type(exc).__name__}: {exc}", secrets, 300), transient=True) from None
    if response.status_code == 429 or response.status_code >= 500:
        raise DeliveryError(f"HTTP {response.status_code}", transient=True)
    if response.status_code >= 400:
        raise DeliveryError(f"HTTP {response.status_code}: {_excerpt(response.text, secrets)}", transient=False)
    return response


def slack_payload(note: Notification) -> dict:
    """Slack incoming-webhook JSON: ``text`` for clients without blocks, and blocks."""
    lines = [f"*{note.text}*"]
    if note.link:
        lines.append(f"<{note.link}|Open in Dagster>")
    context = (
        f"source: {note.source} | key: {note.alert_key} | first seen {note.first_seen:%Y-%m-%d %H:%M} UTC"
        f" | consecutive failures: {note.occurrences}"
    )
    return {
        "text": note.text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }


def telegram_text(note: Notification) -> str:
    text = f"{note.text}\nsource: {note.source}, key: {note.alert_key}"
    return f"{text}\n{note.link}" if note.link else text


def _send(sink: str, note: Notification, sinks: SinkConfig, client: httpx.Client) -> None:
    secrets = sinks.secrets()
    if sink == "webhook":
        _post_json(client, str(sinks.webhook_url), slack_payload(note), secrets)
        return
    url = f"{sinks.telegram_base_url}/bot{sinks.telegram_token}/sendMessage"
    payload = {"chat_id": sinks.telegram_chat_id, "text": telegram_text(note), "disable_web_page_preview": True}
    response = _post_json(client, url, payload, secrets)
    try:
        ok = bool(response.json().get("ok"))
    except ValueError:
        ok = False
    if not ok:
        raise DeliveryError(f"Telegram answered without ok: {_excerpt(response.text, secrets)}", transient=False)


def deliver(sink: str, note: Notification, sinks: SinkConfig, settings: AlertSettings) -> Delivery:
    """Send ``note`` to one sink with retries; never raises. Errors are redacted."""
    if not sinks.configured(sink):
        return Delivery(sink, "NOT_CONFIGURED", 0)
    attempts = 0
    secrets = sinks.secrets()
    retrying = Retrying(
        stop=stop_after_attempt(settings.retry_attempts),
        wait=wait_exponential(multiplier=settings.retry_wait_s, max=settings.retry_max_wait_s),
        retry=retry_if_exception(lambda e: isinstance(e, DeliveryError) and e.transient),
        reraise=True,
    )
    try:
        with _quiet_http_logs(secrets), httpx.Client(timeout=settings.timeout_s) as client:
            for attempt in retrying:
                with attempt:
                    attempts += 1
                    _send(sink, note, sinks, client)
    except Exception as exc:  # a sink must never stop the sensor
        return Delivery(sink, "FAILED", attempts, redact(str(exc), secrets)[:500])
    return Delivery(sink, "SENT", attempts)


# ---------------------------------------------------------------- the alerts table


def _is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


@contextmanager
def alerts_db(path: str | Path, attempts: int = 5, wait_s: float = 0.2) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived write connection to the platform's DuckDB file, migrated.

    A few quick tries only: a sensor must finish its tick, so a file held by a long run raises
    :class:`AlertStoreBusy` and the tick is retried later (the sensor's cursor does not move).
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = None
    for attempt in range(attempts):
        try:
            conn = duckdb.connect(str(path))
            break
        except duckdb.IOException as exc:
            if not _is_lock_error(exc) or attempt == attempts - 1:
                raise AlertStoreBusy(f"DuckDB file is busy: {str(exc).splitlines()[0]}") from None
            time.sleep(wait_s * 2**attempt)
    assert conn is not None
    try:
        conn.execute("SET TimeZone = 'UTC'")
        apply_migrations(conn)
        yield conn
    finally:
        conn.close()


def open_alerts(conn: duckdb.DuckDBPyConnection) -> dict[str, OpenAlert]:
    rows = conn.execute(
        "SELECT alert_key, alert_id, severity, occurrences FROM alerts WHERE status = 'OPEN'"
    ).fetchall()
    return {key: OpenAlert(alert_id, severity, int(n)) for key, alert_id, severity, n in rows}


@dataclass
class BatchOutcome:
    observed: int = 0
    opened: int = 0
    escalated: int = 0
    resolved: int = 0
    deliveries: list[Delivery] = field(default_factory=list)

    def summary(self) -> str:
        sent = sum(d.status == "SENT" for d in self.deliveries)
        failed = sum(d.status == "FAILED" for d in self.deliveries)
        return (
            f"{self.observed} observations: {self.opened} opened, {self.escalated} escalated, "
            f"{self.resolved} resolved; deliveries sent {sent}, failed {failed}"
        )


def record_observations(
    conn: duckdb.DuckDBPyConnection, observations: Sequence[Observation], settings: AlertSettings,
    sinks: SinkConfig,
) -> tuple[list[Notification], BatchOutcome]:
    """Apply each observation to the table in order, in one transaction; return what to send."""
    outcome = BatchOutcome(observed=len(observations))
    notes: list[Notification] = []
    secrets = sinks.secrets()
    conn.execute("BEGIN TRANSACTION")
    try:
        current = open_alerts(conn)
        for obs in observations:
            at = utc_naive(obs.at)
            message = redact(obs.message, secrets)
            details = redact(json.dumps(obs.details or {}, sort_keys=True, default=str), secrets)
            state = current.get(obs.key)
            decision = decide(state, obs, settings.escalate_after)
            if decision.action == Action.NONE:
                continue
            pending = {s: ("PENDING" if sinks.configured(s) else "NOT_CONFIGURED") for s in SINKS}
            if decision.action == Action.OPEN:
                alert_id = uuid.uuid4().hex
                conn.execute(
                    "INSERT INTO alerts VALUES (?, ?, ?, ?, 'OPEN', ?, ?, ?, ?, NULL, ?, ?, ?)",
                    [alert_id, obs.key, obs.source, decision.severity, message, at, at,
                     decision.occurrences, pending["webhook"], pending["telegram"], details],
                )
                current[obs.key] = OpenAlert(alert_id, decision.severity, decision.occurrences)
                first_seen = at
                outcome.opened += 1
            else:
                assert state is not None
                alert_id = state.alert_id
                if decision.action == Action.RESOLVE:
                    conn.execute(
                        "UPDATE alerts SET status = 'RESOLVED', resolved_at = ? WHERE alert_id = ?",
                        [at, alert_id],
                    )
                    del current[obs.key]
                    outcome.resolved += 1
                else:
                    conn.execute(
                        "UPDATE alerts SET severity = ?, message = ?, last_seen = ?, occurrences = ?, "
                        "details = ? WHERE alert_id = ?",
                        [decision.severity, message, at, decision.occurrences, details, alert_id],
                    )
                    current[obs.key] = OpenAlert(alert_id, decision.severity, decision.occurrences)
                    outcome.escalated += decision.action == Action.ESCALATE
                first_seen = conn.execute(
                    "SELECT first_seen FROM alerts WHERE alert_id = ?", [alert_id]
                ).fetchone()[0]
            if not decision.notify:
                continue
            if decision.action != Action.RESOLVE:
                conn.execute(
                    "UPDATE alerts SET webhook_status = ?, telegram_status = ? WHERE alert_id = ?",
                    [pending["webhook"], pending["telegram"], alert_id],
                )
            conn.executemany(
                "INSERT OR REPLACE INTO alert_deliveries VALUES (?, ?, ?, ?, 0, NULL, ?)",
                [[alert_id, decision.action.value, s, pending[s], at] for s in SINKS],
            )
            link = (obs.details or {}).get("link")
            notes.append(Notification(
                alert_id, obs.key, obs.source, decision.action, decision.severity,
                headline(decision.action, decision.severity, message), link, first_seen,
                decision.occurrences,
            ))
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    return notes, outcome


def record_deliveries(
    conn: duckdb.DuckDBPyConnection, results: Sequence[tuple[Notification, Delivery]]
) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    for note, d in results:
        conn.execute(
            "INSERT OR REPLACE INTO alert_deliveries VALUES (?, ?, ?, ?, ?, ?, ?)",
            [note.alert_id, note.action.value, d.sink, d.status, d.attempts, d.error, now],
        )
        column = "webhook_status" if d.sink == "webhook" else "telegram_status"
        conn.execute(f"UPDATE alerts SET {column} = ? WHERE alert_id = ?", [d.status, note.alert_id])


def process_observations(
    db_path: str | Path, observations: Sequence[Observation], settings: AlertSettings,
    sinks: SinkConfig | None = None,
) -> BatchOutcome:
    """Record, deliver, record deliveries. Raises :class:`AlertStoreBusy` before anything is sent."""
    sinks = SinkConfig.from_env() if sinks is None else sinks
    if not observations:
        return BatchOutcome()
    with alerts_db(db_path) as conn:
        notes, outcome = record_observations(conn, observations, settings, sinks)
    results = [(note, deliver(sink, note, sinks, settings)) for note in notes for sink in SINKS]
    outcome.deliveries = [d for _note, d in results]
    if results:
        try:
            with alerts_db(db_path) as conn:
                record_deliveries(conn, results)
        except AlertStoreBusy:
            pass  # the rows stay PENDING; the alerts themselves are recorded
    return outcome


@contextmanager
def read_only_db(path: str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection for a sensor's tick: nothing created or migrated; a writer holding
    the file raises :class:`AlertStoreBusy` at once (the tick is retried later)."""
    try:
        conn = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as exc:
        if _is_lock_error(exc):
            raise AlertStoreBusy(f"DuckDB file is busy: {str(exc).splitlines()[0]}") from None
        raise
    try:
        conn.execute("SET TimeZone = 'UTC'")
        yield conn
    finally:
        conn.close()


def provider_health_rows(conn: duckdb.DuckDBPyConnection) -> list[dict] | None:
    """Rows of ``provider_health`` by provider name, or ``None`` when the table does not exist yet."""
    if not table_exists(conn, "provider_health"):
        return None
    cursor = conn.execute(
        "SELECT provider_name, status, last_ok_at, fail_count, disabled_until, last_error, updated_at "
        "FROM provider_health ORDER BY provider_name"
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def read_provider_health(db_path: str | Path) -> list[dict] | None:
    """Rows of ``provider_health``, or ``None`` when the file or the table does not exist yet."""
    if not Path(db_path).exists():
        return None
    with read_only_db(db_path) as conn:
        return provider_health_rows(conn)
