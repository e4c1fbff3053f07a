"""Refresh automation and catalogue policies applied across the graph.

- **Schedules** (``automation.schedules_enabled``, default off): one per partitioned job, built
  from the job's partitions with ``build_schedule_from_partitioned_job``, so each tick at
  ``automation.daily_at`` UTC targets the day that has just closed. With
  ``automation.intraday_refresh`` an hourly schedule also refreshes the current day when the
  partitions include it.
- **Declarative downstream** (``automation.declarative_enabled``, default on): every asset but
  the scheduled ``raw_candles`` and the polled ingestion sources follows its upstreams (an
  unpartitioned dimension is built once when missing), only once every blocking check of its
  existing dependency partitions has passed:

  * the latest daily partition as ``eager()`` does (when a dependency updates or it goes
    missing; not while its own day's dependencies are missing or anything it reads is in
    progress). A missing *earlier* partition in a declared lookback (``lib.lookback``) does not
    hold it back: it is built incomplete, NULL where that lookback is needed;
  * any partition that exists is re-materialized when a partition it depends on through its
    partition mapping was materialized after it (``eager()`` alone only ever looks at the latest
    partition, and ignores updates made by a run that also targeted the asset), so a day that
    lands late refreshes the later days whose lookback it is, and those refresh theirs in turn.

  So a new ``raw_candles`` partition pulls bars, features, signals, backtests and manifests after
  it, stage by stage, a backfilled earlier day corrects the days after it, and nothing runs
  downstream of a failed blocking check. Evaluated by the ``default_automation_condition_sensor``
  defined here.
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
    "factors": ["team:quant-research"],
    "research": ["team:quant-research"],
    "backtests": ["team:quant-research"],
    "governance": ["team:research-governance"],
    "platform": ["team:data-engineering"],
}
DEFAULT_OWNERS = ["team:data-engineering"]
FRESHNESS_GROUPS = ("bars", "features")
ROOT_ASSETS = ("raw_candles",)


def _schedule_status(settings: Settings) -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.RUNNING if settings.automation.schedules_enabled else dg.DefaultScheduleStatus.STOPPED


def daily_time(settings: Settings) -> tuple[int, int]:
    hour, minute = settings.automation.daily_at.split(":")
    return int(hour), int(minute)


def latest_partition_condition() -> dg.AutomationCondition:
    """``eager()``, except that only the partition's own day of each dependency must exist: a
    missing earlier day of a lookback makes the partition incomplete, not unbuilt."""
    c = dg.AutomationCondition
    own_day_missing = c.any_deps_match(
        c.missing() & ~c.will_be_requested() & c.in_latest_time_window()
    ).with_label("own_day_dep_missing")
    return (
        c.in_latest_time_window()
        & (c.newly_missing() | c.any_deps_updated()).since_last_handled()
        & ~own_day_missing
        & ~c.any_deps_in_progress()
        & ~c.in_progress()
    ).with_label("eager_latest")


def lookback_refresh_condition() -> dg.AutomationCondition:
    """A partition that exists, once a partition it depends on (its own day's or one in its
    lookback) was materialized after it: the late-landing day's effect on the days after it.

    "After" is decided by materialization time, also when both landed within one tick (two
    concurrent runs), so a range run that wrote the dependency first does not refresh anything.
    It waits while a dependency is requested or in progress (a chain refreshes stage by stage,
    each partition once) and does not retry a refresh that failed until the partition is
    materialized again.
    """
    c = dg.AutomationCondition
    stale = c.any_deps_match(c.newly_updated()).since(c.newly_updated()).with_label("dep_updated_after_it")
    return (
        stale
        & ~c.missing()
        & ~c.any_deps_match(c.will_be_requested()).with_label("any_deps_requested")
        & ~c.any_deps_in_progress()
        & ~c.in_progress()
        & ~c.execution_failed()
    ).with_label("refresh_when_lookback_updated")


def existing_deps_blocking_checks_passed() -> dg.AutomationCondition:
    """Every blocking check of every dependency partition that exists or is requested on this
    tick has passed; a missing lookback day that nothing requests is no failure. (A dependency
    requested on this tick has not passed its checks yet, so stages follow one another.)

    Written as "no dependency partition fails": ``all_deps_match`` holds when *some* partition of
    each dependency matches, which under a lookback mapping would let one good day hide a bad one.
    """
    c = dg.AutomationCondition
    passed = c.all_checks_match(c.check_passed() | c.will_be_requested(), blocking_only=True)
    failing = (~passed & (~c.missing() | c.will_be_requested())).with_label("blocking_check_not_passed")
    return (~c.any_deps_match(failing)).with_label("all_existing_deps_blocking_checks_passed")


def downstream_condition() -> dg.AutomationCondition:
    """Follow upstream updates of the latest partition and refresh earlier partitions whose
    lookback was updated, never past a failed blocking check."""
    return (
        (latest_partition_condition() | lookback_refresh_condition()) & existing_deps_blocking_checks_passed()
    ).with_label("follow_upstream_after_blocking_checks")


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
