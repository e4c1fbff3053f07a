"""The ``quant`` command: demo, materialize, report, research, experiments, alerts, ui.

Runs go through a persistent Dagster instance in ``$DAGSTER_HOME`` (default ``.dagster_home``
in the working directory, created on demand), so everything launched here shows up later in the
UI. Every argument is checked before anything is written; a bad one ends with a one-line
``quant: error: ...`` and exit code 2.

A failed run ends with one line per failed step (the asset and the first line of its error, or
the failing check and its failing row count), the run's address in the UI and the path of a log
file, ``$DAGSTER_HOME/logs/<run_id>.log``, that holds the run's events with their stack traces;
Dagster's console logger prints nothing. SIGINT (Ctrl-C) or SIGTERM during a run marks the run
CANCELED in the instance, prints one line and exits 130 (143 for SIGTERM).

On a deployment (``$DAGSTER_HOME`` holds deploy/'s ``dagster.yaml`` and ``workspace.yaml``) runs
are not executed here: they are submitted to the daemon's queue and followed until they end
(``quant_assets.lib.deployment``); a code server that cannot be reached ends with one line and
exit code 69.
"""

import argparse
import dataclasses
import errno
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import dagster as dg

    from quant_assets.config import Settings

# The one code location name: [tool.dagster] code_location_name in pyproject.toml and the
# location_name in workspace.yaml (a test keeps the three equal). `dagster sensor start` and
# `dagster schedule start`, run in the project directory, store state under it; `quant ui` serves it.
CODE_LOCATION = "quant_assets"
UI_HOST = "127.0.0.1"
UI_PORT = 3000

# `quant demo --days` above this needs --yes: a year of daily partitions.
MAX_DEMO_DAYS = 366
# What a demo day costs for the default universe (8 symbols of 1m candles), measured once on a
# shared 2-core machine: `quant demo --days 240` took 646 s, about 2.7 s per day (10 days took 71 s,
# 120 days 585 s: stage start-up dominates short demos, and timings vary with the machine's load).
# Scaled by candles per day for other universes and base intervals.
DEMO_SECONDS_PER_DAY = 2.7
DEMO_REFERENCE_CANDLES_PER_DAY = 8 * 1440
# A failed run shows at most this many cause lines on the terminal; all of them are in the log.
MAX_CAUSE_LINES = 4



class UsageError(Exception):
    """A bad argument; reported as one line, exit code 2, nothing written."""


class Unavailable(Exception):
    """The deployment cannot take the run (its code server is down); one line, exit code 69."""


EXIT_UNAVAILABLE = 69  # sysexits.h EX_UNAVAILABLE: a service the command needs is down


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM reached the CLI; ``run_id`` is the run it marked CANCELED, if any."""

    def __init__(self, signum: int, run_id: str | None = None, status: str | None = None) -> None:
        super().__init__(signum)
        self.signum, self.run_id, self.status = signum, run_id, status


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"'{text}' is not a date; use YYYY-MM-DD") from None


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is outside 1..65535")
    return port


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="quant", description="quant-assets: the crypto research asset graph.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    demo = sub.add_parser("demo", help="materialize the whole graph for recent days on the simulator")
    demo.add_argument(
        "--days", type=int, default=60,
        help=f"number of daily partitions (default 60; more than {MAX_DEMO_DAYS} needs --yes)",
    )
    demo.add_argument("--yes", action="store_true", help=f"confirm a demo of more than {MAX_DEMO_DAYS} days")
    mat = sub.add_parser("materialize", help="materialize selected assets for a range of daily partitions")
    mat.add_argument("--select", required=True, help="Dagster asset selection, e.g. raw_candles or group:bars")
    mat.add_argument("--start", required=True, help="first partition, YYYY-MM-DD")
    mat.add_argument("--end", required=True, help="last partition, YYYY-MM-DD (inclusive)")
    sub.add_parser("report", help="summarise what the DuckDB file holds")
    sub.add_parser("research", help="rank every signal and factor by |ICIR| with t-stats, IC decay and spreads")
    exp = sub.add_parser("experiments", help="the experiment registry: list, show ID, diff ID1 ID2")
    exp_sub = exp.add_subparsers(dest="action", required=True, parser_class=_Parser, metavar="{list,show,diff}")
    exp_sub.add_parser("list", help="one line per experiment: status, folds, net Sharpe, DSR, PBO, trials, hypothesis")
    show = exp_sub.add_parser("show", help="everything the registry and the manifest hold about one experiment")
    show.add_argument("id", help="an experiment id, or a unique prefix of at least 4 hex digits")
    diff = exp_sub.add_parser("diff", help="what differs: configuration keys, code, packages, input partitions")
    diff.add_argument("first", help="experiment id (or unique prefix)")
    diff.add_argument("second", help="experiment id (or unique prefix)")
    alerts = sub.add_parser("alerts", help="open alerts with their deliveries per sink (read-only)")
    alerts.add_argument("--all", action="store_true", help="also list resolved alerts, with when they resolved")
    ui = sub.add_parser("ui", help=f"start the Dagster webserver and daemon on {UI_HOST}")
    ui.add_argument("--port", type=_port, default=UI_PORT, help=f"a free port, 1..65535 (default {UI_PORT})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    warnings.filterwarnings("ignore")
    try:
        args = _parser().parse_args(argv)
        if args.command == "ui":
            _check_port_free(args.port)  # before anything else: a busy port ends at once
        if args.command in ("demo", "materialize"):
            with _interrupts:
                return _run_command(args)
        return _run_command(args)
    except UsageError as exc:
        print(f"quant: error: {exc}", file=sys.stderr)
        return 2
    except Unavailable as exc:
        print(f"quant: error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Interrupted as exc:
        print(f"quant: interrupted by {signal.Signals(exc.signum).name}{_interrupted_run(exc)}", file=sys.stderr)
        return 128 + exc.signum


def _run_command(args: argparse.Namespace) -> int:
    from quant_assets.config import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    if args.command == "ui":
        return _ui(args.port)
    if args.command == "report":
        from quant_assets.report import print_report

        return print_report(settings)
    if args.command == "experiments":
        return _experiments(settings, args)
    if args.command == "alerts":
        from quant_assets.alerts_report import alerts_lines
        from quant_assets.report import print_report

        return print_report(settings, lambda conn, _settings: alerts_lines(conn, args.all))
    if args.command == "research":
        from quant_assets.report import print_report
        from quant_assets.research_report import research_lines

        return print_report(settings, research_lines)
    try:
        if args.command == "demo":
            return _demo(settings, args.days, args.yes)
        return _materialize(settings, args.select, _parse_date(args.start), _parse_date(args.end))
    except Interrupted:
        raise
    except KeyboardInterrupt as exc:  # e.g. Ctrl-C while Dagster cleans up after a run
        raise Interrupted(_interrupts.signum or signal.SIGINT) from exc


def _experiments(settings: Any, args: argparse.Namespace) -> int:
    from quant_assets.experiments_report import (
        ExperimentLookupError,
        diff_lines,
        list_lines,
        show_lines,
    )
    from quant_assets.report import print_report

    def lines(conn: Any, _settings: Any) -> list[str]:
        if args.action == "list":
            return list_lines(conn)
        if args.action == "show":
            return show_lines(conn, args.id, settings.governance.reproducibility)
        return diff_lines(conn, args.first, args.second)

    try:
        return print_report(settings, lines)
    except ExperimentLookupError as exc:
        raise UsageError(str(exc)) from None


def _interrupted_run(exc: Interrupted) -> str:
    if exc.run_id is None:
        return ""
    if exc.status == "CANCELED":
        return f"; run {exc.run_id} marked CANCELED"
    if exc.status == "CANCELING":
        return f"; run {exc.run_id} is CANCELING (its code server stops it)"
    return f"; run {exc.run_id} had already ended ({exc.status})"


class _Interrupts:
    """SIGINT and SIGTERM end a CLI run as CANCELED in the instance, not left STARTED.

    Outside a run both signals raise :class:`Interrupted`. A run executes inside Dagster's
    ``capture_interrupts`` (its comment invites callers to add one around the whole execution):
    a signal only sets a flag there, and Dagster raises it at the next step, where it is safe.
    Dagster then ends the run CANCELED if the run is CANCELING by then, else FAILURE
    ("interrupted unexpectedly"). So the process also receives every signal through
    ``signal.set_wakeup_fd``: a watcher thread reads the signal's number and reports the run
    this process started CANCELING as soon as it is STARTED; ``run_range`` reports it CANCELED
    afterwards if Dagster did not.
    """

    POLL_S = 0.02

    def __init__(self) -> None:
        self.signum: int | None = None
        self.lock = threading.Lock()
        self.instance: Any = None
        self.run_id: str | None = None
        self._pending = False
        self._saved: list[Any] | None = None

    def __enter__(self) -> "_Interrupts":
        self.signum, self._pending = None, False
        if threading.current_thread() is not threading.main_thread():
            return self
        reader, writer = socket.socketpair()
        writer.setblocking(False)
        old_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for signum in handlers:
            signal.signal(signum, self._raise)
        self._saved = [reader, writer, old_fd, handlers]
        threading.Thread(target=self._watch, args=(reader,), name="quant-signals", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is None:
            return
        reader, writer, old_fd, handlers = self._saved
        self._saved = None
        signal.set_wakeup_fd(old_fd)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        writer.close()  # the watcher reads end-of-file and stops; it closes the reader

    def _raise(self, signum: int, frame: FrameType | None) -> None:
        self.signum = self.signum or signum
        raise Interrupted(self.signum)

    def _watch(self, reader: socket.socket) -> None:
        import select

        with reader:
            while True:
                ready, _, _ = select.select([reader], [], [], self.POLL_S if self._pending else None)
                if ready:
                    data = reader.recv(64)
                    if not data:
                        return
                    for signum in data:
                        if signum in (signal.SIGINT, signal.SIGTERM):
                            self.signum = self.signum or signum
                            self._pending = True
                if self._pending:
                    self._cancel_current()

    def _cancel_current(self) -> None:
        """Report the tracked run CANCELING once it is STARTED (a start event would overwrite
        an earlier CANCELING); stop trying once it is canceling or over."""
        from dagster import DagsterRunStatus

        with self.lock:
            if self.instance is None or self.run_id is None:
                return
            try:
                run = self.instance.get_run_by_id(self.run_id)
                if run is None or run.status in (
                    DagsterRunStatus.NOT_STARTED, DagsterRunStatus.QUEUED, DagsterRunStatus.STARTING
                ):
                    return  # not started yet: Dagster raises the interrupt at its first step
                if run.status == DagsterRunStatus.STARTED:
                    name = signal.Signals(self.signum or signal.SIGINT).name
                    self.instance.report_run_canceling(run, message=f"quant received {name}; canceling the run")
                self._pending = False
            except Exception:  # e.g. the storage is busy: try again at the next poll
                return

    def track(self, instance: Any, run_id: str | None) -> None:
        with self.lock:
            self.instance, self.run_id = instance, run_id


_interrupts = _Interrupts()


def dagster_home() -> Path:
    """``$DAGSTER_HOME`` (set to ``./.dagster_home`` when unset), created with its dagster.yaml."""
    from quant_assets.lib.instance import ensure_instance_config

    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(".dagster_home").resolve())))
    ensure_instance_config(home)
    return home


def last_partition_day() -> date:
    """The newest complete UTC day: daily partitions exist once their day has closed."""
    return datetime.now(UTC).date() - timedelta(days=1)


@dataclass(frozen=True)
class RunOutcome:
    success: bool
    seconds: float
    checks_passed: int
    checks_failed: list[str]
    run_id: str = ""
    causes: list[str] = field(default_factory=list)  # one line per failed step (failed runs)
    log_path: Path | None = None  # the run's events with stack traces (failed runs)
    degraded: list[str] = field(default_factory=list)  # assets that kept last-known-good rows


def run_range(
    defs: "dg.Definitions", keys: Sequence["dg.AssetKey"], start: date, end: date
) -> RunOutcome:
    """Materialize ``keys`` (and their checks) for ``[start, end]`` as one run on the instance."""
    from dagster import DagsterInstance
    from dagster._utils.interrupts import capture_interrupts

    from quant_assets.lib.deployment import deployment_workspace
    from quant_assets.lib.instance import POOL, own_run_tags, reap_dead_runs, wait_for_pool
    from quant_assets.lib.run_failures import failure_lines, tally_checks

    instance = DagsterInstance.get()
    tags = {"launched_by": "quant"}
    if start == end:
        tags["dagster/partition"] = start.isoformat()
    else:
        tags["dagster/asset_partition_range_start"] = start.isoformat()
        tags["dagster/asset_partition_range_end"] = end.isoformat()
    workspace = deployment_workspace(dagster_home())
    if workspace is not None:
        return _run_deployed(defs, instance, workspace, keys, tags)
    for dead in reap_dead_runs(instance):
        print(f"  quant: run {dead.run_id} marked FAILED: its process {dead.pid} is gone; its {POOL} slot is free again")
    wait_for_pool(instance, lambda line: print(f"  quant: {line}", flush=True))
    job = defs.resolve_implicit_global_asset_job_def()
    # One day runs as that partition, so its check results count for the day (automation reads
    # them); longer ranges run as one single-run backfill.
    run_id = str(uuid.uuid4())
    tags.update(own_run_tags())
    began = time.perf_counter()
    _interrupts.track(instance, run_id)
    try:
        with capture_interrupts():  # a signal waits for Dagster's next step instead of hitting storage code
            result = job.execute_in_process(
                instance=instance,
                asset_selection=list(keys),
                run_id=run_id,
                tags=tags,
                # Failures are summarised below and written to the run's log file, not sprayed here.
                run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
                raise_on_error=False,
            )
    finally:
        _interrupts.track(None, None)
    if _interrupts.signum is not None:
        raise _canceled(instance, run_id, _interrupts.signum)
    tallies = tally_checks(result.get_asset_check_evaluations())
    failed = [f"{c.name} ({c.severity}{c.on_days})" for c in tallies if not c.passed]
    causes: list[str] = []
    log_path = None
    if not result.success:
        causes = failure_lines(defs, result, tallies)
        log_path = write_run_log(instance, run_id)
    return RunOutcome(
        result.success, time.perf_counter() - began, len(tallies) - len(failed), failed,
        run_id=run_id, causes=causes, log_path=log_path, degraded=degraded_lines(result),
    )


def _run_deployed(
    defs: "dg.Definitions", instance: "dg.DagsterInstance", workspace: Path,
    keys: Sequence["dg.AssetKey"], tags: dict[str, str],
) -> RunOutcome:
    """Submit the run to the deployment's queue and follow it while the daemon and the code server
    execute it (``quant_assets.lib.deployment``). Ctrl-C or SIGTERM cancels the run: dequeued
    if it still waits, terminated through its code server if it runs."""
    from quant_assets.lib.deployment import DeploymentError, follow_run, submit_asset_run
    from quant_assets.lib.run_failures import failure_lines, tally_checks

    began = time.perf_counter()
    try:
        run_id = submit_asset_run(instance, workspace, CODE_LOCATION, keys, tags)
    except DeploymentError as exc:
        raise Unavailable(str(exc)) from None
    print(f"  quant: run {run_id} submitted: http://{UI_HOST}:{UI_PORT}/runs/{run_id}", flush=True)
    current = [run_id]

    def announce(line: str) -> None:
        current[0] = line.split()[-1] if "retries it as run" in line else current[0]
        print(f"  quant: {line}", flush=True)

    try:
        result = follow_run(instance, run_id, announce)
    except KeyboardInterrupt as exc:
        signum = _interrupts.signum or getattr(exc, "signum", signal.SIGINT)
        raise Interrupted(signum, current[0], _cancel_deployed(instance, current[0])) from None
    except DeploymentError as exc:
        raise Unavailable(str(exc)) from None
    tallies = tally_checks(result.get_asset_check_evaluations())
    failed = [f"{c.name} ({c.severity}{c.on_days})" for c in tallies if not c.passed]
    causes: list[str] = []
    log_path = None
    if not result.success:
        causes = failure_lines(defs, result, tallies)  # type: ignore[arg-type]
        log_path = write_run_log(instance, current[0])
    return RunOutcome(
        result.success, time.perf_counter() - began, len(tallies) - len(failed), failed,
        run_id=current[0], causes=causes, log_path=log_path, degraded=degraded_lines(result),  # type: ignore[arg-type]
    )


def _cancel_deployed(instance: "dg.DagsterInstance", run_id: str, wait_s: float = 15.0) -> str | None:
    """Cancel a run of the deployment and wait a little for it to end; returns its status."""
    run = instance.get_run_by_id(run_id)
    if run is not None and not run.is_finished:
        instance.run_coordinator.cancel_run(run_id)
        deadline = time.monotonic() + wait_s
        while run is not None and not run.is_finished and time.monotonic() < deadline:
            time.sleep(0.2)
            run = instance.get_run_by_id(run_id)
    return run.status.value if run is not None else None


def degraded_lines(result: "dg.ExecuteInProcessResult") -> list[str]:
    """One line per asset that kept last-known-good rows because every provider failed."""
    lines = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        degraded = materialization.metadata.get("degraded_symbols")
        if degraded is not None and degraded.value:
            symbols = dict(degraded.value)
            first = next(iter(symbols.values()))
            lines[materialization.asset_key.to_user_string()] = (
                f"degraded: {materialization.asset_key.to_user_string()} kept last-known-good rows (fetch_status "
                f"DEGRADED) for {', '.join(sorted(symbols))}: every provider failed ({first[:160]})"
            )
    return list(lines.values())


def _canceled(instance: "dg.DagsterInstance", run_id: str, signum: int) -> Interrupted:
    """Mark the run this process started CANCELED, unless it had ended on its own first."""
    from dagster import DagsterRunStatus

    run = instance.get_run_by_id(run_id)
    if run is None:  # interrupted before the run was created
        return Interrupted(signum)
    ended_by_interrupt = (
        run.status == DagsterRunStatus.FAILURE
        and run.tags.get("dagster/failure_reason") == "UNEXPECTED_TERMINATION"
    )
    if not run.is_finished or ended_by_interrupt:
        instance.report_run_canceled(run, message=f"quant was interrupted by {signal.Signals(signum).name}")
        run = instance.get_run_by_id(run_id) or run
    write_run_log(instance, run_id)
    return Interrupted(signum, run_id, run.status.value)


def write_run_log(instance: "dg.DagsterInstance", run_id: str) -> Path:
    """Every event of the run, with each error's stack trace and causes, in
    ``$DAGSTER_HOME/logs/<run_id>.log``."""
    import logging

    path = dagster_home() / "logs" / f"{run_id}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    run = instance.get_run_by_id(run_id)
    with path.open("w") as out:
        status = run.status.value if run else "unknown"
        out.write(f"run {run_id}: {status}; tags {dict(run.tags) if run else {}}\n")
        for record in instance.all_logs(run_id):
            moment = datetime.fromtimestamp(record.timestamp, UTC).isoformat(timespec="milliseconds")
            event = record.dagster_event
            kind = event.event_type_value if event else "LOG"
            out.write(f"{moment} {logging.getLevelName(record.level)} {record.step_key or '-'} {kind} "
                      f"{record.user_message}\n")
            data = event.event_specific_data if event else None
            error = getattr(data, "error", None)
            if error is not None:
                out.write(textwrap.indent(error.to_string(), "    ") + "\n")
            if event and event.event_type_value == "ASSET_CHECK_EVALUATION" and not data.passed:
                for name, value in data.metadata.items():
                    out.write(textwrap.indent(f"{name}: {value.value}", "    ") + "\n")
    return path


def resolve_selection(defs: "dg.Definitions", text: str) -> list["dg.AssetKey"]:
    import dagster as dg

    graph = defs.resolve_asset_graph()
    known = ", ".join(sorted(k.to_user_string() for k in graph.get_all_asset_keys()))
    try:
        keys = dg.AssetSelection.from_string(text).resolve(graph)
    except dg.DagsterInvalidSubsetError:
        raise UsageError(f"--select '{text}' names an unknown asset; assets: {known}") from None
    except Exception as exc:  # Dagster raises several types for a malformed selection string
        raise UsageError(f"--select '{text}' is not a valid asset selection: {str(exc).splitlines()[0]}") from None
    if not keys:
        raise UsageError(f"--select '{text}' matches no asset; assets: {known}")
    return sorted(keys, key=lambda k: k.to_user_string())


def _check_range(settings: "Settings", start: date, end: date) -> None:
    last = last_partition_day()
    if end < start:
        raise UsageError(f"--end {end} is before --start {start}")
    if start < settings.start_date or end > last:
        raise UsageError(
            f"partitions run from {settings.start_date} to {last}; {start}..{end} falls outside "
            "(set QUANT_START_DATE for earlier days)"
        )


def _materialize(settings: "Settings", select: str, start: date, end: date) -> int:
    from quant_assets.definitions import build_definitions

    _check_range(settings, start, end)
    defs = build_definitions(settings)
    keys = resolve_selection(defs, select)
    dagster_home()
    names = ", ".join(k.to_user_string() for k in keys)
    print(f"materializing {names} for {start}..{end} ({(end - start).days + 1} partition{'s' if end > start else ''}) as one run")
    outcome = run_range(defs, keys, start, end)
    _print_outcome("done", outcome)
    return 0 if outcome.success else 1


def _print_outcome(label: str, outcome: RunOutcome) -> None:
    status = label if outcome.success else "FAILED"
    warned = [name for name in outcome.checks_failed if "(WARN" in name]
    blocked = [name for name in outcome.checks_failed if name not in warned]
    print(
        f"  {status} in {outcome.seconds:.1f}s; checks passed {outcome.checks_passed}, "
        f"warnings {len(warned)}, failed {len(blocked)}"
    )
    for line in outcome.degraded:
        print(f"    {line}")
    if not outcome.success:
        _print_failure(outcome, warned)
        return
    for name in blocked:
        print(f"    check failed: {name}")
    for name in warned:
        print(f"    warning: {name} (data flows on; see the check's metadata in the UI)")


def _print_failure(outcome: RunOutcome, warned: list[str]) -> None:
    """At most MAX_CAUSE_LINES cause lines, one line of warnings, the run's address and its log."""
    causes = outcome.causes
    if len(causes) > MAX_CAUSE_LINES:
        rest = len(causes) - MAX_CAUSE_LINES + 1
        causes = [*causes[: MAX_CAUSE_LINES - 1], f"... and {rest} more, listed in the log"]
    for line in causes:
        print(f"    {line}")
    if warned:
        print(f"    warnings (data flows on): {', '.join(warned)}")
    print(f"  run {outcome.run_id}: http://{UI_HOST}:{UI_PORT}/runs/{outcome.run_id} (with `quant ui` running)")
    if outcome.log_path is not None:
        print(f"  log with stack traces: {outcome.log_path}")


def _candles_per_day(settings: "Settings") -> int:
    interval = settings.base_interval  # e.g. "1m", "5m"
    minutes = int(interval[:-1]) * {"m": 1, "h": 60, "d": 1440}[interval[-1]]
    return len(settings.symbols) * (1440 // minutes)


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{max(1, round(seconds / 60))} min"


def _check_days(settings: "Settings", days: int, yes: bool) -> tuple[date, date]:
    if days < 1:
        raise UsageError("--days must be at least 1")
    end = last_partition_day()
    start = end - timedelta(days=days - 1)
    if start < settings.start_date:
        available = (end - settings.start_date).days + 1
        raise UsageError(
            f"--days {days} reaches back to {start}, before the first partition {settings.start_date} "
            f"(partitions.start_date, QUANT_START_DATE): at most --days {available}, or set QUANT_START_DATE earlier"
        )
    if days > MAX_DEMO_DAYS and not yes:
        candles = days * _candles_per_day(settings)
        seconds = days * DEMO_SECONDS_PER_DAY * _candles_per_day(settings) / DEMO_REFERENCE_CANDLES_PER_DAY
        raise UsageError(
            f"--days {days} is more than {MAX_DEMO_DAYS}: {days} days x {len(settings.symbols)} symbols is about "
            f"{candles / 1e6:.1f}M {settings.base_interval} candles and {_duration(seconds)}; add --yes to run it"
        )
    return start, end


def _demo(settings: "Settings", days: int, yes: bool = False) -> int:
    from quant_assets.definitions import STAGES, build_definitions
    from quant_assets.report import print_report

    start, end = _check_days(settings, days, yes)
    _check_range(settings, start, end)
    # Features are computed from the first partition (the origin): the demo's history starts at
    # its first day, so that day is its origin; later commands on this data need the same one.
    configured_origin = settings.start_date
    home = dagster_home()
    from quant_assets.lib.deployment import deployment_workspace

    if start != configured_origin and deployment_workspace(home) is not None:
        raise UsageError(
            f"on a deployment the code server's origin applies (partitions.start_date {configured_origin}), "
            f"not the demo's {start}: start the code server with QUANT_START_DATE={start}, or run the demo "
            "with a DAGSTER_HOME of its own"
        )
    settings = dataclasses.replace(settings, start_date=start)
    defs = build_definitions(settings)
    print(
        f"quant demo: {len(settings.symbols)} symbols, {settings.base_interval} candles from "
        f"{', '.join(settings.candle_providers)}, partitions {start}..{end} ({(end - start).days + 1} days)"
    )
    print(f"  DuckDB: {settings.duckdb_path.resolve()}   Dagster instance: {home}")
    env_prefix = f"QUANT_START_DATE={start} " if start != configured_origin else ""
    if env_prefix:
        print(f"  origin: partitions start at {start} for this demo (features are computed from the first "
              f"partition); run later commands on this data with {env_prefix.strip()}")
    import dagster as dg

    graph = defs.resolve_asset_graph()
    for number, stage in enumerate(STAGES, start=1):
        keys = sorted(dg.AssetSelection.groups(stage).resolve(graph), key=lambda k: k.to_user_string())
        names = ", ".join(k.to_user_string() for k in keys)
        print(f"[{number}/{len(STAGES)}] {stage}: {names} ...", flush=True)
        outcome = run_range(defs, keys, start, end)
        _print_outcome("done", outcome)
        if not outcome.success:
            print(f"quant demo stopped at {stage}; the stages after it were not run")
            return 1
    print()
    print_report(settings)
    print(f"\nOpen the UI: {env_prefix}quant ui   (then http://{UI_HOST}:{UI_PORT})")
    return 0


def _check_port_free(port: int) -> None:
    """Bind the port on UI_HOST as the webserver will (SO_REUSEADDR, as uvicorn sets it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((UI_HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(
                    f"port {port} on {UI_HOST} is in use (another `quant ui`?); stop it or pick another --port"
                ) from None
            raise UsageError(f"cannot listen on {UI_HOST}:{port}: {exc.strerror or exc}") from None


def ui_workspace(home: Path, working_directory: Path) -> Path:
    """A workspace file for `dagster dev`: the code location CODE_LOCATION loaded in
    ``working_directory`` (so relative settings such as ./data mean what they mean to `quant`)."""
    import yaml

    path = home / "quant_ui_workspace.yaml"
    location = {"module_name": "quant_assets.definitions", "location_name": CODE_LOCATION,
                "working_directory": str(working_directory.resolve())}
    path.write_text(
        "# Written by `quant ui` at each start; the project's workspace.yaml names the same location.\n"
        + yaml.safe_dump({"load_from": [{"python_module": location}]}, sort_keys=False)
    )
    return path


def _ui(port: int) -> int:
    """``dagster dev`` on 127.0.0.1: the webserver and the daemon (schedules, sensors, automation),
    serving the code location CODE_LOCATION from the working directory."""
    home = dagster_home()
    workspace = ui_workspace(home, Path.cwd())
    command = [
        str(Path(sys.executable).parent / "dagster"), "dev", "-h", UI_HOST, "-p", str(port),
        "-w", str(workspace),
    ]
    print(f"Dagster UI on http://{UI_HOST}:{port} with its daemon (instance {home}); Ctrl-C stops both")
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
