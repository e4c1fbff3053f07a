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

import dagster as dg
from dagster._core.storage.asset_check_execution_record import (  # not re-exported by dagster
    AssetCheckExecutionRecord,
    AssetCheckExecutionRecordStatus,
)

from quant_assets.config import Settings
from quant_assets.quant.alerting import (
    DayResult,
    Observation,
    check_observations,
    provider_observations,
)
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


def day_result(record: AssetCheckExecutionRecord) -> DayResult:
    """One stored evaluation as the alert rules see it."""
    entry = record.event
    evaluation = entry.dagster_event.event_specific_data  # AssetCheckEvaluation
    failing_rows = evaluation.metadata.get("failing_rows")
    reason = evaluation.metadata.get("reason")
    return DayResult(
        asset=evaluation.asset_key.to_user_string(),
        check=evaluation.check_name,
        run_id=entry.run_id,
        partition=evaluation.partition or record.partition,
        passed=evaluation.passed,
        blocking=bool(evaluation.blocking) or evaluation.severity == dg.AssetCheckSeverity.ERROR,
        failing_rows=failing_rows.value if failing_rows is not None else None,
        at=datetime.fromtimestamp(entry.timestamp, UTC),
        execution_id=record.id,
        reason=str(reason.value) if reason is not None else None,
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
        # A range run records one result per day (lib.checks); people get one message per
        # check and run, saying on how many days it failed.
        observations = check_observations([day_result(r) for r in records], settings.alerts.ui_url)
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
