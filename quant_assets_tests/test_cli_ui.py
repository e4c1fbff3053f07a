"""One code location name everywhere: what the README's `dagster sensor start` and
`dagster schedule start` (run in the project directory) switch on is RUNNING in `quant ui`,
even when `quant ui` starts in another directory; a second `quant ui` on the same port ends at
once with one line.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from quant_assets import cli
from quant_assets.lib.instance import instance_yaml
from quant_assets_tests.test_webserver import REPOS_QUERY, STARTUP_LIMIT_S, _free_port, _graphql

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SENSOR, SCHEDULE = "poll_spot_and_dex", "daily_ingest_job_schedule"


def _dagster(env: dict[str, str], *argv: str) -> str:
    done = subprocess.run([str(BIN / "dagster"), *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    return done.stdout


def _wait_for_repository(port: int, server: subprocess.Popen) -> tuple[str, dict]:
    deadline = time.monotonic() + STARTUP_LIMIT_S
    last: Exception | None = None
    while time.monotonic() < deadline:
        assert server.poll() is None, f"quant ui exited with {server.returncode}"
        try:
            entries = _graphql(port, "{ workspaceOrError { ... on Workspace { locationEntries { name } } } }")
            repos = _graphql(port, REPOS_QUERY)["repositoriesOrError"]["nodes"]
            if repos:
                return entries["workspaceOrError"]["locationEntries"][0]["name"], repos[0]
        except (httpx.HTTPError, AssertionError, KeyError) as exc:
            last = exc
        time.sleep(1)
    pytest.fail(f"quant ui did not serve the code location within {STARTUP_LIMIT_S}s: {last}")


@pytest.mark.slow
def test_sensor_and_schedule_started_from_the_project_are_running_in_quant_ui(tmp_path):
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    (home / "dagster.yaml").write_text(instance_yaml(home))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QUANT_", "DAGSTER_"))}
    env.update(DAGSTER_HOME=str(home), QUANT_DATA_DIR=str(tmp_path / "data"), QUANT_SYMBOLS="BTC/USDT")
    assert SCHEDULE in _dagster(env, "schedule", "list")
    assert "Started" in _dagster(env, "sensor", "start", SENSOR)
    assert "Started" in _dagster(env, "schedule", "start", SCHEDULE)

    port = _free_port()
    log = (tmp_path / "quant_ui.log").open("w")
    server = subprocess.Popen([str(BIN / "quant"), "ui", "--port", str(port)], cwd=elsewhere, env=env,
                              start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
    try:
        location, repo = _wait_for_repository(port, server)
        assert location == cli.CODE_LOCATION
        sensors = {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]}
        schedules = {s["name"]: s["scheduleState"]["status"] for s in repo["schedules"]}
        assert sensors[SENSOR] == "RUNNING", sensors
        assert schedules[SCHEDULE] == "RUNNING", schedules

        # A second `quant ui` on the busy port: one line, exit 2, before starting anything.
        began = time.monotonic()
        second = subprocess.run([str(BIN / "quant"), "ui", "--port", str(port)], cwd=elsewhere, env=env,
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        assert second.stdout == "" and second.stderr.strip() == (
            f"quant: error: port {port} on 127.0.0.1 is in use (another `quant ui`?); stop it or pick another --port"
        )
        assert time.monotonic() - began < 60
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
        log.close()
