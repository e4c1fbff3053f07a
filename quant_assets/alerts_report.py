"""Alerts for people: what the ``alerts`` and ``alert_deliveries`` tables hold.

Three readers share it: ``quant alerts`` (every open alert with its deliveries; ``--all`` adds the
resolved ones), the alerts section of ``quant report`` (counts by severity and the newest few,
one line each), and the ``open_alerts`` asset (markdown tables in the UI). It reads, never
writes: a read-only connection is enough, and a file without an ``alerts`` table reads as
"nothing recorded yet" (``None``).

Conventions: times are UTC (the tables hold naive UTC timestamps) shown to the second. Open
alerts come by severity (CRITICAL, ERROR, WARN), then by last seen, newest first; resolved ones
by when they resolved, newest first. ``occurrences`` counts consecutive failing observations.
Free text (messages, delivery errors, provider errors) passes the project's scrubber once more
before it is shown, although its writers scrubbed it already.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb

from quant_assets.resources.alerts import SINKS
from quant_assets.resources.tables import table_exists
from quant_assets.secrets import scrub

SEVERITIES = ("CRITICAL", "ERROR", "WARN")
NOTIFICATIONS = ("OPENED", "ESCALATED", "RESOLVED")
REPORT_NEWEST = 5
MESSAGE_CELL = 200  # characters of a message in a markdown cell or a report line

ALERTS_SQL = """
    SELECT alert_id, alert_key, source, severity, status, message, first_seen, last_seen, occurrences,
           resolved_at, webhook_status, telegram_status, details
    FROM alerts
    WHERE status = 'OPEN' OR ?
    ORDER BY status = 'RESOLVED',
             CASE WHEN status = 'OPEN' THEN list_position(?, severity) END,
             coalesce(resolved_at, last_seen) DESC, alert_id
"""
DELIVERIES_SQL = """
    SELECT alert_id, notification, sink, status, attempts, error, delivered_at
    FROM alert_deliveries
    WHERE list_contains(?, alert_id)
    ORDER BY alert_id, delivered_at, list_position(?, notification), sink
"""


@dataclass(frozen=True)
class DeliveryView:
    """One notification to one sink: its latest status and attempt (``at``, UTC)."""

    notification: str  # OPENED | ESCALATED | RESOLVED
    sink: str
    status: str        # SENT | FAILED | NOT_CONFIGURED | PENDING
    attempts: int
    error: str | None
    at: datetime


@dataclass(frozen=True)
class AlertView:
    """One row of ``alerts`` with what its details JSON links to, and its deliveries."""

    alert_id: str
    key: str
    source: str
    severity: str
    status: str
    message: str
    first_seen: datetime
    last_seen: datetime
    occurrences: int
    resolved_at: datetime | None
    sink_status: dict[str, str]  # the latest delivery's status per sink
    link: str | None
    run_id: str | None
    deliveries: tuple[DeliveryView, ...] = ()


def _details(text: str | None) -> dict:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def read_alerts(conn: duckdb.DuckDBPyConnection, include_resolved: bool = False) -> list[AlertView] | None:
    """Open alerts (and resolved ones with ``include_resolved``) in display order; ``None``
    when the file has no ``alerts`` table."""
    if not table_exists(conn, "alerts"):
        return None
    rows = conn.execute(ALERTS_SQL, [include_resolved, list(SEVERITIES)]).fetchall()
    ids = [row[0] for row in rows]
    deliveries: dict[str, list[DeliveryView]] = {}
    if ids and table_exists(conn, "alert_deliveries"):
        for alert_id, *fields in conn.execute(DELIVERIES_SQL, [ids, list(NOTIFICATIONS)]).fetchall():
            deliveries.setdefault(alert_id, []).append(DeliveryView(*fields))
    alerts = []
    for (alert_id, key, source, severity, status, message, first, last, occurrences, resolved,
         webhook, telegram, details) in rows:
        extra = _details(details)
        alerts.append(AlertView(
            alert_id, key, source, severity, status, scrub(message), first, last, int(occurrences), resolved,
            {"webhook": webhook, "telegram": telegram}, extra.get("link"), extra.get("run_id"),
            tuple(deliveries.get(alert_id, ())),
        ))
    return alerts


def open_counts(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Open alerts per severity, every severity present (zeros included), CRITICAL first."""
    found = dict(conn.execute("SELECT severity, count(*) FROM alerts WHERE status = 'OPEN' GROUP BY ALL").fetchall())
    return {severity: int(found.get(severity, 0)) for severity in SEVERITIES}


def counts_words(counts: dict[str, int]) -> str:
    """``"1 CRITICAL, 2 WARN"`` (severities without an alert left out)."""
    return ", ".join(f"{n} {severity}" for severity, n in counts.items() if n)


def when(value: datetime | None) -> str:
    """A naive UTC timestamp to the second; empty for none."""
    return "" if value is None else f"{value:%Y-%m-%d %H:%M:%S}"


def _cut(text: str, limit: int = MESSAGE_CELL) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ------------------------------------------------------------------ terminal: `quant alerts`

SENSORS_RECORD = "the alert sensors record them while the Dagster daemon runs (`quant ui`)"
NO_TABLE = f"no alerts table in this DuckDB file yet: {SENSORS_RECORD}"


def _delivery_words(d: DeliveryView) -> str:
    if d.status == "NOT_CONFIGURED":
        return f"{d.notification} not configured"
    tries = f" after {d.attempts} attempt{'s' if d.attempts != 1 else ''}" if d.attempts else ""
    error = f": {_cut(scrub(d.error), 120)}" if d.error else ""
    return f"{d.notification} {d.status}{tries}, last {when(d.at)}{error}"


def delivery_lines(alert: AlertView) -> list[str]:
    """One line per sink: each notification's status, attempts and last attempt."""
    lines = []
    for sink in SINKS:
        mine = [d for d in alert.deliveries if d.sink == sink]
        if not mine:
            text = "no delivery recorded"
        elif all(d.status == "NOT_CONFIGURED" for d in mine):
            text = "not configured"
        else:
            text = "; ".join(_delivery_words(d) for d in mine)
        lines.append(f"  {sink}: {text}")
    return lines


def alert_block(alert: AlertView) -> list[str]:
    label = "RESOLVED" if alert.status == "RESOLVED" else alert.severity
    failures = f"{alert.occurrences} consecutive failure{'s' if alert.occurrences != 1 else ''}"
    seen = f"  first seen {when(alert.first_seen)}, last seen {when(alert.last_seen)} UTC; {failures}"
    if alert.resolved_at is not None:
        seen += f"; resolved {when(alert.resolved_at)} UTC (was {alert.severity})"
    lines = [f"[{label}] {alert.key} ({alert.source})", f"  {alert.message}", seen]
    if alert.link:
        lines.append(f"  {'run ' + alert.run_id[:8] if alert.run_id else 'link'}: {alert.link}")
    return lines + delivery_lines(alert)


def alerts_lines(conn: duckdb.DuckDBPyConnection, include_resolved: bool = False) -> list[str]:
    """``quant alerts``: every open alert with its deliveries; resolved ones too when asked."""
    alerts = read_alerts(conn, include_resolved)
    if alerts is None:
        return [NO_TABLE]
    open_ = [a for a in alerts if a.status == "OPEN"]
    resolved = [a for a in alerts if a.status == "RESOLVED"]
    counts = counts_words(open_counts(conn))
    lines = [f"open alerts: {len(open_)} ({counts})" if open_ else "no open alerts"]
    for alert in open_:
        lines += alert_block(alert)
    if include_resolved:
        lines.append(f"resolved alerts: {len(resolved)}")
        for alert in resolved:
            lines += alert_block(alert)
    else:
        (hidden,) = conn.execute("SELECT count(*) FROM alerts WHERE status = 'RESOLVED'").fetchone()
        if hidden:
            lines.append(f"{hidden} resolved alert{'s' if hidden != 1 else ''} not shown: `quant alerts --all`")
    return lines


def report_alert_lines(conn: duckdb.DuckDBPyConnection, newest: int = REPORT_NEWEST) -> list[str]:
    """The alerts section of ``quant report``: open counts by severity, the newest open ones."""
    alerts = read_alerts(conn)
    if alerts is None:
        return [f"alerts: none recorded yet (no alerts table); {SENSORS_RECORD}"]
    (resolved,) = conn.execute("SELECT count(*) FROM alerts WHERE status = 'RESOLVED'").fetchone()
    if not alerts:
        return [f"alerts: none open, {resolved} resolved" if resolved else f"alerts: none recorded yet; {SENSORS_RECORD}"]
    lines = [f"alerts: {len(alerts)} open ({counts_words(open_counts(conn))}), {resolved} resolved; "
             "newest open (`quant alerts` for deliveries and links):"]
    for alert in sorted(alerts, key=lambda a: a.last_seen, reverse=True)[:newest]:
        lines.append(f"  [{alert.severity}] {when(alert.last_seen)}  {alert.key}: {_cut(alert.message, 120)}")
    return lines


# ------------------------------------------------------------------ markdown: the UI


def _cell(text: object) -> str:
    """A markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("\\", "\\\\").replace("|", "\\|")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table of cells already made (:func:`_cell`, or markdown such as a link)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _link(alert: AlertView) -> str:
    if not alert.link:
        return ""
    label = f"run {alert.run_id[:8]}" if alert.run_id else "open"
    return f"[{label}]({alert.link.replace(')', '%29').replace(' ', '%20')})"


def alerts_markdown(alerts: Sequence[AlertView], limit: int = 50) -> str:
    """Open alerts as a markdown table, with a link to the run (or page) that raised each one."""
    if not alerts:
        return "_no open alerts_"
    header = ["severity", "alert", "message", "first seen (UTC)", "last seen (UTC)", "failures", "webhook",
              "telegram", "raised by"]
    rows = [
        [*(_cell(v) for v in (a.severity, a.key, _cut(a.message), when(a.first_seen), when(a.last_seen),
                               a.occurrences, a.sink_status["webhook"], a.sink_status["telegram"])), _link(a)]
        for a in alerts[:limit]
    ]
    text = _table(header, rows)
    if len(alerts) > limit:
        text += f"\n\n_{len(alerts) - limit} more open alerts: `quant alerts` lists them all_"
    return text


def provider_health_markdown(rows: Sequence[dict] | None, now: datetime) -> str:
    """``provider_health`` as a markdown table; the circuit is open while ``disabled_until`` > ``now``
    (naive UTC)."""
    if rows is None:
        return "_no provider_health table yet (ingestion writes it)_"
    if not rows:
        return "_no provider has been called yet_"
    table = []
    for r in rows:
        until = r["disabled_until"]
        circuit = f"open until {when(until)}" if until is not None and until > now else "closed"
        table.append([_cell(v) for v in (r["provider_name"], r["status"], circuit, when(r["last_ok_at"]),
                                         r["fail_count"], _cut(scrub(r["last_error"] or ""), 120),
                                         when(r["updated_at"]))])
    header = ["provider", "status", "circuit", "last OK (UTC)", "consecutive failures", "last error",
              "updated (UTC)"]
    return _table(header, table)
