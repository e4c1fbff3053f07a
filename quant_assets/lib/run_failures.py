"""Why a run failed, one line per failed step, for the terminal.

Dagster logs a step failure as its wrapper error, the user error, a stack trace per link of the
chain (a held lock: over 150 lines). The cause a user acts on is the first error below Dagster's
wrappers: ``Type: text`` for an exception, the description of a ``dg.Failure``, and the
platform's own one-line errors (a busy, damaged or full DuckDB file, a bad setting) without
their class name. A failed check is named with its failing rows and on how many days it failed.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from quant_assets.resources.errors import clip

_OWN_ERRORS = ("quant_assets.resources.errors.", "quant_assets.config.ConfigError")


@dataclass(frozen=True)
class CheckTally:
    """One check over a run: its per-day results (one per partition evaluated) summed up."""

    key: dg.AssetCheckKey
    severity: str
    days: int
    failed_days: int
    failing_rows: int | None

    @property
    def passed(self) -> bool:
        return self.failed_days == 0

    @property
    def name(self) -> str:
        return f"{self.key.asset_key.to_user_string()}:{self.key.name}"

    @property
    def on_days(self) -> str:
        return f", on {self.failed_days} of {self.days} days" if self.days > 1 else ""

    def cause(self) -> str:
        rows = self.failing_rows
        count = f": {rows} failing row{'' if rows == 1 else 's'}" if rows is not None else ""
        return f"{self.key.asset_key.to_user_string()}: check {self.key.name} failed ({self.severity}{self.on_days}){count}"


def tally_checks(evaluations: Sequence[dg.AssetCheckEvaluation]) -> list[CheckTally]:
    """Each check once, in the order first evaluated, with on how many days it failed."""
    grouped: dict[dg.AssetCheckKey, list[dg.AssetCheckEvaluation]] = {}
    for evaluation in evaluations:
        grouped.setdefault(evaluation.asset_check_key, []).append(evaluation)
    tallies = []
    for key, days in grouped.items():
        failed = [d for d in days if not d.passed]
        rows = [d.metadata["failing_rows"].value for d in failed if "failing_rows" in d.metadata]
        tallies.append(CheckTally(key, days[0].severity.value, len(days), len(failed), sum(rows) if rows else None))
    return tallies


def cause_line(error: Any, limit: int = 600) -> str:
    """The first error below Dagster's own wrappers (a ``SerializableErrorInfo``), on one line."""
    while error.cause is not None and (error.cls_name or "").startswith("Dagster"):
        error = error.cause  # "Error occurred while executing op ..." wraps the user's exception
    lines = [line.strip() for line in (error.message or "").splitlines() if line.strip()]
    text = lines[0] if lines else (error.cls_name or "unknown error")
    head, sep, rest = text.partition(": ")
    if sep and head.startswith(_OWN_ERRORS):
        text = rest
    elif sep and head.rsplit(".", 1)[-1] == error.cls_name:  # "module.path.Type: text"
        text = rest if error.cls_name == "Failure" else f"{error.cls_name}: {rest}"
    return clip(text, limit)


def failure_lines(defs: dg.Definitions, result: dg.ExecuteInProcessResult,
                  tallies: list[CheckTally] | None = None) -> list[str]:
    """One line per failed step: the asset and the cause, or the failing check with its failing
    rows; then failed ERROR checks no step reported; else why the run itself failed."""
    tallies = tally_checks(result.get_asset_check_evaluations()) if tallies is None else tallies
    targets = _step_targets(defs)
    failed_checks = {c.key: c for c in tallies if not c.passed}
    covered: set[dg.AssetCheckKey] = set()
    causes = []
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        assets, check_keys = targets.get(event.step_key or "", ([], set()))
        checks = [failed_checks[k] for k in sorted(check_keys & failed_checks.keys(), key=str)]
        if checks:
            covered |= {c.key for c in checks}
            causes += [c.cause() for c in checks]
            continue
        error = event.step_failure_data.error
        where = ", ".join(assets) or event.step_key
        cause = cause_line(error) if error is not None else "failed"
        causes.append(cause if cause.startswith(f"{where}: ") else f"{where}: {cause}")
    causes += [c.cause() for key, c in failed_checks.items() if key not in covered and c.severity == "ERROR"]
    if not causes:  # the run failed outside any step (e.g. while starting its resources)
        failure = result.get_run_failure_event()
        error = getattr(failure.event_specific_data, "error", None) if failure else None
        causes.append(f"run: {cause_line(error) if error else failure.message if failure else 'failed'}")
    return causes


def _step_targets(defs: dg.Definitions) -> dict[str, tuple[list[str], set[dg.AssetCheckKey]]]:
    """Step key (op name) -> the assets it materializes and the checks it evaluates."""
    targets: dict[str, tuple[list[str], set[dg.AssetCheckKey]]] = {}
    for assets_def in defs.resolve_asset_graph().assets_defs:
        if not assets_def.is_executable:
            continue
        names = sorted(k.to_user_string() for k in assets_def.keys)
        if not names:
            names = sorted({k.asset_key.to_user_string() for k in assets_def.check_keys})
        targets[assets_def.node_def.name] = (names, set(assets_def.check_keys))
    return targets
