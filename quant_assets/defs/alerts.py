"""Alert sensors: asset-check evaluations, run failures and recoveries, provider health.

- ``check_alert_sensor`` reads every completed asset-check execution of the code location after
  its cursor (one execution id per check), blocking and non-blocking alike (run-failure sensors
  never see a failed WARN check: its run succeeds). The cursor moves only once the batch is
  recorded in the ``alerts`` table, so a restart neither skips nor repeats an evaluation.
- ``run_failure_alert_sensor`` / ``run_recovery_alert_sensor``: a failed run opens (or repeats,
  then escalates) the alert of its job and asset selection; the next successful run of the same
  selection resolves it.
- ``provider_health_alert_sensor`` reads ``provider_health`` (written by ingestion): a provider
  whose circuit is open (``disabled_until`` in the future) or that is DOWN for longer than
  ``alerts.provider_down_minutes`` alerts; back to OK resolves. Skips quietly until the table
  exists.

Noise control (once per failure, escalation, "resolved") is ``quant.alerting``; sinks and the
table are ``resources.alerts``. Sensors start RUNNING when ``alerts.enabled`` (the default).
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
from dagster._core.storage.asset_check_execution_record import (  # not re-exported by dagster
    AssetCheckExecutionRecord,
    AssetCheckExecutionRecordStatus,
)

from quant_assets.config import Settings
from quant_assets.quant.alerting import Observation
from quant_assets.resources.alerts import AlertStoreBusy, process_observations, read_provider_health

PAGE = 100


def _status(enabled: bool) -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if enabled else dg.DefaultSensorStatus.STOPPED


def fetch_check_evaluations(
    instance: dg.DagsterInstance, check_keys: Sequence[dg.AssetCheckKey], cursor: dict[str, int],
    page: int = PAGE,
) -> tuple[list[AssetCheckExecutionRecord], dict[str, int]]:
    """Completed evaluations of ``check_keys`` after each key's cursor id, oldest first.

    Reads the instance's asset-check execution history (one table with global ids, also on the
    run-sharded SQLite storage of a local ``DAGSTER_HOME``). A key's cursor stops before an
    execution that is still planned in an unfinished run, so its result is read once it lands;
    an execution whose run ended without a result is passed over.
    """
    storage = instance.event_log_storage
    found: list[AssetCheckExecutionRecord] = []
    advanced = dict(cursor)
    for key in check_keys:
        name = key.to_user_string()
        last = cursor.get(name, 0)
        fresh: list[AssetCheckExecutionRecord] = []
        before = None
        while True:  # newest first, paged back to the cursor
            batch = storage.get_asset_check_execution_history(key, limit=page, cursor=before)
            newer = [r for r in batch if r.id > last]
            fresh += newer
            if len(newer) < len(batch) or len(batch) < page:
                break
            before = batch[-1].id
        for record in sorted(fresh, key=lambda r: r.id):
            if record.status == AssetCheckExecutionRecordStatus.PLANNED:
                run = instance.get_run_by_id(record.run_id)
                if run is not None and not run.is_finished:
                    break  # still running: read it (and what follows) next tick
            elif record.event is not None and record.event.dagster_event is not None:
                found.append(record)
            last = record.id
        if last:
            advanced[name] = last  # keys never evaluated stay out of the cursor
    found.sort(key=lambda r: (r.event.timestamp, r.id))
    return found, advanced


def is_daily_copy(record: AssetCheckExecutionRecord) -> bool:
    """A per-day result a multi-day run logs besides its own (see ``sql_models``)."""
    return "day_of_range" in record.event.dagster_event.event_specific_data.metadata


def check_observation(record: AssetCheckExecutionRecord, settings: Settings) -> Observation:
    entry = record.event
    evaluation = entry.dagster_event.event_specific_data  # AssetCheckEvaluation
    asset = evaluation.asset_key.to_user_string()
    blocking = bool(evaluation.blocking) or evaluation.severity == dg.AssetCheckSeverity.ERROR
    failing_rows = evaluation.metadata.get("failing_rows")
    partition = evaluation.partition or record.partition  # None for a range run: the run link shows it
    where = f" for {partition}" if partition else ""
    if evaluation.passed:
        message = f"check {evaluation.check_name} on {asset} passes again{where}"
    else:
        rows = f": {failing_rows.value} failing rows" if failing_rows is not None else ""
        kind = "blocking" if blocking else "warning"
        message = f"{kind} check {evaluation.check_name} on {asset} failed{where}{rows}"
    return Observation(
        key=f"check:{asset}:{evaluation.check_name}",
        source="asset_check",
        failing=not evaluation.passed,
        severity="ERROR" if blocking else "WARN",
        message=message,
        at=datetime.fromtimestamp(entry.timestamp, UTC),
        details={"run_id": entry.run_id, "partition": partition, "blocking": blocking,
                 "execution_id": record.id, "link": f"{settings.alerts.ui_url}/runs/{entry.run_id}"},
    )


def build_check_alert_sensor(settings: Settings) -> dg.SensorDefinition:
    @dg.sensor(
        name="check_alert_sensor",
        description=(
            "Alerts on asset-check evaluations, blocking and non-blocking: once when a check starts "
            "failing, CRITICAL after repeated failures, 'resolved' when it passes again. Writes the "
            "alerts table and posts to the webhook / Telegram sinks configured by environment."
        ),
        minimum_interval_seconds=settings.alerts.check_interval_s,
        default_status=_status(settings.alerts.enabled),
    )
    def check_alert_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        cursor = json.loads(context.cursor) if context.cursor else {}
        keys = sorted(context.repository_def.asset_graph.asset_check_keys, key=lambda k: k.to_user_string())
        records, advanced = fetch_check_evaluations(context.instance, keys, cursor)
        if not records:
            if advanced != cursor:
                context.update_cursor(json.dumps(advanced, sort_keys=True))
            return dg.SkipReason("no new asset check evaluations")
        # A multi-day run also logs each day's result (sql_models): those serve the per-partition
        # UI and automation; alerting follows the run's own result for the range.
        observations = [check_observation(r, settings) for r in records if not is_daily_copy(r)]
        if not observations:
            context.update_cursor(json.dumps(advanced, sort_keys=True))
            return dg.SkipReason("only per-day copies of range-run check results")
        try:
            outcome = process_observations(settings.duckdb_path, observations, settings.alerts)
        except AlertStoreBusy as exc:
            return dg.SkipReason(f"{exc}; the same evaluations are read again next tick")
        context.update_cursor(json.dumps(advanced, sort_keys=True))
        context.log.info(outcome.summary())
        return dg.SkipReason(outcome.summary())

    return check_alert_sensor


def _run_key(run: dg.DagsterRun) -> str:
    assets = sorted(k.to_user_string() for k in (run.asset_selection or ()))
    return f"run:{run.job_name}" + (f":{','.join(assets)}" if assets else "")


def _run_where(run: dg.DagsterRun) -> str:
    tags = run.tags
    if "dagster/partition" in tags:
        return f" for {tags['dagster/partition']}"
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    return f" for {start}..{end}" if start and end else ""


def run_observation(run: dg.DagsterRun, failing: bool, settings: Settings, reason: str = "") -> Observation:
    assets = sorted(k.to_user_string() for k in (run.asset_selection or ()))
    what = f"{run.job_name}" + (f" ({', '.join(assets)})" if assets else "")
    if failing:
        message = f"run {run.run_id[:8]} of {what}{_run_where(run)} failed" + (f": {reason}" if reason else "")
    else:
        message = f"run {run.run_id[:8]} of {what}{_run_where(run)} succeeded again"
    return Observation(
        key=_run_key(run), source="run", failing=failing, severity="ERROR", message=message[:1000],
        at=datetime.now(UTC),
        details={"run_id": run.run_id, "link": f"{settings.alerts.ui_url}/runs/{run.run_id}"},
    )


def build_run_alert_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    @dg.run_failure_sensor(
        name="run_failure_alert_sensor",
        description="Alerts when a run fails (once per job and asset selection until a run of it succeeds).",
        minimum_interval_seconds=settings.alerts.check_interval_s,
        default_status=_status(settings.alerts.enabled),
        monitor_all_code_locations=True,  # also runs launched in-process by the `quant` command
    )
    def run_failure_alert_sensor(context: dg.RunFailureSensorContext) -> None:
        reason = context.failure_event.message if context.failure_event else ""
        obs = run_observation(context.dagster_run, True, settings, (reason or "").splitlines()[0] if reason else "")
        outcome = process_observations(settings.duckdb_path, [obs], settings.alerts)
        context.log.info(outcome.summary())

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        name="run_recovery_alert_sensor",
        description="Resolves a run-failure alert when a later run of the same job and selection succeeds.",
        minimum_interval_seconds=settings.alerts.check_interval_s,
        default_status=_status(settings.alerts.enabled),
        monitor_all_code_locations=True,
    )
    def run_recovery_alert_sensor(context: dg.RunStatusSensorContext) -> None:
        obs = run_observation(context.dagster_run, False, settings)
        outcome = process_observations(settings.duckdb_path, [obs], settings.alerts)
        if outcome.resolved:
            context.log.info(outcome.summary())

    return [run_failure_alert_sensor, run_recovery_alert_sensor]


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def provider_state(row: dict, now: datetime, down_after: timedelta) -> tuple[str, str, str]:
    """``(state, severity, reason)`` of one provider_health row; state FAILING, HEALTHY or UNSURE."""
    name, status = row["provider_name"], row["status"]
    disabled_until, last_ok = _aware(row["disabled_until"]), _aware(row["last_ok_at"])
    last_error = f"; last error: {str(row['last_error'])[:200]}" if row.get("last_error") else ""
    if disabled_until is not None and disabled_until > now:
        return ("FAILING", "WARN",
                f"provider {name}: circuit open until {disabled_until:%Y-%m-%d %H:%M:%S} UTC after "
                f"{row['fail_count']} consecutive failures (status {status}){last_error}")
    if status == "DOWN" and (last_ok is None or now - last_ok > down_after):
        since = f"since {last_ok:%Y-%m-%d %H:%M:%S} UTC" if last_ok else "with no successful call on record"
        return ("FAILING", "ERROR", f"provider {name} is DOWN {since} ({row['fail_count']} failures){last_error}")
    if status == "OK":
        return "HEALTHY", "WARN", f"provider {name} is OK again"
    return "UNSURE", "WARN", ""


def provider_observations(
    rows: Sequence[dict], now: datetime, down_after: timedelta, seen: dict[str, list[str]]
) -> tuple[list[Observation], dict[str, list[str]]]:
    """Observations for rows that changed (``updated_at``) or changed state since ``seen``.

    A provider stuck DOWN without new rows is one observation (it opens the alert), not one per
    tick; each new failing update counts as a repeat and escalates after enough of them.
    """
    observations, cursor = [], dict(seen)
    for row in rows:
        name = row["provider_name"]
        state, severity, reason = provider_state(row, now, down_after)
        stamp = str(row["updated_at"])
        if seen.get(name) == [stamp, state] or state == "UNSURE":
            cursor[name] = [stamp, state]
            continue
        cursor[name] = [stamp, state]
        observations.append(Observation(
            key=f"provider:{name}", source="provider", failing=state == "FAILING", severity=severity,
            message=reason, at=now, details={"provider": name, "status": row["status"]},
        ))
    return observations, cursor


def build_provider_health_sensor(settings: Settings) -> dg.SensorDefinition:
    down_after = timedelta(minutes=settings.alerts.provider_down_minutes)

    @dg.sensor(
        name="provider_health_alert_sensor",
        description=(
            "Alerts when a data provider's circuit breaker opens or it stays DOWN longer than "
            f"{settings.alerts.provider_down_minutes} minutes (table provider_health); 'resolved' when OK again."
        ),
        minimum_interval_seconds=settings.alerts.check_interval_s,
        default_status=_status(settings.alerts.enabled),
    )
    def provider_health_alert_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        try:
            rows = read_provider_health(settings.duckdb_path)
        except AlertStoreBusy as exc:
            return dg.SkipReason(f"{exc}; trying again next tick")
        if rows is None:
            return dg.SkipReason("no provider_health table yet")
        seen = json.loads(context.cursor) if context.cursor else {}
        observations, cursor = provider_observations(rows, datetime.now(UTC), down_after, seen)
        if not observations:
            context.update_cursor(json.dumps(cursor, sort_keys=True))
            return dg.SkipReason(f"{len(rows)} providers, no change")
        try:
            outcome = process_observations(settings.duckdb_path, observations, settings.alerts)
        except AlertStoreBusy as exc:
            return dg.SkipReason(f"{exc}; trying again next tick")
        context.update_cursor(json.dumps(cursor, sort_keys=True))
        return dg.SkipReason(outcome.summary())

    return provider_health_alert_sensor


def build_alert_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    return [
        build_check_alert_sensor(settings),
        *build_run_alert_sensors(settings),
        build_provider_health_sensor(settings),
    ]
