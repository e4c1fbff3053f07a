"""``quant`` on a deployed instance: runs submitted to the daemon's queue, not executed in process.

A deployment home (``deploy/``) is a ``$DAGSTER_HOME`` whose ``dagster.yaml`` queues runs and
whose ``workspace.yaml`` points at the gRPC code server. There ``quant materialize`` and
``quant demo`` create the run against the code server's definitions, submit it to the queued run
coordinator (so it waits for the ``duckdb`` pool like any run from the UI, a schedule or a sensor,
and appears in the UI at once), then follow it until it ends and summarise it from its events.
Without ``workspace.yaml`` the command runs in its own process, as on a laptop.
"""

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.definitions.selector import JobSubsetSelector
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget

from quant_assets.lib.instance import POOL

WORKSPACE_FILE = "workspace.yaml"
ASSET_JOB = "__ASSET_JOB"
POLL_S = 0.5
WILL_RETRY_TAG, PARENT_RUN_ID_TAG = "dagster/will_retry", "dagster/parent_run_id"


class DeploymentError(Exception):
    """The deployed instance cannot take the run (no code server, no such location)."""


def deployment_workspace(home: Path) -> Path | None:
    """``home/workspace.yaml`` when ``home`` is a deployment home, else None."""
    path = home / WORKSPACE_FILE
    return path if path.is_file() else None


@dataclass(frozen=True)
class StoredRun:
    """What :func:`quant_assets.lib.run_failures` reads from an in-process result, read back from
    the instance's event log for a run another process executed."""

    success: bool
    all_events: list[Any]

    def get_asset_check_evaluations(self) -> list[dg.AssetCheckEvaluation]:
        return [e.event_specific_data for e in self.all_events
                if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION]

    def get_asset_materialization_events(self) -> list[Any]:
        return [e for e in self.all_events if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION]

    def get_run_failure_event(self) -> Any:
        return next((e for e in self.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE), None)


def ensure_pool_limit(instance: dg.DagsterInstance, pool: str) -> None:
    """Store ``pool``'s limit (the instance's ``default_limit``) before its first run is queued.

    The daemon reads the set of limited pools at the start of a dequeue pass and only then stores
    the default limit of a pool it has not seen: in the first pass that sees ``duckdb``, every
    queued run is judged unlimited, so two requests queued together both start and meet on the
    DuckDB lock (dagster 1.13, ``GlobalOpConcurrencyLimitsCounter``). Two ``quant`` processes
    may store it at once; the loser's conflict is the winner's row.
    """
    storage = instance.event_log_storage
    if not instance.global_op_concurrency_default_limit or pool in storage.get_concurrency_keys():
        return
    try:
        storage.initialize_concurrency_limit_to_default(pool)
    except Exception:  # noqa: BLE001 - another process stored it first (a unique-key conflict)
        if pool not in storage.get_concurrency_keys():
            raise


def submit_asset_run(
    instance: dg.DagsterInstance,
    workspace_file: Path,
    location: str,
    keys: Sequence[dg.AssetKey],
    tags: dict[str, str],
) -> str:
    """Create a run of ``keys`` and their checks against the code server and submit it to the
    instance's run coordinator; returns its run id."""
    ensure_pool_limit(instance, POOL)
    target = WorkspaceFileTarget(paths=[str(workspace_file)])
    with WorkspaceProcessContext(instance, target) as process_context:
        request = process_context.create_request_context()
        errors = request.get_code_location_error(location) if request.has_code_location_error(location) else None
        if errors is not None or not request.has_code_location(location):
            reason = errors.message.strip().splitlines()[-1] if errors is not None else "not in the workspace"
            raise DeploymentError(f"code location {location!r} from {workspace_file} is not available: {reason}")
        code_location = request.get_code_location(location)
        repository = next(iter(code_location.get_repositories().values()))
        checks = {key for key in repository.asset_graph.asset_check_keys if key.asset_key in set(keys)}
        selector = JobSubsetSelector(
            location_name=location, repository_name=repository.name, job_name=ASSET_JOB,
            op_selection=None, asset_selection=list(keys), asset_check_selection=checks,
        )
        job = code_location.get_job(selector)
        plan = code_location.get_execution_plan(job, {}, step_keys_to_execute=None, known_state=None,
                                                instance=instance)
        run = instance.create_run(
            job_name=ASSET_JOB, run_id=str(uuid.uuid4()), run_config={},
            asset_selection=frozenset(keys), asset_check_selection=frozenset(checks),
            op_selection=None, resolved_op_selection=None,
            step_keys_to_execute=plan.execution_plan_snapshot.step_keys_to_execute,
            tags={**job.tags, **tags}, root_run_id=None, parent_run_id=None,
            status=dg.DagsterRunStatus.NOT_STARTED, job_snapshot=job.job_snapshot,
            execution_plan_snapshot=plan.execution_plan_snapshot,
            parent_job_snapshot=job.parent_job_snapshot,
            remote_job_origin=job.get_remote_origin(), job_code_origin=job.get_python_origin(),
            asset_graph=repository.asset_graph,
        )
        instance.submit_run(run.run_id, request)
        return run.run_id


def follow_run(
    instance: dg.DagsterInstance,
    run_id: str,
    announce: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> StoredRun:
    """Wait for the run to end, saying once when it is queued and once when it starts; a run
    retried by the daemon is followed into its retry."""
    said: set[str] = set()
    while True:
        run = instance.get_run_by_id(run_id)
        if run is None:
            raise DeploymentError(f"run {run_id} vanished from the instance")
        status = run.status
        if status == dg.DagsterRunStatus.QUEUED and "queued" not in said:
            announce(f"run {run_id} queued (the daemon starts it when the duckdb pool is free)")
            said.add("queued")
        elif status == dg.DagsterRunStatus.STARTED and "started" not in said:
            announce(f"run {run_id} started")
            said.add("started")
        if run.is_finished:
            retry = _retry_of(instance, run)
            if retry is not None:
                announce(f"run {run_id} {status.value}; the daemon retries it as run {retry}")
                run_id, said = retry, set()
                continue
            events = [r.dagster_event for r in instance.all_logs(run_id) if r.dagster_event is not None]
            return StoredRun(status == dg.DagsterRunStatus.SUCCESS, events)
        sleep(POLL_S)


def _retry_of(instance: dg.DagsterInstance, run: dg.DagsterRun, wait_s: float = 120.0) -> str | None:
    """The run the daemon queues to retry ``run`` (it tags a failed run ``dagster/will_retry``
    when its failure is one to retry: a dead worker, not a failed step), or None.

    The tag is stored just after the failure itself, so a run read in between is read again."""
    if run.status != dg.DagsterRunStatus.FAILURE or not instance.run_retries_enabled:
        return None
    deadline = time.monotonic() + wait_s
    while WILL_RETRY_TAG not in run.tags and time.monotonic() < deadline:
        time.sleep(POLL_S)
        run = instance.get_run_by_id(run.run_id) or run
    if run.tags.get(WILL_RETRY_TAG) != "true":
        return None
    while True:
        children = instance.get_runs(filters=dg.RunsFilter(tags={PARENT_RUN_ID_TAG: run.run_id}), limit=1)
        if children:
            return children[0].run_id
        if time.monotonic() > deadline:
            return None
        time.sleep(POLL_S)
