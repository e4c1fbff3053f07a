"""A run launcher whose runs the daemon's run monitoring can judge.

Dagster's ``DefaultRunLauncher`` starts each run as a subprocess of the gRPC code server but
cannot say whether that process still runs, so run monitoring never marks its runs failed: a run
whose code server was killed, or whose machine went away, stays STARTED and keeps its ``duckdb``
slot for ever. :class:`MonitoredRunLauncher` launches exactly as the default one does and answers
run monitoring by asking the code server that took the run whether it still executes it
(the same gRPC call the UI's Terminate button makes).

- The server answers yes: RUNNING.
- It answers no (it was restarted, so the run's process died with the old one): FAILED once it
  has said so for ``RELOAD_GRACE_S``. The daemon marks the run FAILED, frees its slot, and run
  retries re-queue it. The grace lets the daemon reload the restarted code location first: a retry
  attempted while the daemon still holds the location's load error is dropped for good
  (dagster 1.13 tags the run ``dagster/will_retry=false``).
- The server cannot be reached: RUNNING, with the reason. Run monitoring treats anything else as
  dead at once, and a network blip or a server being redeployed must not fail a healthy run;
  once a server answers on that address again it is judged by its answer.

A run worker that dies while its server lives is reported FAILED by the server itself, at once.
"""

import time
from collections.abc import Mapping
from typing import Any

from dagster import DefaultRunLauncher
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._grpc.types import CanCancelExecutionRequest, CanCancelExecutionResult
from dagster._serdes import ConfigurableClassData, deserialize_value

HEALTH_TIMEOUT_S = 10
RELOAD_GRACE_S = 30.0


class MonitoredRunLauncher(DefaultRunLauncher):
    """``DefaultRunLauncher`` plus a worker health check for run monitoring."""

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]) -> "MonitoredRunLauncher":
        return cls(inst_data=inst_data)

    def __init__(self, inst_data: ConfigurableClassData | None = None) -> None:
        super().__init__(inst_data=inst_data)
        self._first_denied: dict[str, float] = {}

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        client = self._get_grpc_client_for_termination(run.run_id)
        if client is None:
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, "the run records no code server")
        try:
            reply = client.can_cancel_execution(CanCancelExecutionRequest(run_id=run.run_id), timeout=HEALTH_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - any transport failure means no answer
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"not judged: code server {client.host}:{client.port} unreachable: {type(exc).__name__}")
        if deserialize_value(reply, CanCancelExecutionResult).can_cancel:
            self._first_denied.pop(run.run_id, None)
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        denied = f"code server {client.host}:{client.port} no longer executes the run (restarted?)"
        first = self._first_denied.setdefault(run.run_id, time.monotonic())
        if time.monotonic() - first < RELOAD_GRACE_S:
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"{denied}; failed after {RELOAD_GRACE_S:.0f}s")
        self._first_denied.pop(run.run_id, None)
        return CheckRunHealthResult(WorkerStatus.FAILED, denied)
