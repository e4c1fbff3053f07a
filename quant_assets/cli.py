"""The ``quant`` command: demo, materialize, report, ui.

Runs go through a persistent Dagster instance in ``$DAGSTER_HOME`` (default ``.dagster_home``
in the working directory, created on demand), so everything launched here shows up later in the
UI. Every argument is checked before anything is written; a bad one ends with a one-line
``quant: error: ...`` and exit code 2.
"""

import argparse
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dagster as dg

    from quant_assets.config import Settings

INSTANCE_YAML = """\
# Written by `quant` on first use. DuckDB allows one writer per file: one run at a time,
# and one step at a time in the `duckdb` pool.
concurrency:
  pools:
    default_limit: 1
  runs:
    max_concurrent_runs: 1
telemetry:
  enabled: false
"""


class UsageError(Exception):
    """A bad argument; reported as one line, exit code 2, nothing written."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"'{text}' is not a date; use YYYY-MM-DD") from None


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="quant", description="quant-assets: the crypto research asset graph.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    demo = sub.add_parser("demo", help="materialize the whole graph for recent days on the simulator")
    demo.add_argument("--days", type=int, default=60, help="number of daily partitions (default 60)")
    mat = sub.add_parser("materialize", help="materialize selected assets for a range of daily partitions")
    mat.add_argument("--select", required=True, help="Dagster asset selection, e.g. raw_candles or group:bars")
    mat.add_argument("--start", required=True, help="first partition, YYYY-MM-DD")
    mat.add_argument("--end", required=True, help="last partition, YYYY-MM-DD (inclusive)")
    sub.add_parser("report", help="summarise what the DuckDB file holds")
    ui = sub.add_parser("ui", help="start the Dagster webserver on 127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    warnings.filterwarnings("ignore")
    try:
        args = _parser().parse_args(argv)
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
        if args.command == "demo":
            return _demo(settings, args.days)
        return _materialize(settings, args.select, _parse_date(args.start), _parse_date(args.end))
    except UsageError as exc:
        print(f"quant: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def dagster_home() -> Path:
    """``$DAGSTER_HOME`` (set to ``./.dagster_home`` when unset), created with its dagster.yaml."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(".dagster_home").resolve())))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(INSTANCE_YAML)
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


def run_range(
    defs: "dg.Definitions", keys: Sequence["dg.AssetKey"], start: date, end: date
) -> RunOutcome:
    """Materialize ``keys`` (and their checks) for ``[start, end]`` as one run on the instance."""
    from dagster import DagsterInstance

    instance = DagsterInstance.get()
    job = defs.resolve_implicit_global_asset_job_def()
    # One day runs as that partition, so its check results count for the day (automation reads
    # them); longer ranges run as one single-run backfill.
    tags = {"launched_by": "quant"}
    if start == end:
        tags["dagster/partition"] = start.isoformat()
    else:
        tags["dagster/asset_partition_range_start"] = start.isoformat()
        tags["dagster/asset_partition_range_end"] = end.isoformat()
    began = time.perf_counter()
    result = job.execute_in_process(
        instance=instance,
        asset_selection=list(keys),
        tags=tags,
        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
        raise_on_error=False,
    )
    evaluations = result.get_asset_check_evaluations()
    # A multi-day run also logs each check's result per day (marked day_of_range): count each
    # check once, and say on how many days it failed.
    per_day = [e for e in evaluations if "day_of_range" in e.metadata]
    overall = [e for e in evaluations if "day_of_range" not in e.metadata]
    failed = []
    for e in overall:
        if e.passed:
            continue
        days = [d for d in per_day if d.asset_check_key == e.asset_check_key]
        on_days = f", on {sum(not d.passed for d in days)} of {len(days)} days" if days else ""
        failed.append(
            f"{e.asset_check_key.asset_key.to_user_string()}:{e.asset_check_key.name} ({e.severity.value}{on_days})"
        )
    return RunOutcome(result.success, time.perf_counter() - began, len(overall) - len(failed), failed)


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
    for name in blocked:
        print(f"    check failed: {name}")
    for name in warned:
        print(f"    warning: {name} (data flows on; see the check's metadata in the UI)")


def _demo(settings: "Settings", days: int) -> int:
    from quant_assets.definitions import STAGES, build_definitions
    from quant_assets.report import print_report

    if days < 1:
        raise UsageError("--days must be at least 1")
    end = last_partition_day()
    start = max(end - timedelta(days=days - 1), settings.start_date)
    _check_range(settings, start, end)
    defs = build_definitions(settings)
    home = dagster_home()
    print(
        f"quant demo: {len(settings.symbols)} symbols, {settings.base_interval} candles from "
        f"{', '.join(settings.candle_providers)}, partitions {start}..{end} ({(end - start).days + 1} days)"
    )
    print(f"  DuckDB: {settings.duckdb_path.resolve()}   Dagster instance: {home}")
    import dagster as dg

    graph = defs.resolve_asset_graph()
    for number, stage in enumerate(STAGES, start=1):
        keys = sorted(dg.AssetSelection.groups(stage).resolve(graph), key=lambda k: k.to_user_string())
        names = ", ".join(k.to_user_string() for k in keys)
        print(f"[{number}/{len(STAGES)}] {stage}: {names} ...", flush=True)
        outcome = run_range(defs, keys, start, end)
        _print_outcome("done", outcome)
        if not outcome.success:
            print("quant demo stopped: a step or a blocking check failed; open the UI (quant ui) for the run's logs")
            return 1
    print()
    print_report(settings)
    print("\nOpen the UI: quant ui   (then http://127.0.0.1:3000)")
    return 0


def _ui(port: int) -> int:
    """``dagster dev`` on 127.0.0.1: the webserver and the daemon (schedules, sensors, automation)."""
    home = dagster_home()
    command = [
        str(Path(sys.executable).parent / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port),
        "-m", "quant_assets.definitions",
    ]
    print(f"Dagster UI on http://127.0.0.1:{port} with its daemon (instance {home}); Ctrl-C stops both")
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
