"""Alerts end to end: real check evaluations and runs on an ephemeral instance, real HTTP sinks on 127.0.0.1."""

import logging
from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
import pytest

from quant_assets.defs.platform.alerts import (
    build_check_alert_sensor,
    build_provider_health_sensor,
    build_run_alert_sensors,
)
from quant_assets.quant.alerting import Action, Observation, OpenAlert, decide
from quant_assets.resources.alerts import alerts_db
from quant_assets_tests.conftest import all_defs
from quant_assets_tests.loopback import loopback_receiver

DAY = "2024-03-04"
TOKEN = "123456:SECRET-bot-token-xyz"
CHAT = "-100777"
HOOK_SECRET = "T000/B000/hook-secret-abc"
CHECK = dg.AssetCheckKey(dg.AssetKey("raw_candles"), "raw_candles_valid_ohlcv")
# The blocking check again, with what it blocks (a run needs a partitioned asset in its selection).
CHECK_RUN = dg.AssetSelection.checks(CHECK) | dg.AssetSelection.assets("bars_1h")
FAST_RETRIES = {"retry_attempts": 3, "retry_wait_s": 0.01, "retry_max_wait_s": 0.05, "timeout_s": 5}


def _obs(failing: bool, severity: str = "WARN") -> Observation:
    return Observation("check:a:c", "asset_check", failing, severity, "m", datetime.now(UTC))


def test_noise_rules_open_once_escalate_on_the_third_resolve_on_recovery():
    assert decide(None, _obs(False)).action == Action.NONE
    first = decide(None, _obs(True))
    assert (first.action, first.severity, first.occurrences, first.notify) == (Action.OPEN, "WARN", 1, True)
    second = decide(OpenAlert("id", "WARN", 1), _obs(True))
    assert (second.action, second.notify) == (Action.REPEAT, False)
    third = decide(OpenAlert("id", "WARN", 2), _obs(True))
    assert (third.action, third.severity, third.notify) == (Action.ESCALATE, "CRITICAL", True)
    fourth = decide(OpenAlert("id", "CRITICAL", 3), _obs(True))
    assert (fourth.action, fourth.notify) == (Action.REPEAT, False)
    assert decide(OpenAlert("id", "CRITICAL", 4), _obs(False)).action == Action.RESOLVE
    assert decide(OpenAlert("id", "WARN", 1), _obs(True, "ERROR"), escalate_after=5).severity == "ERROR"


@pytest.fixture
def sinks_env(monkeypatch):
    with loopback_receiver() as receiver:
        monkeypatch.setenv("QUANT_ALERT_WEBHOOK_URL", f"{receiver.url}/services/{HOOK_SECRET}")
        monkeypatch.setenv("QUANT_TELEGRAM_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("QUANT_TELEGRAM_CHAT_ID", CHAT)
        monkeypatch.setenv("QUANT_TELEGRAM_BASE_URL", receiver.url)
        yield receiver


def _run(defs, instance, selection, raise_on_error=True):
    """Materialize ``selection`` of the daily-partitioned definitions for DAY on ``instance``."""
    daily = [d for d in all_defs(defs) if getattr(d, "partitions_def", None) is not None]
    return dg.materialize(
        daily, partition_key=DAY, resources=defs.resources, selection=selection,
        instance=instance, raise_on_error=raise_on_error,
    )


def _corrupt(settings) -> None:
    with duckdb.connect(str(settings.duckdb_path)) as conn:
        conn.execute("UPDATE raw_candles SET high = low * 0.5 WHERE ts = ?::TIMESTAMP + INTERVAL 1 HOUR", [DAY])


def _tick(sensor, instance, cursor, defs=None):
    repository = defs.get_repository_def() if defs is not None else None
    context = dg.build_sensor_context(instance=instance, cursor=cursor, repository_def=repository)
    result = sensor(context)
    return context.cursor, result


def _alerts(settings):
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        alerts = conn.execute(
            "SELECT alert_key, source, severity, status, message, occurrences, webhook_status, telegram_status, "
            "first_seen, last_seen, details FROM alerts ORDER BY first_seen"
        ).fetchall()
        deliveries = conn.execute(
            "SELECT notification, sink, status, attempts, coalesce(error, '') FROM alert_deliveries ORDER BY delivered_at, sink"
        ).fetchall()
    return alerts, deliveries


@pytest.fixture(params=["ephemeral", "local"])
def instance(request, tmp_path):
    """In-memory storage, and the run-sharded SQLite storage a real ``DAGSTER_HOME`` uses."""
    if request.param == "ephemeral":
        with dg.DagsterInstance.ephemeral() as inst:
            yield inst
    else:
        home = tmp_path / "dagster_home"
        home.mkdir()
        with dg.DagsterInstance.local_temp(str(home)) as inst:
            yield inst


def test_failing_check_alerts_each_sink_once_escalates_then_resolves(
    make_settings, defs_for, sinks_env, caplog, instance
):
    caplog.set_level(logging.DEBUG)
    settings = make_settings(alerts=FAST_RETRIES)
    defs = defs_for(settings)
    sensor = build_check_alert_sensor(settings)
    receiver = sinks_env
    assert _run(defs, instance, "raw_candles").success  # all checks pass
    cursor, result = _tick(sensor, instance, None, defs)
    assert cursor is not None and receiver.paths == []  # passing checks: nothing to say

    _corrupt(settings)
    failed = _run(defs, instance, CHECK_RUN, raise_on_error=False)
    assert not failed.get_asset_check_evaluations()[0].passed
    cursor, result = _tick(sensor, instance, cursor, defs)
    assert len(receiver.texts("webhook")) == 1 and len(receiver.texts("telegram")) == 1
    text = receiver.texts("webhook")[0]
    assert text.startswith("[ERROR] blocking check raw_candles_valid_ohlcv on raw_candles failed")
    assert "3 failing rows" in text
    assert receiver.requests["telegram"][0]["chat_id"] == CHAT
    assert receiver.requests["webhook"][0]["blocks"][0]["type"] == "section"

    # The same failure evaluated again: nothing sent. Nothing new at all: nothing sent.
    _run(defs, instance, CHECK_RUN, raise_on_error=False)
    cursor, _ = _tick(sensor, instance, cursor, defs)
    cursor, result = _tick(sensor, instance, cursor, defs)
    assert isinstance(result, dg.SkipReason) and "no new" in result.skip_message
    assert len(receiver.paths) == 2

    # A third consecutive failure escalates, once per sink.
    _run(defs, instance, CHECK_RUN, raise_on_error=False)
    cursor, _ = _tick(sensor, instance, cursor, defs)
    assert receiver.texts("webhook")[1].startswith("[CRITICAL] escalated")
    assert len(receiver.texts("telegram")) == 2

    # Repaired (re-materialized): one "resolved" per sink.
    assert _run(defs, instance, "raw_candles").success
    cursor, _ = _tick(sensor, instance, cursor, defs)
    assert receiver.texts("webhook")[2].startswith("[RESOLVED] check raw_candles_valid_ohlcv")
    assert receiver.texts("telegram")[2].startswith("[RESOLVED]")
    assert len(receiver.paths) == 6
    events = repr([instance.all_logs(r.run_id) for r in instance.get_runs()])

    alerts, deliveries = _alerts(settings)
    assert len(alerts) == 1
    key, source, severity, status, _msg, occurrences, hook, tele, first, last, _details = alerts[0]
    assert (key, source, severity, status, occurrences) == (
        "check:raw_candles:raw_candles_valid_ohlcv", "asset_check", "CRITICAL", "RESOLVED", 3)
    assert (hook, tele) == ("SENT", "SENT") and first < last
    assert sorted((n, s, st) for n, s, st, _a, _e in deliveries) == sorted(
        (n, s, "SENT") for n in ("OPENED", "ESCALATED", "RESOLVED") for s in ("telegram", "webhook"))
    # Secrets never appear in the table, the logs, or anything sent in the body.
    stored = repr(alerts) + repr(deliveries)
    for secret in (TOKEN, HOOK_SECRET, receiver.url + "/services"):
        assert secret not in stored
        assert secret not in caplog.text
        assert secret not in events  # run logs and metadata
        assert secret not in repr(receiver.requests)


def test_sink_returning_500_is_retried_recorded_failed_and_never_stops_the_sensor(
    make_settings, defs_for, sinks_env, caplog
):
    caplog.set_level(logging.DEBUG)
    settings = make_settings(alerts=FAST_RETRIES)
    defs = defs_for(settings)
    receiver = sinks_env
    receiver.status["webhook"] = 500
    failure_sensor, recovery_sensor = build_run_alert_sensors(settings)
    with dg.DagsterInstance.ephemeral() as instance:
        assert _run(defs, instance, "raw_candles").success
        _corrupt(settings)
        failed = _run(defs, instance, CHECK_RUN, raise_on_error=False)
        assert not failed.success
        run = instance.get_run_by_id(failed.run_id)
        failure_event = next(e for e in failed.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert_sensor", dagster_instance=instance, dagster_run=run,
            dagster_event=failure_event,
        ).for_run_failure()
        failure_sensor(context)  # must not raise although the webhook is down

        assert len(receiver.requests["webhook"]) == FAST_RETRIES["retry_attempts"]  # retried
        assert len(receiver.requests["telegram"]) == 1
        alerts, deliveries = _alerts(settings)
        assert len(alerts) == 1 and alerts[0][1] == "run" and alerts[0][2] == "ERROR"
        assert (alerts[0][6], alerts[0][7]) == ("FAILED", "SENT")
        webhook = next(d for d in deliveries if d[1] == "webhook")
        assert webhook[2:4] == ("FAILED", 3) and "HTTP 500" in webhook[4]

        # Repaired, the same selection runs again and succeeds: the recovery sensor resolves it.
        receiver.status["webhook"] = 200
        assert _run(defs, instance, "raw_candles").success
        again = _run(defs, instance, CHECK_RUN)
        good = instance.get_run_by_id(again.run_id)
        assert good.asset_selection == run.asset_selection
        success_event = next(e for e in again.all_events if e.event_type == dg.DagsterEventType.RUN_SUCCESS)
        recovery_sensor(dg.build_run_status_sensor_context(
            sensor_name="run_recovery_alert_sensor", dagster_instance=instance, dagster_run=good,
            dagster_event=success_event,
        ))
        assert receiver.texts("webhook")[-1].startswith("[RESOLVED] run")
        assert _alerts(settings)[0][0][3] == "RESOLVED"
    assert TOKEN not in caplog.text and HOOK_SECRET not in caplog.text


def _provider_table(settings, rows):
    with alerts_db(settings.duckdb_path) as conn:  # migrated: provider_health is ingestion's table
        conn.execute("DELETE FROM provider_health")
        conn.executemany("INSERT INTO provider_health VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def test_provider_health_alerts_on_open_circuit_and_long_downtime_then_resolves(make_settings, sinks_env):
    settings = make_settings(alerts={**FAST_RETRIES, "provider_down_minutes": 15})
    sensor = build_provider_health_sensor(settings)
    receiver = sinks_env
    now = datetime.now(UTC).replace(tzinfo=None)
    with dg.DagsterInstance.ephemeral() as instance:
        cursor, result = _tick(sensor, instance, None)
        assert "no provider_health table" in result.skip_message  # skips quietly until it exists

        _provider_table(settings, [
            ("binance", "DEGRADED", now - timedelta(minutes=2), 3, now + timedelta(minutes=1), "HTTP 503", now),
            ("kraken", "DOWN", now - timedelta(minutes=40), 9, None, "timeout", now),
            ("coinbase", "DOWN", now - timedelta(minutes=3), 1, None, "timeout", now),  # not long enough
            ("simulator", "OK", now, 0, None, None, now),
        ])
        cursor, _ = _tick(sensor, instance, cursor)
        texts = sorted(receiver.texts("webhook"))
        assert len(texts) == 2
        assert texts[0].startswith("[ERROR] provider kraken is DOWN since")
        assert texts[1].startswith("[WARN] provider binance: circuit open until")
        cursor, _ = _tick(sensor, instance, cursor)  # nothing changed: nothing sent
        assert len(receiver.texts("webhook")) == 2

        later = now + timedelta(seconds=5)
        _provider_table(settings, [
            ("binance", "OK", later, 0, None, None, later),
            ("kraken", "DOWN", now - timedelta(minutes=40), 10, None, "timeout", later),
            ("coinbase", "DOWN", now - timedelta(minutes=3), 2, None, "timeout", later),
            ("simulator", "OK", now, 0, None, None, later),
        ])
        cursor, _ = _tick(sensor, instance, cursor)
        assert receiver.texts("webhook")[-1] == "[RESOLVED] provider binance is OK again"
        assert len(receiver.texts("webhook")) == 3 and len(receiver.texts("telegram")) == 3


def test_a_multi_day_run_alerts_once_not_once_per_day(make_settings, defs_for, sinks_env):
    """A range run records each day's check result too; the sensor alerts on the run's result once."""
    settings = make_settings(alerts=FAST_RETRIES)
    defs = defs_for(settings)
    sensor = build_check_alert_sensor(settings)
    with dg.DagsterInstance.ephemeral() as instance:
        tags = {"dagster/asset_partition_range_start": "2024-03-03", "dagster/asset_partition_range_end": "2024-03-05"}
        assert dg.materialize(all_defs(defs), resources=defs.resources, selection="raw_candles",
                              instance=instance, tags=tags).success
        cursor, _ = _tick(sensor, instance, None, defs)
        _corrupt(settings)  # one bad candle, on 2024-03-04 only
        failed = dg.materialize(all_defs(defs), resources=defs.resources, selection=CHECK_RUN,
                                instance=instance, tags=tags, raise_on_error=False)
        assert not failed.success
        history = instance.event_log_storage.get_asset_check_execution_history(CHECK, limit=50)
        per_day = {r.event.asset_check_evaluation.partition: r.event.asset_check_evaluation.passed
                   for r in history if r.run_id == failed.run_id and r.event and r.event.asset_check_evaluation
                   and r.event.asset_check_evaluation.partition}
        assert per_day == {"2024-03-03": True, "2024-03-04": False, "2024-03-05": True}
        _tick(sensor, instance, cursor, defs)
    assert len(sinks_env.texts("webhook")) == 1 and len(sinks_env.texts("telegram")) == 1
    assert "raw_candles_valid_ohlcv" in sinks_env.texts("webhook")[0]
