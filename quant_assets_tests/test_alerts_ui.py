"""Alerts people can see: `quant alerts`, the alerts section of `quant report`, the open_alerts asset
and its sensor, after real check evaluations read by the real check_alert_sensor; no sink configured."""

import re
from datetime import datetime, timedelta

import dagster as dg
import duckdb
import pytest

from quant_assets import cli
from quant_assets.defs.platform.alerts import build_check_alert_sensor
from quant_assets.quant.alerting import Observation
from quant_assets.resources.alerts import alerts_db, process_observations
from quant_assets_tests.conftest import all_defs
from quant_assets_tests.loopback import loopback_receiver

DAY = "2024-03-04"
KEY = "check:bar_gaps:bar_gaps_long"
SINK_VARIABLES = ("QUANT_ALERT_WEBHOOK_URL", "QUANT_TELEGRAM_BOT_TOKEN", "QUANT_TELEGRAM_CHAT_ID")


@pytest.fixture
def no_sinks(tmp_path, monkeypatch):
    """The `quant` command reads the same settings as ``make_settings``; no sink is configured."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QUANT_CONFIG", raising=False)
    for name in SINK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("QUANT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("QUANT_SYMBOLS", "BTC/USDT,ETH/USDT,SOL/USDT")
    monkeypatch.setenv("QUANT_START_DATE", "2024-01-01")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dh"))


def _quant(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().out


def _run(defs, instance, selection):
    daily = [d for d in all_defs(defs) if getattr(d, "partitions_def", None) is not None]
    return dg.materialize(daily, partition_key=DAY, resources=defs.resources, selection=selection, instance=instance)


def _tick(sensor, instance, cursor, defs):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, repository_def=defs.get_repository_def())
    result = sensor(context)
    return context.cursor, result


def _materialize_open_alerts(defs, raise_on_error=True):
    unpartitioned = [d for d in all_defs(defs) if getattr(d, "partitions_def", "none") is None]
    result = dg.materialize(unpartitioned, resources=defs.resources, selection=dg.AssetSelection.assets("open_alerts"),
                            raise_on_error=raise_on_error)
    [materialization] = result.asset_materializations_for_node("open_alerts")
    return materialization.metadata, result.get_asset_check_evaluations()


def test_a_failing_warn_check_is_listed_once_shown_in_the_report_and_the_ui_then_resolved(
    make_settings, defs_for, no_sinks, capsys
):
    settings = make_settings()
    defs = defs_for(settings)
    checks = build_check_alert_sensor(settings)
    refresh = next(s for s in defs.sensors if s.name == "open_alerts_sensor")
    job = defs.get_repository_def().get_job(refresh.job_name)
    assert job.asset_layer.selected_asset_keys == {dg.AssetKey("open_alerts")}  # what its RunRequest runs
    with dg.DagsterInstance.ephemeral() as instance:
        _, result = _tick(refresh, instance, None, defs)
        assert result.skip_message == "no DuckDB file yet"
        code, out = _quant(capsys, "alerts")
        assert code == 1 and out.startswith("no DuckDB file at")  # as `quant report` says it

        assert _run(defs, instance, "raw_candles").success
        cursor, _ = _tick(checks, instance, None, defs)
        state, request = _tick(refresh, instance, None, defs)
        assert isinstance(request, dg.RunRequest)  # the first tick refreshes what the UI shows
        assert _tick(refresh, instance, state, defs)[1].skip_message == "the alerts shown have not changed"
        code, out = _quant(capsys, "alerts")
        assert (code, out) == (0, "no open alerts\n")

        # SOL's feed stops for 65 minutes: longer than max_gap_minutes (60), too short to fail completeness.
        with duckdb.connect(str(settings.duckdb_path)) as conn:
            conn.execute("DELETE FROM raw_candles WHERE symbol = 'SOL/USDT' AND ts >= ?::TIMESTAMP + INTERVAL 12 HOUR "
                         "AND ts < ?::TIMESTAMP + INTERVAL 12 HOUR + INTERVAL 65 MINUTE", [DAY, DAY])
        runs = []
        for _ in range(2):  # the same failure evaluated twice: one alert, two consecutive failures
            warned = _run(defs, instance, "bar_gaps")
            verdicts = {e.check_name: e.passed for e in warned.get_asset_check_evaluations()}
            assert warned.success and verdicts == {"bar_gaps_consistent": True, "bar_gaps_long": False}  # WARN: flows on
            runs.append(warned.run_id)
            cursor, _ = _tick(checks, instance, cursor, defs)
        state, request = _tick(refresh, instance, state, defs)
        assert isinstance(request, dg.RunRequest)

        code, out = _quant(capsys, "alerts")
        assert code == 0
        lines = out.splitlines()
        assert lines[0] == "open alerts: 1 (1 WARN)"
        assert [line for line in lines if line.startswith("[")] == [f"[WARN] {KEY} (asset_check)"]
        assert lines[2] == "  warning check bar_gaps_long on bar_gaps failed for 2024-03-04: 1 failing rows"
        assert lines[3].endswith("UTC; 2 consecutive failures")
        assert lines[4] == f"  run {runs[1][:8]}: http://127.0.0.1:3000/runs/{runs[1]}"
        assert lines[5:] == ["  webhook: not configured", "  telegram: not configured"]

        code, out = _quant(capsys, "report")
        section = out[out.index("alerts: "):].splitlines()
        assert code == 0 and section[0].startswith("alerts: 1 open (1 WARN), 0 resolved; newest open")
        assert len(section) == 2 and re.fullmatch(
            rf"  \[WARN\] \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d  {KEY}: warning check bar_gaps_long on bar_gaps failed "
            r"for 2024-03-04: 1 failing rows", section[1])

        metadata, evaluations = _materialize_open_alerts(defs)
        table = metadata["open_alerts"].value
        assert table.splitlines()[0].startswith("| severity | alert | message | first seen (UTC) |")
        [row] = table.splitlines()[2:]
        assert row.startswith(f"| WARN | {KEY} | warning check bar_gaps_long on bar_gaps failed for 2024-03-04")
        assert row.endswith(f"| 2 | NOT_CONFIGURED | NOT_CONFIGURED | [run {runs[1][:8]}](http://127.0.0.1:3000/runs/{runs[1]}) |")
        assert (metadata["open_warn"].value, metadata["open_error"].value, metadata["dagster/row_count"].value) == (1, 0, 1)
        health = metadata["provider_health"].value.splitlines()
        assert health[0].startswith("| provider | status | circuit |")
        assert any(line.startswith("| simulator | OK | closed |") for line in health)
        assert [e.passed for e in evaluations] == [True]

        # Repaired: the day is fetched again, the gaps recomputed, the check passes, the alert resolves.
        assert _run(defs, instance, dg.AssetSelection.assets("raw_candles", "bar_gaps")).success
        cursor, _ = _tick(checks, instance, cursor, defs)
        assert isinstance(_tick(refresh, instance, state, defs)[1], dg.RunRequest)
        code, out = _quant(capsys, "alerts")
        assert (code, out) == (0, "no open alerts\n1 resolved alert not shown: `quant alerts --all`\n")
        code, out = _quant(capsys, "alerts", "--all")
        lines = out.splitlines()
        assert code == 0 and lines[:3] == ["no open alerts", "resolved alerts: 1", f"[RESOLVED] {KEY} (asset_check)"]
        assert "2 consecutive failures; resolved 20" in lines[4] and lines[4].endswith(" UTC (was WARN)")
        code, out = _quant(capsys, "report")
        assert out.splitlines()[-1] == "alerts: none open, 1 resolved"
        assert _materialize_open_alerts(defs)[0]["open_alerts"].value == "_no open alerts_"


def test_quant_alerts_on_a_file_without_an_alerts_table(tmp_path, no_sinks, capsys):
    (tmp_path / "data").mkdir()
    with duckdb.connect(str(tmp_path / "data" / "quant.duckdb")) as conn:
        conn.execute("CREATE TABLE other (x INTEGER)")
    code, out = _quant(capsys, "alerts", "--all")
    assert code == 0 and out.startswith("no alerts table in this DuckDB file yet")
    code, out = _quant(capsys, "report")
    assert code == 0 and out.splitlines()[-1] == (
        "alerts: none recorded yet (no alerts table); the alert sensors record them while the Dagster daemon runs "
        "(`quant ui`)")


def _insert_alert(conn, alert_id, key, severity, message, details="{}"):
    now = datetime(2024, 3, 4, 12)
    conn.execute("INSERT INTO alerts VALUES (?, ?, 'run', ?, 'OPEN', ?, ?, ?, 1, NULL, 'NOT_CONFIGURED', "
                 "'NOT_CONFIGURED', ?)", [alert_id, key, severity, message, now, now, details])


def test_open_alerts_escapes_cells_shows_open_circuits_and_its_check_catches_a_second_open_alert(
    make_settings, defs_for, no_sinks
):
    settings = make_settings()
    defs = defs_for(settings)
    later = datetime.now() + timedelta(minutes=5)
    with alerts_db(settings.duckdb_path) as conn:
        _insert_alert(conn, "a1", "run:job", "CRITICAL", "step | failed\nwith two lines")
        conn.execute("INSERT INTO provider_health VALUES ('binance', 'DEGRADED', NULL, 3, ?, 'HTTP 503 | busy', ?)",
                     [later, later])
    metadata, evaluations = _materialize_open_alerts(defs)
    [row] = metadata["open_alerts"].value.splitlines()[2:]
    assert row.startswith("| CRITICAL | run:job | step \\| failed with two lines |") and row.endswith("|  |")
    [provider] = metadata["provider_health"].value.splitlines()[2:]
    assert provider.startswith(f"| binance | DEGRADED | open until {later:%Y-%m-%d %H:%M:%S} |  | 3 | HTTP 503 \\| busy |")
    assert metadata["providers_not_ok"].value == 1 and metadata["open_critical"].value == 1
    assert [e.passed for e in evaluations] == [True]

    with alerts_db(settings.duckdb_path) as conn:  # two open alerts of one key: the table broke its promise
        _insert_alert(conn, "a2", "run:job", "ERROR", "again")
    _metadata, evaluations = _materialize_open_alerts(defs, raise_on_error=False)
    [evaluation] = evaluations
    assert not evaluation.passed and evaluation.metadata["reason"].value == "run:job: more than one open alert"


def test_quant_alerts_shows_each_sinks_status_attempts_and_last_attempt(make_settings, no_sinks, monkeypatch, capsys):
    """Real sinks on 127.0.0.1: the webhook answers 500 (retried, FAILED), Telegram takes it (SENT)."""
    settings = make_settings(alerts={"retry_attempts": 3, "retry_wait_s": 0.01, "retry_max_wait_s": 0.05})
    token = "123456:SECRET-bot-token-xyz"
    with loopback_receiver() as receiver:
        receiver.status["webhook"] = 500
        monkeypatch.setenv("QUANT_ALERT_WEBHOOK_URL", f"{receiver.url}/services/T000/hook-secret")
        monkeypatch.setenv("QUANT_TELEGRAM_BOT_TOKEN", token)
        monkeypatch.setenv("QUANT_TELEGRAM_CHAT_ID", "-100777")
        monkeypatch.setenv("QUANT_TELEGRAM_BASE_URL", receiver.url)
        obs = Observation("provider:kraken", "provider", True, "ERROR", "provider kraken is DOWN", datetime.now())
        process_observations(settings.duckdb_path, [obs], settings.alerts)
    code, out = _quant(capsys, "alerts")
    lines = out.splitlines()
    assert code == 0 and lines[:2] == ["open alerts: 1 (1 ERROR)", "[ERROR] provider:kraken (provider)"]
    assert re.fullmatch(r"  webhook: OPENED FAILED after 3 attempts, last \d{4}-\d\d-\d\d \d\d:\d\d:\d\d: HTTP 500",
                        lines[-2])
    assert re.fullmatch(r"  telegram: OPENED SENT after 1 attempt, last \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", lines[-1])
    assert "hook-secret" not in out and token not in out
