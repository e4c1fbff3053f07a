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

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

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
    source: str          # asset_check | run | provider
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
