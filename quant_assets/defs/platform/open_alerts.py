"""``open_alerts``: the alerts that are open and the providers' health, on the asset's page.

Unpartitioned, group ``platform``. A materialization reads the ``alerts`` table (written by the
alert sensors) and ``provider_health`` (written by ingestion) and writes nothing else; its metadata
holds a markdown table of the open alerts (severity, key, message, first and last seen,
consecutive failures, the latest delivery per sink, a link to the run that raised it), the
provider health table, and the open count per severity as numbers, so the asset's Plots tab
draws open alerts over time. It needs no sink: without one the delivery columns read
``NOT_CONFIGURED``.

Refresh (``open_alerts_sensor``, every ``alerts.check_interval_s``): the sensor reads a digest of
what changes the picture, each alert's id, status, severity and delivery status per sink and each
provider's status and circuit, and requests one materialization when it differs from its cursor
(its first tick requests one too). A repeat of a failing observation (occurrences, last seen) is
left out of the digest: a refresh that itself failed would otherwise re-trigger itself for ever;
repeats show at the next refresh. As a static root, the catalogue also builds the asset when it
is missing (``build_when_missing``).
"""

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from quant_assets.alerts_report import (
    SEVERITIES,
    alerts_markdown,
    open_counts,
    provider_health_markdown,
    read_alerts,
)
from quant_assets.config import Settings
from quant_assets.lib.checks import Verdict, daily_check
from quant_assets.resources.alerts import AlertStoreBusy, provider_health_rows, read_only_db
from quant_assets.resources.duckdb import QuantDuckDB
from quant_assets.resources.tables import table_exists
from quant_assets.secrets import scrub

ASSET = "open_alerts"
STATE_SQL = {
    "alerts": "SELECT alert_id, status, severity, webhook_status, telegram_status FROM alerts ORDER BY alert_id",
    "provider_health": "SELECT provider_name, status, disabled_until FROM provider_health ORDER BY provider_name",
}
# Rows that break what the alerts table promises: one open alert per key, resolution times that
# agree with the status, a first sighting no later than the last, deliveries of alerts that exist.
INCONSISTENT_SQL = """
    SELECT alert_key, 'more than one open alert' FROM alerts WHERE status = 'OPEN' GROUP BY ALL HAVING count(*) > 1
    UNION ALL
    SELECT alert_key, 'status and resolved_at disagree' FROM alerts
    WHERE (status = 'OPEN') = (resolved_at IS NOT NULL) OR resolved_at < first_seen
    UNION ALL
    SELECT alert_key, 'last seen before first seen, or no occurrence' FROM alerts
    WHERE last_seen < first_seen OR occurrences < 1
    UNION ALL
    SELECT d.alert_id, 'delivery of an unknown alert' FROM alert_deliveries AS d ANTI JOIN alerts AS a USING (alert_id)
"""


def alert_state_digest(conn: duckdb.DuckDBPyConnection) -> str:
    """SHA-256 over what ``open_alerts`` shows except repeats (see the module doc)."""
    state = {name: conn.execute(sql).fetchall() if table_exists(conn, name) else None for name, sql in STATE_SQL.items()}
    return hashlib.sha256(json.dumps(state, default=str, sort_keys=True).encode()).hexdigest()


def read_alert_state_digest(db_path: str | Path) -> str | None:
    """The digest of the file's alert state; ``None`` when there is no DuckDB file yet."""
    if not Path(db_path).exists():
        return None
    with read_only_db(db_path) as conn:
        return alert_state_digest(conn)


def build_open_alerts(settings: Settings) -> dg.AssetsDefinition:
    @dg.asset(
        name=ASSET, group_name="platform", kinds={"python", "duckdb"}, pool="duckdb",
        description=(
            "The open alerts (failed checks, failed runs, unhealthy providers, stale results) with severity, "
            "message, first and last seen, consecutive failures, delivery status per sink and a link to the run "
            "that raised each, and the provider_health table, as markdown in the metadata; open counts per "
            "severity for the Plots tab. Refreshed by open_alerts_sensor when an alert opens, escalates or "
            "resolves, a delivery's status or a provider's health changes. `quant alerts` prints the same."),
    )
    def open_alerts(context: dg.AssetExecutionContext, duckdb: QuantDuckDB) -> dg.MaterializeResult:
        now = datetime.now(UTC).replace(tzinfo=None)
        with duckdb.connect() as conn:  # migrated: both tables exist, empty on a new file
            alerts = read_alerts(conn) or []
            counts = open_counts(conn)
            providers = provider_health_rows(conn) or []
        not_ok = sum(r["status"] != "OK" for r in providers)
        metadata: dict[str, Any] = {
            "dagster/row_count": len(alerts),
            **{f"open_{severity.lower()}": counts[severity] for severity in SEVERITIES},
            "providers_not_ok": not_ok,
            "open_alerts": dg.MetadataValue.md(scrub(alerts_markdown(alerts))),
            "provider_health": dg.MetadataValue.md(scrub(provider_health_markdown(providers, now))),
        }
        context.log.info(f"{len(alerts)} open alerts; {not_ok} of {len(providers)} providers not OK")
        return dg.MaterializeResult(metadata=metadata)

    return open_alerts


def open_alerts_checks(settings: Settings) -> list[dg.AssetChecksDefinition]:
    @daily_check(settings, asset=ASSET, name="alerts_table_consistent", partitioned=False,
                 description=("The alerts table keeps its promises: at most one open alert per key, resolved_at set "
                              "exactly on resolved alerts and not before first_seen, last_seen not before first_seen, "
                              "at least one occurrence, and every delivery belongs to an alert."))
    def alerts_table_consistent(conn: duckdb.DuckDBPyConnection, _window) -> Verdict:
        bad = conn.execute(INCONSISTENT_SQL).fetchall()
        figures: dict[str, Any] = {"failing_rows": len(bad)}
        if bad:
            figures["reason"] = f"{bad[0][0]}: {bad[0][1]}"
        return Verdict(not bad, figures)

    return [alerts_table_consistent]


def build_open_alerts_sensor(settings: Settings) -> dg.SensorDefinition:
    @dg.sensor(
        name="open_alerts_sensor",
        target=dg.AssetSelection.assets(ASSET),
        description=(
            "Materializes open_alerts when the alerts shown change: an alert opened, escalated or resolved, a "
            "delivery's status, a provider's status or circuit (repeats of a failure wait for the next change)."),
        minimum_interval_seconds=settings.alerts.check_interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING if settings.alerts.enabled else dg.DefaultSensorStatus.STOPPED,
    )
    def open_alerts_sensor(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        try:
            digest = read_alert_state_digest(settings.duckdb_path)
        except AlertStoreBusy as exc:
            return dg.SkipReason(f"{exc}; trying again next tick")
        if digest is None or digest == context.cursor:
            return dg.SkipReason("no DuckDB file yet" if digest is None else "the alerts shown have not changed")
        context.update_cursor(digest)
        return dg.RunRequest(tags={"quant/trigger": "open_alerts_sensor"})

    return open_alerts_sensor
