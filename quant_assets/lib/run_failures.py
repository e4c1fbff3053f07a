"""Why a run failed, one line per failed step, for the terminal.

Dagster logs a step failure as its wrapper error, the user error, a stack trace per link of the
chain (a held lock: over 150 lines). The cause a user acts on is the first error below Dagster's
wrappers; the platform's own one-line errors (a busy, damaged or full DuckDB file, a bad
setting) are shown without their class name. A blocking check that failed is left to the
check results, which name the check and its days.
"""

from __future__ import annotations

import dagster as dg
from dagster._utils.error import SerializableErrorInfo

from quant_assets.resources.errors import clip

_OWN_ERRORS = ("quant_assets.resources.errors.", "quant_assets.config.ConfigError")


def _below_wrappers(error: SerializableErrorInfo) -> SerializableErrorInfo:
    info = error
    while info.cause is not None and (info.cls_name or "").startswith("Dagster"):
        info = info.cause
    return info


def cause_line(error: SerializableErrorInfo, limit: int = 600) -> str:
    """The first error below Dagster's own wrappers, on one line."""
    info = _below_wrappers(error)
    text = (info.message or info.cls_name or "unknown error").strip()
    head = text.splitlines()[0] if text else "unknown error"
    name, sep, rest = head.partition(": ")
    if sep and name.startswith(_OWN_ERRORS):
        head = rest
    return clip(head, limit)


def failure_lines(result: dg.ExecuteInProcessResult) -> list[str]:
    """``step <key> failed: <cause>`` per failed step, then a failed resource teardown if its cause is new."""
    lines: list[str] = []
    causes: set[str] = set()
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE and event.step_failure_data is not None:
            if _below_wrappers(event.step_failure_data.error).cls_name == "DagsterAssetCheckFailedError":
                continue  # a failed blocking check: the check results say which, and on which days
            cause = cause_line(event.step_failure_data.error)
            causes.add(cause)
            lines.append(f"step {event.step_key} failed: {cause}")
        elif event.event_type == dg.DagsterEventType.ENGINE_EVENT:
            error = getattr(event.event_specific_data, "error", None)
            if error is not None:
                cause = cause_line(error)
                if cause not in causes:
                    causes.add(cause)
                    lines.append(f"{clip(event.message or 'engine event', 60)}: {cause}")
    return lines
