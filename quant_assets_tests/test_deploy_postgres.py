"""The production profile (deploy/) for real: PostgreSQL, a gRPC code server, the daemon, and
``quant materialize`` submitting to the queue.

One deployment serves the module: a PostgreSQL server from the Debian packages on a temporary
data directory and port (``postgres_server``), a ``$DAGSTER_HOME`` holding deploy/dagster.yaml
(run monitoring polled every 2 s instead of 30 s, nothing else changed) and a workspace.yaml
pointing at ``dagster code-server start`` on a free port, and ``dagster-daemon run``. Every case
drives it as an operator would, through processes and signals, and reads the outcome from the
Postgres-backed instance. Figures (seconds) are printed; run with ``-s`` to see them.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml
from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES

from quant_assets.cli import CODE_LOCATION
from quant_assets_tests.conftest import table_digest
from quant_assets_tests.postgres_server import Postgres, free_port, postgres_bin, postgres_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL is not installed (.ci/run installs it)"),
]

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
BIN = Path(sys.executable).parent
SELECT = "key:raw_candles or group:bars"
DAY = "2024-03-01"
DATA_TABLES = ("raw_candles", "bars_5m", "bars_1h", "bars_1d", "bar_gaps")
MONITORING_POLL_S = 2
SENSOR_INTERVAL_S = 5
WAIT_S = 240


@dataclass
class Deployment:
    root: Path
    env: dict[str, str]
    postgres: Postgres
    code_server_port: int
    code_server: subprocess.Popen | None = None
    daemon: subprocess.Popen | None = None

    @property
    def home(self) -> Path:
        return Path(self.env["DAGSTER_HOME"])

    def start_code_server(self) -> None:
        self.code_server = subprocess.Popen(
            [str(BIN / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(self.code_server_port),
             "-m", "quant_assets.definitions", "--location-name", CODE_LOCATION],
            env=self.env, cwd=self.root, start_new_session=True,
            stdout=(self.root / "code_server.log").open("a"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + WAIT_S
        while not _serving(self.code_server_port):
            assert self.code_server.poll() is None, (self.root / "code_server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the code server did not start"
            time.sleep(0.5)

    def kill_code_server(self) -> None:
        """SIGKILL the code server's whole process group: the server and every run it executes."""
        assert self.code_server is not None
        os.killpg(self.code_server.pid, signal.SIGKILL)
        self.code_server.wait()

    def quant(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([str(BIN / "quant"), *args], env=self.env, cwd=self.root, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)

    def instance(self) -> dg.DagsterInstance:
        os.environ.update(self.postgres.env())
        return dg.DagsterInstance.from_config(str(self.home))


def _serving(port: int) -> bool:
    from dagster._grpc.client import DagsterGrpcClient

    try:
        DagsterGrpcClient(port=port, host="127.0.0.1").ping("")
        return True
    except Exception:  # noqa: BLE001 - not up yet
        return False


def _test_instance_yaml() -> str:
    """deploy/dagster.yaml with run monitoring polled every MONITORING_POLL_S seconds."""
    config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    config["run_monitoring"]["poll_interval_seconds"] = MONITORING_POLL_S
    config["run_monitoring"]["free_slots_after_run_end_seconds"] = MONITORING_POLL_S
    return yaml.safe_dump(config)


def _test_workspace_yaml(port: int) -> str:
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    workspace["load_from"][0]["grpc_server"].update(host="127.0.0.1", port=port)
    return yaml.safe_dump(workspace)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("deploy")
    home = root / "dagster_home"
    home.mkdir()
    # The daily schedule is set to fire a few minutes from now, so it ticks while the cases run.
    fire = (datetime.now(UTC) + timedelta(minutes=3)).replace(second=0, microsecond=0)
    (root / "quant.yaml").write_text(yaml.safe_dump({
        "automation": {"schedules_enabled": True, "declarative_enabled": False, "daily_at": f"{fire:%H:%M}"},
        "alerts": {"check_interval_s": SENSOR_INTERVAL_S},
    }))
    port = free_port()
    (home / "dagster.yaml").write_text(_test_instance_yaml())
    (home / "workspace.yaml").write_text(_test_workspace_yaml(port))
    with postgres_server() as postgres:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QUANT_", "DAGSTER_"))}
        env.update(postgres.env(), DAGSTER_HOME=str(home), QUANT_CONFIG=str(root / "quant.yaml"),
                   QUANT_DATA_DIR=str(root / "data"), QUANT_SYMBOLS="BTC/USDT,ETH/USDT",
                   QUANT_BAR_INTERVALS="5m,1h,1d", QUANT_START_DATE="2024-01-01")
        deployed = Deployment(root, env, postgres, port)
        deployed.fire_at = fire  # type: ignore[attr-defined]
        deployed.start_code_server()
        deployed.daemon = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", str(home / "workspace.yaml")], env=env, cwd=root,
            start_new_session=True, stdout=(root / "daemon.log").open("w"), stderr=subprocess.STDOUT,
        )
        try:
            yield deployed
        finally:
            for process in (deployed.daemon, deployed.code_server):
                if process is not None and process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
                    try:
                        process.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        os.killpg(process.pid, signal.SIGKILL)
                        process.wait()


def _quiet_connection(deployment: Deployment) -> duckdb.DuckDBPyConnection:
    """A read-only connection once no run is queued or running (the daily schedule's run may
    still hold the file's lock after the case's own runs ended); a run dequeued between the check
    and the connect is waited out as well."""
    instance = deployment.instance()
    path = str(deployment.root / "data" / "quant.duckdb")

    def connected() -> duckdb.DuckDBPyConnection | None:
        if instance.get_runs(filters=dg.RunsFilter(statuses=NOT_FINISHED_STATUSES), limit=1):
            return None
        try:
            return duckdb.connect(path, read_only=True)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            return None

    return _wait_for(connected, "no run to hold the DuckDB file", every=0.5)


def _digests(deployment: Deployment) -> dict[str, tuple[int, str]]:
    with _quiet_connection(deployment) as conn:
        out = {}
        for table in DATA_TABLES:
            if table == "raw_candles":  # fetched_at is the wall clock of the fetch; the daily
                # schedule's tick adds the day before today
                conn.execute("CREATE TEMP TABLE t_raw AS SELECT * EXCLUDE (fetched_at) FROM raw_candles "
                             "WHERE ts >= ?::DATE AND ts < ?::DATE + 1", [DAY, DAY])
                out[table] = table_digest(conn, "t_raw")
            else:
                out[table] = table_digest(conn, table)
    return out


def _finish(process: subprocess.Popen, timeout: float = WAIT_S) -> str:
    out, _ = process.communicate(timeout=timeout)
    return out


def _wait_for(predicate, what: str, timeout: float = WAIT_S, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


def _quant_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(tags={"launched_by": "quant"})))


def _new_run(instance: dg.DagsterInstance, known: set[str]) -> dg.DagsterRun | None:
    fresh = [run for run in _quant_runs(instance) if run.run_id not in known]
    return fresh[0] if fresh else None


def _worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The run's process, from the code server's engine event ``Started process for run``."""
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        if record.message.startswith("Started process for run"):
            return int(record.dagster_event.event_specific_data.metadata["pid"].value)
    return None


def _step_started(instance: dg.DagsterInstance, run_id: str) -> bool:
    return bool(instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START))


def _status_time(instance: dg.DagsterInstance, run_id: str, event: dg.DagsterEventType) -> float:
    records = instance.all_logs(run_id, of_type=event)
    assert records, f"run {run_id} has no {event.value}"
    return records[0].timestamp


def _start_run(deployment: Deployment, instance: dg.DagsterInstance) -> tuple[subprocess.Popen, dg.DagsterRun]:
    """``quant materialize`` following a new run, once a step of that run has started."""
    known = {run.run_id for run in _quant_runs(instance)}
    follower = deployment.quant("materialize", "--select", SELECT, "--start", DAY, "--end", DAY)
    run = _wait_for(lambda: _new_run(instance, known), "the run")
    _wait_for(lambda: _step_started(instance, run.run_id), "a step to start")
    return follower, run


def _ended(instance: dg.DagsterInstance, run_id: str, what: str) -> dg.DagsterRun:
    def finished() -> dg.DagsterRun | None:
        run = instance.get_run_by_id(run_id)
        return run if run is not None and run.is_finished else None

    return _wait_for(finished, what)


def _retried_to_clean_tables(deployment: Deployment, instance: dg.DagsterInstance,
                             follower: subprocess.Popen, run: dg.DagsterRun) -> str:
    """The follower saw the daemon's one retry of ``run`` succeed, with the tables of a clean run."""
    out = _finish(follower)
    assert follower.returncode == 0, out
    retry = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/parent_run_id": run.run_id}))
    assert len(retry) == 1 and retry[0].status == dg.DagsterRunStatus.SUCCESS, out
    assert f"retries it as run {retry[0].run_id}" in out
    assert _digests(deployment) == deployment.clean  # type: ignore[attr-defined]
    return retry[0].run_id


def test_concurrent_requests_for_one_duckdb_file_run_one_after_another(deployment: Deployment) -> None:
    instance = deployment.instance()
    args = ("materialize", "--select", SELECT, "--start", DAY, "--end", DAY)
    first, second = deployment.quant(*args), deployment.quant(*args)
    outputs = [_finish(first), _finish(second)]
    assert [first.returncode, second.returncode] == [0, 0], "\n".join(outputs)
    runs = sorted(_quant_runs(instance), key=lambda run: instance.get_run_record_by_id(run.run_id).start_time)
    assert len(runs) == 2 and all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
    earlier, later = (instance.get_run_record_by_id(run.run_id) for run in runs)
    assert later.start_time >= earlier.end_time, "the two runs overlapped on the DuckDB file"
    for run in runs:
        log = "\n".join(r.message for r in instance.all_logs(run.run_id))
        assert "Could not set lock" not in log and "Conflicting lock" not in log
    assert all("queued" in out and "done" in out for out in outputs), outputs
    waited = later.start_time - later.create_timestamp.timestamp()
    launched = instance.all_logs(runs[1].run_id, of_type=dg.DagsterEventType.RUN_STARTING)
    launch = f"launched {launched[0].timestamp - earlier.end_time:.1f}s after the first ended, " if launched else ""
    print(f"\nconcurrent: second run waited {waited:.1f}s in the queue; {launch}its worker reported "
          f"STARTED {later.start_time - earlier.end_time:.1f}s after the first ended")
    deployment.clean = _digests(deployment)  # type: ignore[attr-defined]


def test_killed_run_worker_is_failed_and_retried_to_equal_tables(deployment: Deployment) -> None:
    instance = deployment.instance()
    follower, run = _start_run(deployment, instance)
    pid = _wait_for(lambda: _worker_pid(instance, run.run_id), "the run's pid")
    os.kill(pid, signal.SIGKILL)
    killed = time.time()
    failed = _ended(instance, run.run_id, "the killed run to end")
    marked = time.time()
    assert failed.status == dg.DagsterRunStatus.FAILURE
    retry_record = instance.get_run_record_by_id(_retried_to_clean_tables(deployment, instance, follower, run))
    print(f"\nworker SIGKILL: FAILED after {marked - killed:.2f}s; retry queued "
          f"{retry_record.create_timestamp.timestamp() - marked:.1f}s later, started after "
          f"{retry_record.start_time - retry_record.create_timestamp.timestamp():.1f}s, succeeded "
          f"{retry_record.end_time - retry_record.start_time:.1f}s later")


def test_run_of_a_killed_code_server_is_failed_by_run_monitoring_and_retried(deployment: Deployment) -> None:
    instance = deployment.instance()
    follower, run = _start_run(deployment, instance)
    deployment.kill_code_server()
    killed = time.time()
    time.sleep(MONITORING_POLL_S * 2)
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED, "nobody is left to report it"
    deployment.start_code_server()
    restarted = time.time()
    failed = _ended(instance, run.run_id, "run monitoring to end the run")
    marked = time.time()
    assert failed.status == dg.DagsterRunStatus.FAILURE
    _retried_to_clean_tables(deployment, instance, follower, run)
    failure = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert failure and "no longer executes the run" in failure[-1].message + str(failure[-1].dagster_event)
    print(f"\ncode server SIGKILL: restarted after {restarted - killed:.1f}s; run monitoring marked the run "
          f"FAILED {marked - restarted:.1f}s after the restart; the retry succeeded")


def test_sensors_and_schedules_tick_against_postgres(deployment: Deployment) -> None:
    instance = deployment.instance()
    from dagster._core.scheduler.instigation import InstigatorType, TickStatus

    states = instance.all_instigator_state()
    sensors = [s for s in states if s.instigator_type == InstigatorType.SENSOR]
    schedules = [s for s in states if s.instigator_type == InstigatorType.SCHEDULE]
    assert sensors and schedules, "the daemon stored no instigator state"

    def ticked(state) -> list:
        return [t for t in instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=5)
                if t.status in (TickStatus.SUCCESS, TickStatus.SKIPPED)]

    sensor_ticks = _wait_for(lambda: next((ticked(s) for s in sensors if ticked(s)), None), "a sensor tick", every=1)
    assert sensor_ticks
    fire: datetime = deployment.fire_at  # type: ignore[attr-defined]
    schedule = next(s for s in schedules if s.instigator_name == "daily_ingest_job_schedule")
    ticks = _wait_for(lambda: [t for t in instance.get_ticks(schedule.instigator_origin_id, schedule.selector_id)
                                if t.status == TickStatus.SUCCESS], "the daily schedule's tick",
                      timeout=max(0, (fire - datetime.now(UTC)).total_seconds()) + 120, every=1)
    tick = ticks[0]
    assert tick.timestamp - fire.timestamp() < 60
    assert tick.run_ids, "the tick requested no run"
    scheduled = instance.get_run_by_id(tick.run_ids[0])
    assert scheduled.tags.get("dagster/schedule_name") == "daily_ingest_job_schedule"
    print(f"\nschedule: ticked {tick.timestamp - fire.timestamp():.1f}s after its cron time; run "
          f"{scheduled.run_id} {scheduled.status.value}")
