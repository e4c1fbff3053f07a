"""The Dagster instance the ``quant`` command runs on: its configuration, and what keeps it healthy
after a run's process died (``kill -9``, a crash, a closed laptop).

DuckDB has one writer per file, so every run's steps share the ``duckdb`` pool with one slot.
A process killed mid-run leaves its run STARTED and its slot claimed; nothing in an in-process
run tells Dagster it died (run monitoring in the daemon only watches runs it launched). So before
the CLI launches a run it reaps its own dead runs: a run tagged with this host and a process id
that no longer runs (or runs another program: its start time differs) is marked FAILED and its
slots are freed. Slots still held by runs that ended are freed too. A run that finds the pool held
by a live run waits, sleeping, and says what it waits for.
"""

import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

POOL = "duckdb"
PID_TAG, HOST_TAG, STARTED_TAG = "quant/pid", "quant/host", "quant/process_start"
WAIT_POLL_S = 1.0

INSTANCE_YAML = """\
# Written by `quant` (rewritten when quant's version of it changes). DuckDB allows one writer per
# file: one run at a time, and one step at a time in the `duckdb` pool.
concurrency:
  pools:
    default_limit: 1
  runs:
    max_concurrent_runs: 1
# For runs launched by the daemon (`quant ui`, schedules, sensors): a run whose worker died is
# marked FAILED, and slots of ended runs are freed. The CLI reaps its own runs (lib/instance.py).
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  max_resume_run_attempts: 0
  poll_interval_seconds: 30
  free_slots_after_run_end_seconds: 30
telemetry:
  enabled: false
# Dagster's SQLite event log, with its connections kept open between events (same files).
event_log_storage:
  module: quant_assets.lib.event_storage
  class: PooledSqliteEventLogStorage
  config:
    dagster_home: {home}
"""
WRITTEN_BY_QUANT = "# Written by `quant`"


def instance_yaml(home: Path) -> str:
    """The ``dagster.yaml`` quant writes for ``home`` (its event log names the home's path)."""
    return INSTANCE_YAML.replace("{home}", json.dumps(str(home.resolve())))


def ensure_instance_config(home: Path) -> Path:
    """``home/dagster.yaml`` as quant writes it; a file someone else wrote is left alone, and
    one quant wrote for another version (or for the home at another path) is rewritten."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    wanted = instance_yaml(home)
    if not config.exists() or (config.read_text().startswith(WRITTEN_BY_QUANT) and config.read_text() != wanted):
        tmp = config.with_suffix(".yaml.tmp")
        tmp.write_text(wanted)
        os.replace(tmp, config)
    return config


def process_start(pid: int) -> str | None:
    """The kernel's start time of process ``pid`` (clock ticks since boot, Linux ``/proc``), or
    None when no such process runs."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except FileNotFoundError:
        return None


def own_run_tags() -> dict[str, str]:
    """Tags that let a later CLI tell whether this process is still running the run."""
    pid = os.getpid()
    return {PID_TAG: str(pid), HOST_TAG: socket.gethostname(), STARTED_TAG: process_start(pid) or "unknown"}


def _is_dead(run: dg.DagsterRun) -> bool:
    """A run of this host whose process is gone, or whose pid now belongs to another process."""
    tags = run.tags
    if PID_TAG not in tags or tags.get(HOST_TAG) != socket.gethostname():
        return False
    start = process_start(int(tags[PID_TAG]))
    return start is None or tags.get(STARTED_TAG, start) != start


@dataclass(frozen=True)
class Reaped:
    run_id: str
    pid: str
    freed_slots: bool


def reap_dead_runs(instance: dg.DagsterInstance) -> list[Reaped]:
    """Mark this host's unfinished quant runs whose process is gone FAILED and free their slots;
    free slots still held by runs that ended."""
    reaped = []
    unfinished = instance.get_runs(filters=dg.RunsFilter(statuses=[
        dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.NOT_STARTED,
        dg.DagsterRunStatus.CANCELING,
    ]))
    for run in unfinished:
        if _is_dead(run):
            instance.report_run_failed(run, f"its process {run.tags[PID_TAG]} is gone (killed or crashed); "
                                            "marked FAILED by the next quant command")
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            reaped.append(Reaped(run.run_id, run.tags[PID_TAG], True))
    info = instance.event_log_storage.get_concurrency_info(POOL)
    for run_id in {slot.run_id for slot in info.claimed_slots} | {step.run_id for step in info.pending_steps}:
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            instance.event_log_storage.free_concurrency_slots_for_run(run_id)
    return reaped


def wait_for_pool(instance: dg.DagsterInstance, announce: Callable[[str], None],
                  sleep: Callable[[float], None] = time.sleep) -> float:
    """Sleep until the ``duckdb`` pool has a free slot; say once who holds it. Returns seconds waited."""
    began, told = time.monotonic(), False
    while True:
        info = instance.event_log_storage.get_concurrency_info(POOL)
        limit = info.limit if info.limit is not None else max(info.slot_count, 1)
        holders = sorted({slot.run_id for slot in info.claimed_slots})
        if len(info.claimed_slots) < limit:
            return time.monotonic() - began
        if not told:
            run = instance.get_run_by_id(holders[0]) if holders else None
            who = f"run {holders[0]}" + (f" (pid {run.tags[PID_TAG]})" if run and PID_TAG in run.tags else "")
            announce(f"waiting for the {POOL} pool (one writer per DuckDB file): {who} holds it")
            told = True
        sleep(WAIT_POLL_S)
        reap_dead_runs(instance)
