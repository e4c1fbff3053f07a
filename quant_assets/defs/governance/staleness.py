"""Data-change detection: a result whose recorded input changed since is stale, and people hear it.

``manifest_staleness`` (a view) lists every input partition a current day's manifest recorded
whose content hash in ``partition_hashes`` differs now (a re-materialized upstream partition with
other content). Nothing is deleted or rewritten: the manifests stay as they were, the registry
counts the stale days, and ``stale_results_sensor`` opens one alert naming the changed partition
and the results (days, experiments) it affects, resolved once those results are rebuilt.
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb

from quant_assets.config import Settings
from quant_assets.quant.alerting import Observation
from quant_assets.resources.alerts import AlertStoreBusy, process_observations
from quant_assets.resources.tables import table_exists

ALERT_KEY = "governance:stale_results"
STALE_SQL = """
    SELECT s.day, s.table_name, s.input_partition, s.recorded_hash, s.current_hash, m.experiment_ids
    FROM manifest_staleness AS s JOIN backtest_manifest AS m ON m.fold_start = s.day
    ORDER BY s.table_name, s.input_partition, s.day
"""


def stale_results(conn: duckdb.DuckDBPyConnection) -> list[tuple]:
    """``(day, table, partition, recorded sha256, current sha256 or None, experiment ids JSON)``."""
    if not table_exists(conn, "manifest_inputs") or not table_exists(conn, "backtest_manifest"):
        return []
    return conn.execute(STALE_SQL).fetchall()


def staleness_observation(rows: Sequence[tuple], now: datetime, ui_url: str) -> Observation:
    """One observation: failing while any result is stale, naming the first changed input partition
    and what it affects."""
    if not rows:
        return Observation(ALERT_KEY, "governance", False, "WARN", "no stale backtest results: every manifest's "
                           "inputs are as recorded", now)
    changed = sorted({(r[1], r[2], r[3], r[4]) for r in rows})
    table, part, was, current = changed[0]
    days = sorted({r[0] for r in rows})
    experiments = sorted({f"{i} ({mode})" for r in rows for mode, i in json.loads(r[5] or "{}").items()})
    now_text = current[:12] if current else "missing"
    more = f" and {len(changed) - 1} more changed input partitions" if len(changed) > 1 else ""
    message = (f"stale backtest results: {table} {part} changed since its manifest recorded it (sha256 {was[:12]} -> "
               f"{now_text}){more}; affected: {len(days)} days ({days[0]:%Y-%m-%d}..{days[-1]:%Y-%m-%d}), "
               f"experiments {', '.join(experiments)}")
    return Observation(ALERT_KEY, "governance", True, "WARN", message, now,
                       details={"changed": [f"{t} {p}" for t, p, _, _ in changed],
                                "days": [f"{d:%Y-%m-%d}" for d in days], "experiments": experiments,
                                "link": f"{ui_url}/assets/experiment_registry"})


def read_stale_results(db_path: str | Path) -> list[tuple] | None:
    if not Path(db_path).exists():
        return None
    try:
        conn = duckdb.connect(str(db_path), read_only=True)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise AlertStoreBusy(f"DuckDB file is busy: {str(exc).splitlines()[0]}") from None
        raise
    try:
        return stale_results(conn)
    finally:
        conn.close()


def build_stale_results_sensor(settings: Settings) -> dg.SensorDefinition:
    @dg.sensor(
        name="stale_results_sensor",
        description=("Alerts (WARN) when an upstream partition a backtest manifest recorded was re-materialized with "
                     "other content: names the partition, the days and the experiments affected; resolved once they "
                     "are rebuilt. The manifests are kept; experiment_registry counts the stale days."),
        minimum_interval_seconds=settings.alerts.check_interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING if settings.alerts.enabled else dg.DefaultSensorStatus.STOPPED,
    )
    def stale_results_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        try:
            rows = read_stale_results(settings.duckdb_path)
            if rows is None:
                return dg.SkipReason("no DuckDB file yet")
            obs = staleness_observation(rows, datetime.now(UTC), settings.alerts.ui_url)
            outcome = process_observations(settings.duckdb_path, [obs], settings.alerts)
        except AlertStoreBusy as exc:
            return dg.SkipReason(f"{exc}; trying again next tick")
        return dg.SkipReason(f"{len(rows)} stale input records; {outcome.summary()}")

    return stale_results_sensor
