"""Schedules, declarative downstream refresh and catalogue policies, on an ephemeral instance."""

from datetime import UTC, datetime

import dagster as dg
import duckdb
import pytest

from quant_assets.defs.platform.automation import STAGE_OWNERS, build_intraday_schedule
from quant_assets_tests.conftest import all_defs

DAY = "2024-03-04"
# Half past midnight after DAY: DAY is the latest complete partition.
AFTER_MIDNIGHT = datetime(2024, 3, 5, 0, 30, tzinfo=UTC)
RAW_CHECK = dg.AssetCheckKey(dg.AssetKey("raw_candles"), "raw_candles_valid_ohlcv")


def _schedule(defs, name):
    return defs.resolve_schedule_def(name)


def test_defaults_schedules_stopped_automation_and_alert_sensors_running(settings, defs_for):
    defs = defs_for(settings)
    assert {s.name for s in defs.schedules} == {"daily_ingest_job_schedule"}
    assert _schedule(defs, "daily_ingest_job_schedule").default_status == dg.DefaultScheduleStatus.STOPPED
    running = {s.name for s in defs.sensors if s.default_status == dg.DefaultSensorStatus.RUNNING}
    assert running == {
        "default_automation_condition_sensor", "check_alert_sensor", "run_failure_alert_sensor",
        "run_recovery_alert_sensor", "provider_health_alert_sensor", "stale_results_sensor", "open_alerts_sensor",
    }


def test_config_switches_schedules_on_and_sensors_off(make_settings, defs_for):
    s = make_settings(
        env={"QUANT_SCHEDULES_ENABLED": "true", "QUANT_ALERTS_ENABLED": "false"},
        automation={"declarative_enabled": False, "intraday_refresh": True, "daily_at": "01:30"},
    )
    defs = defs_for(s)
    assert all(_schedule(defs, x.name).default_status == dg.DefaultScheduleStatus.RUNNING for x in defs.schedules)
    assert all(x.default_status == dg.DefaultSensorStatus.STOPPED for x in defs.sensors)
    assert _schedule(defs, "daily_ingest_job_schedule").cron_schedule == "30 1 * * *"
    assert _schedule(defs, "daily_ingest_job_intraday_schedule").cron_schedule == "5 * * * *"


def test_daily_schedule_targets_the_day_that_just_closed(settings, defs_for):
    defs = defs_for(settings)
    schedule = _schedule(defs, "daily_ingest_job_schedule")
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2024, 3, 5, 0, 10, tzinfo=UTC),
            repository_def=defs.get_repository_def(),
        )
        data = schedule.evaluate_tick(context)
    assert [r.partition_key for r in data.run_requests] == [DAY]
    assert schedule.job_name == "daily_ingest_job"
    job = defs.resolve_job_def("daily_ingest_job")
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == {"raw_candles"}


def test_intraday_schedule_targets_today_only_when_today_is_a_partition(settings, defs_for):
    tick = datetime(2024, 3, 5, 10, 5, tzinfo=UTC)
    # The platform's partitions hold complete days only: the hourly tick skips, saying why.
    defs = defs_for(settings)
    job = next(j for j in defs.jobs if j.name == "daily_ingest_job")
    closed_days = dg.Definitions(
        assets=defs.assets, schedules=[build_intraday_schedule(job, dg.DailyPartitionsDefinition("2024-01-01"), settings)],
        resources=defs.resources,
    )
    # Partitions that include the current day: the tick refreshes today.
    today_parts = dg.DailyPartitionsDefinition("2024-01-01", timezone="UTC", end_offset=1)

    @dg.asset(partitions_def=today_parts)
    def live_candles() -> None:
        return None

    live_job = dg.define_asset_job("live_job", selection="live_candles")
    with_today = dg.Definitions(
        assets=[live_candles], jobs=[live_job], schedules=[build_intraday_schedule(live_job, today_parts, settings)]
    )
    with dg.DagsterInstance.ephemeral() as instance:
        outcomes = []
        for mini, name in ((closed_days, "daily_ingest_job_intraday_schedule"), (with_today, "live_job_intraday_schedule")):
            context = dg.build_schedule_context(
                instance=instance, scheduled_execution_time=tick, repository_def=mini.get_repository_def()
            )
            outcomes.append(mini.resolve_schedule_def(name).evaluate_tick(context))
    assert outcomes[0].run_requests == [] and "complete days only" in outcomes[0].skip_message
    assert [r.partition_key for r in outcomes[1].run_requests] == ["2024-03-05"]


def test_catalogue_owners_stage_tags_freshness_on_bars_and_features(settings, defs_for):
    defs = defs_for(settings)
    graph = defs.resolve_asset_graph()
    for spec in defs.resolve_all_asset_specs():
        assert spec.owners and spec.owners == STAGE_OWNERS[spec.group_name], spec.key
        assert spec.tags["stage"] == spec.group_name
        fresh = spec.group_name in ("bars", "features") and spec.partitions_def is not None
        assert (spec.freshness_policy is not None) == fresh, spec.key
        has_upstream = bool(graph.get(spec.key).parent_keys)
        follows = spec.key.to_user_string() != "raw_candles" and (has_upstream or spec.group_name != "ingestion")
        assert (spec.automation_condition is not None) == follows, spec.key
    bars = next(s for s in defs.resolve_all_asset_specs() if s.key.to_user_string() == "bars_1h")
    assert bars.freshness_policy.deadline_cron == "10 2 * * *"  # daily_at 00:10 + 120 min grace


def _materialize(defs, instance, selection, raise_on_error=True):
    daily = [d for d in all_defs(defs) if getattr(d, "partitions_def", None) is not None]
    return dg.materialize(daily, partition_key=DAY, resources=defs.resources, selection=selection,
                          instance=instance, raise_on_error=raise_on_error)


def test_new_raw_partition_pulls_downstream_but_not_past_a_failed_blocking_check(settings, defs_for):
    defs = defs_for(settings)
    specs = list(defs.resolve_all_asset_specs())
    graph = defs.resolve_asset_graph()
    static = {s.key for s in specs if s.partitions_def is None and s.automation_condition is not None}
    # The daily bars built from raw_candles (and static dimensions) alone.
    bars = {s.key.to_user_string() for s in specs
            if s.group_name == "bars" and s.partitions_def is not None and s.automation_condition is not None
            and graph.get(s.key).parent_keys <= {dg.AssetKey("raw_candles"), *static}}
    with dg.DagsterInstance.ephemeral() as instance:
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=AFTER_MIDNIGHT)
        # Nothing upstream yet; only static dimensions (unpartitioned roots) are built when missing.
        assert {k for k in static if first.get_num_requested(k)} == {
            k for k in static if not graph.get(k).parent_keys}
        assert first.total_requested == len({k for k in static if first.get_num_requested(k)})
        if static:
            dimensions = [a for a in defs.assets if set(a.keys) & static]
            assert dg.materialize(dimensions, resources=defs.resources, instance=instance,
                                  selection=dg.AssetSelection.assets(*static)).success

        # raw_candles lands, but a blocking check then fails on it: nothing downstream runs.
        assert _materialize(defs, instance, "raw_candles").success
        with duckdb.connect(str(settings.duckdb_path)) as conn:
            conn.execute("UPDATE raw_candles SET high = low * 0.5 WHERE ts = ?::TIMESTAMP + INTERVAL 1 HOUR", [DAY])
        blocked = _materialize(
            defs, instance,
            dg.AssetSelection.checks(RAW_CHECK) | dg.AssetSelection.assets("raw_candles").downstream(include_self=False),
            raise_on_error=False,
        )
        assert not blocked.success
        second = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, evaluation_time=AFTER_MIDNIGHT, cursor=first.cursor
        )
        assert second.total_requested == 0

        # raw_candles re-fetched, checks pass: the bars of that day are requested, for DAY only.
        assert _materialize(defs, instance, "raw_candles").success
        third = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, evaluation_time=AFTER_MIDNIGHT, cursor=second.cursor
        )
        requested = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()
                     if third.get_num_requested(k)}
        assert requested == bars
        assert all(third.get_requested_partitions(dg.AssetKey(b)) == {DAY} for b in bars)

        # The bars land with passing checks: the features stage follows on the next tick.
        assert _materialize(defs, instance, dg.AssetSelection.assets(*bars)).success
        fourth = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, evaluation_time=AFTER_MIDNIGHT, cursor=third.cursor
        )
        groups = {s.key: s.group_name for s in defs.resolve_all_asset_specs()}
        following = [k for k in groups if fourth.get_num_requested(k)]
        # Whatever reads only bars follows them: features, factors, and the research built on bars
        # alone (regimes, PCA); validation waits for the signals and factors of the day.
        assert following and {groups[k] for k in following} == {"features", "factors", "research"}
        assert {k.to_user_string() for k in following if groups[k] == "research"} == {
            "regimes", "pca_factors", "pca_residuals"}
        assert all(fourth.get_requested_partitions(k) == {DAY} for k in following)


@pytest.mark.parametrize("bad", [{"daily_at": "24:00"}, {"schedules_enabled": "maybe"}])
def test_bad_automation_settings_name_the_key(make_settings, bad):
    from quant_assets.config import ConfigError

    with pytest.raises(ConfigError, match="'automation."):
        make_settings(automation=bad)
