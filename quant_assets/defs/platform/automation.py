"""Refresh automation and catalogue policies applied across the graph.

- **Schedules** (``automation.schedules_enabled``, default off): one per partitioned job, built
  from the job's partitions with ``build_schedule_from_partitioned_job``, so each tick at
  ``automation.daily_at`` UTC targets the day that has just closed. With
  ``automation.intraday_refresh`` an hourly schedule also refreshes the current day when the
  partitions include it.
- **Declarative downstream** (``automation.declarative_enabled``, default on): every asset but
  the scheduled ``raw_candles`` and the polled ingestion sources follows its upstreams with
  ``eager()`` (latest daily partition; not while a dependency is missing or in progress; an
  unpartitioned dimension is built once when missing) and only once every blocking check of its
  dependencies has passed.
  So a new ``raw_candles`` partition pulls bars, features, signals, backtests and manifests after
  it, stage by stage, and nothing runs downstream of a failed blocking check. Evaluated by the
  ``default_automation_condition_sensor`` defined here.
- **Freshness**: bars and features carry a cron ``FreshnessPolicy``: materialized between
  midnight UTC and ``daily_at`` + ``freshness_grace_minutes`` each day (shown in the UI).
- **Catalogue**: owners and a ``stage`` tag per stage group, applied centrally.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from quant_assets.config import Settings
from quant_assets.partitions import daily_partitions

STAGE_OWNERS: dict[str, list[str]] = {
    "ingestion": ["team:data-engineering"],
    "bars": ["team:data-engineering"],
    "features": ["team:quant-research"],
    "signals": ["team:quant-research"],
    "research": ["team:quant-research"],
    "backtests": ["team:quant-research"],
    "governance": ["team:research-governance"],
}
DEFAULT_OWNERS = ["team:data-engineering"]
FRESHNESS_GROUPS = ("bars", "features")
ROOT_ASSETS = ("raw_candles",)


def _schedule_status(settings: Settings) -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.RUNNING if settings.automation.schedules_enabled else dg.DefaultScheduleStatus.STOPPED


def daily_time(settings: Settings) -> tuple[int, int]:
    hour, minute = settings.automation.daily_at.split(":")
    return int(hour), int(minute)


def downstream_condition() -> dg.AutomationCondition:
    """Follow upstream updates of the latest partition, never past a failed blocking check."""
    return (
        dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()
    ).with_label("eager_after_blocking_checks")


def build_when_missing() -> dg.AutomationCondition:
    """For a static root (an unpartitioned dimension): built whenever it is missing.

    ``eager()`` would not: it only fills what goes missing after the condition is first evaluated,
    and a never-built dimension would hold every asset downstream of it back for good. A failed
    build is not retried in a loop; materializing it by hand clears that.
    """
    return (
        dg.AutomationCondition.missing()
        & ~dg.AutomationCondition.in_progress()
        & ~dg.AutomationCondition.execution_failed()
    ).with_label("build_when_missing")


def freshness_policy(settings: Settings) -> dg.FreshnessPolicy:
    """Expected between 00:00 UTC and ``daily_at`` + grace, every day."""
    hour, minute = daily_time(settings)
    deadline = timedelta(hours=hour, minutes=minute + settings.automation.freshness_grace_minutes)
    deadline = min(deadline, timedelta(hours=23, minutes=59))
    total = int(deadline.total_seconds() // 60)
    return dg.FreshnessPolicy.cron(
        deadline_cron=f"{total % 60} {total // 60} * * *",
        lower_bound_delta=max(deadline, timedelta(minutes=1)),
        timezone="UTC",
    )


def apply_catalogue(defs: dg.Definitions, settings: Settings) -> dg.Definitions:
    """Owners and stage tags on every asset; automation conditions and freshness where they apply."""
    graph = defs.resolve_asset_graph()
    roots = {dg.AssetKey(name) for name in ROOT_ASSETS}
    has_upstream = {key for key in graph.get_all_asset_keys() if graph.get(key).parent_keys}
    policy = freshness_policy(settings)

    def decorate(spec: dg.AssetSpec) -> dg.AssetSpec:
        group = spec.group_name or "default"
        changes: dict = {}
        if not spec.owners:
            changes["owners"] = STAGE_OWNERS.get(group, DEFAULT_OWNERS)
        # Scheduled roots and the polled ingestion sources have their own triggers; everything
        # else follows its upstreams (a static root such as a dimension is built when missing).
        follows = spec.key not in roots and (spec.key in has_upstream or group != "ingestion")
        if spec.automation_condition is None and follows:
            static = spec.partitions_def is None and spec.key not in has_upstream
            changes["automation_condition"] = build_when_missing() if static else downstream_condition()
        if group in FRESHNESS_GROUPS and spec.partitions_def is not None and spec.freshness_policy is None:
            changes["freshness_policy"] = policy
        spec = spec.merge_attributes(tags={"stage": group})
        return spec.replace_attributes(**changes) if changes else spec

    return defs.map_asset_specs(func=decorate)


@dataclass(frozen=True)
class Automation:
    jobs: list[Any]
    schedules: list[dg.ScheduleDefinition]
    sensors: list[dg.SensorDefinition]


def build_partitioned_jobs(settings: Settings) -> list[Any]:
    """The jobs schedules fill: ingestion of the new day (downstream follows declaratively)."""
    return [
        dg.define_asset_job(
            "daily_ingest_job",
            selection=dg.AssetSelection.assets(*ROOT_ASSETS),
            description=(
                "Fetch one UTC day of candles into raw_candles, with its checks. Bars, features, "
                "signals, backtests and manifests follow through their automation conditions."
            ),
            tags={"quant/trigger": "schedule"},
        )
    ]


def build_intraday_schedule(
    job: Any, partitions_def: dg.PartitionsDefinition, settings: Settings
) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"{job.name}_intraday_schedule",
        cron_schedule="5 * * * *",
        execution_timezone="UTC",
        job=job,
        default_status=_schedule_status(settings),
        description="Hourly refresh of the current UTC day (automation.intraday_refresh).",
    )
    def intraday(context: dg.ScheduleEvaluationContext):
        now = context.scheduled_execution_time or datetime.now(UTC)
        key = now.astimezone(UTC).date().isoformat()
        if key not in partitions_def.get_partition_keys(current_time=now):
            return dg.SkipReason(
                f"no partition {key} yet: daily partitions hold complete days only, so the current "
                "day is refreshed once it closes"
            )
        return dg.RunRequest(run_key=f"{key}@{now:%H}", partition_key=key)

    return intraday


def build_automation(settings: Settings) -> Automation:
    jobs = build_partitioned_jobs(settings)
    hour, minute = daily_time(settings)
    schedules: list[dg.ScheduleDefinition] = [
        dg.build_schedule_from_partitioned_job(
            job,
            name=f"{job.name}_schedule",
            hour_of_day=hour,
            minute_of_hour=minute,
            default_status=_schedule_status(settings),
            description=f"Fills each new daily partition at {settings.automation.daily_at} UTC.",
        )
        for job in jobs
    ]
    if settings.automation.intraday_refresh:
        schedules += [build_intraday_schedule(job, daily_partitions(settings), settings) for job in jobs]
    sensor = dg.AutomationConditionSensorDefinition(
        "default_automation_condition_sensor",
        target=dg.AssetSelection.all(),
        default_status=(
            dg.DefaultSensorStatus.RUNNING if settings.automation.declarative_enabled else dg.DefaultSensorStatus.STOPPED
        ),
        description="Evaluates the automation conditions: downstream assets follow new upstream partitions.",
    )
    return Automation(jobs=jobs, schedules=schedules, sensors=[sensor])
