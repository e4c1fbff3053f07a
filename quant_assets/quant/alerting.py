"""Alert noise control, as pure functions: open once, escalate on repeats, resolve on recovery.

Every alert has a key naming *what* is unhealthy (``check:<asset>:<check>``, ``run:<job>``,
``provider:<name>``). Observations of that key arrive in order, each either failing or healthy:

- failing, no open alert: **open** one with the observation's base severity (WARN or ERROR) and
  notify;
- failing, alert open: count the consecutive failure; when the count reaches ``escalate_after``
  the alert is **escalated** to CRITICAL and notified once more; otherwise nothing is sent;
- healthy, alert open: **resolve** it and send a "resolved" notification;
- healthy, nothing open: nothing.

So the same failing check reaches people once until it passes again, and once more if it keeps
failing long enough to become critical. No Dagster or I/O here.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

SEVERITY_RANK = {"WARN": 1, "ERROR": 2, "CRITICAL": 3}


class Action(StrEnum):
    NONE = "NONE"
    OPEN = "OPENED"
    REPEAT = "REPEATED"
    ESCALATE = "ESCALATED"
    RESOLVE = "RESOLVED"


@dataclass(frozen=True)
class OpenAlert:
    """The open alert of a key, as stored."""

    alert_id: str
    severity: str
    occurrences: int


@dataclass(frozen=True)
class Observation:
    key: str
    source: str          # asset_check | run | provider | governance
    failing: bool
    severity: str        # base severity of a failure: WARN or ERROR
    message: str
    at: datetime         # UTC
    details: dict | None = None


@dataclass(frozen=True)
class Decision:
    action: Action
    severity: str        # the alert's severity after this observation
    occurrences: int     # consecutive failures after this observation

    @property
    def notify(self) -> bool:
        return self.action in (Action.OPEN, Action.ESCALATE, Action.RESOLVE)


def decide(current: OpenAlert | None, obs: Observation, escalate_after: int = 3) -> Decision:
    """What to do with ``obs`` given the key's open alert (``None`` when nothing is open)."""
    if obs.severity not in ("WARN", "ERROR"):
        raise ValueError(f"base severity must be WARN or ERROR, not {obs.severity!r}")
    if current is None:
        if not obs.failing:
            return Decision(Action.NONE, obs.severity, 0)
        severity = "CRITICAL" if escalate_after <= 1 else obs.severity
        return Decision(Action.OPEN, severity, 1)
    if not obs.failing:
        return Decision(Action.RESOLVE, current.severity, current.occurrences)
    occurrences = current.occurrences + 1
    # A failure worse than the open alert's severity (a WARN check turned ERROR) keeps the worse one.
    severity = max(current.severity, obs.severity, key=SEVERITY_RANK.__getitem__)
    if occurrences >= escalate_after and current.severity != "CRITICAL":
        return Decision(Action.ESCALATE, "CRITICAL", occurrences)
    return Decision(Action.REPEAT, severity, occurrences)


def headline(action: Action, severity: str, message: str) -> str:
    """The one-line text every sink sends: ``[CRITICAL] escalated: ...``, ``[RESOLVED] ...``."""
    if action == Action.RESOLVE:
        return f"[RESOLVED] {message}"
    if action == Action.ESCALATE:
        return f"[{severity}] escalated, still failing: {message}"
    return f"[{severity}] {message}"


@dataclass(frozen=True)
class DayResult:
    """One asset-check evaluation of one partition (or of a whole table: ``partition`` None)."""

    asset: str
    check: str
    run_id: str
    partition: str | None
    passed: bool
    blocking: bool
    failing_rows: int | None
    at: datetime
    execution_id: int
    reason: str | None = None   # the check's own words on what failed (its ``reason`` metadata)


def check_observations(results: Sequence[DayResult], ui_url: str) -> list[Observation]:
    """One observation per (check, run), in order: a range run's days become one message that
    says on how many of its days the check failed, and which first."""
    grouped: dict[tuple[str, str, str], list[DayResult]] = {}
    for result in results:
        grouped.setdefault((result.asset, result.check, result.run_id), []).append(result)
    observations = []
    for (asset, check, run_id), days in grouped.items():
        days = sorted(days, key=lambda d: (d.partition or "", d.execution_id))
        failed = [d for d in days if not d.passed]
        blocking = any(d.blocking for d in days)
        if len(days) == 1:
            where = f" for {days[0].partition}" if days[0].partition else ""
        else:
            where = f" for {days[0].partition}..{days[-1].partition}"
        if not failed:
            message = f"check {check} on {asset} passes again{where}"
        else:
            on_days = f" on {len(failed)} of {len(days)} days (first {failed[0].partition})" if len(days) > 1 else ""
            rows = sum(d.failing_rows or 0 for d in failed)
            rows_text = f": {rows} failing rows" if any(d.failing_rows is not None for d in failed) else ""
            message = f"{'blocking' if blocking else 'warning'} check {check} on {asset} failed{where}{on_days}{rows_text}"
            if failed[0].reason:
                message += f": {failed[0].reason}"
        last = max(days, key=lambda d: (d.at, d.execution_id))
        observations.append(Observation(
            key=f"check:{asset}:{check}", source="asset_check", failing=bool(failed),
            severity="ERROR" if blocking else "WARN", message=message, at=last.at,
            details={"run_id": run_id, "partitions": [d.partition for d in days], "blocking": blocking,
                     "failed_partitions": [d.partition for d in failed], "execution_id": last.execution_id,
                     "link": f"{ui_url}/runs/{run_id}"},
        ))
    observations.sort(key=lambda o: (o.at, o.details["execution_id"]))
    return observations


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def provider_state(row: dict, now: datetime, down_after: timedelta) -> tuple[str, str, str]:
    """``(state, severity, reason)`` of one provider_health row; state FAILING, HEALTHY or UNSURE."""
    name, status = row["provider_name"], row["status"]
    disabled_until, last_ok = _aware(row["disabled_until"]), _aware(row["last_ok_at"])
    last_error = f"; last error: {str(row['last_error'])[:200]}" if row.get("last_error") else ""
    if disabled_until is not None and disabled_until > now:
        return ("FAILING", "WARN",
                f"provider {name}: circuit open until {disabled_until:%Y-%m-%d %H:%M:%S} UTC after "
                f"{row['fail_count']} consecutive failures (status {status}){last_error}")
    if status == "DOWN" and (last_ok is None or now - last_ok > down_after):
        since = f"since {last_ok:%Y-%m-%d %H:%M:%S} UTC" if last_ok else "with no successful call on record"
        return ("FAILING", "ERROR", f"provider {name} is DOWN {since} ({row['fail_count']} failures){last_error}")
    if status == "OK":
        return "HEALTHY", "WARN", f"provider {name} is OK again"
    return "UNSURE", "WARN", ""


def provider_observations(
    rows: Sequence[dict], now: datetime, down_after: timedelta, seen: dict[str, list[str]]
) -> tuple[list[Observation], dict[str, list[str]]]:
    """Observations for rows that changed (``updated_at``) or changed state since ``seen``.

    A provider stuck DOWN without new rows is one observation (it opens the alert), not one per
    tick; each new failing update counts as a repeat and escalates after enough of them.
    """
    observations, cursor = [], dict(seen)
    for row in rows:
        name = row["provider_name"]
        state, severity, reason = provider_state(row, now, down_after)
        stamp = str(row["updated_at"])
        if seen.get(name) == [stamp, state] or state == "UNSURE":
            cursor[name] = [stamp, state]
            continue
        cursor[name] = [stamp, state]
        observations.append(Observation(
            key=f"provider:{name}", source="provider", failing=state == "FAILING", severity=severity,
            message=reason, at=now, details={"provider": name, "status": row["status"]},
        ))
    return observations, cursor
