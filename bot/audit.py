"""The audit log: who asked for what, where, when, how it ended and how long it took.

Entries are written by the handler layer around each request (bot/audit_trail.py: requested before the work, the
outcome after); the store keeps them. No secrets go in.
"""

from __future__ import annotations

import enum
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime


class Outcome(enum.Enum):
    REQUESTED = "requested"  # written before the work: the outcome is not known yet
    OK = "ok"
    REJECTED = "rejected"  # bad input or not allowed: the user was told why
    ERROR = "error"  # something broke on our side
    DUPLICATE = "duplicate"  # a retried delivery, already handled
    UNKNOWN = "unknown"  # opsbot stopped, or lost its store for long, before writing the outcome; nothing shows it


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    kind: str  # command | action | event
    name: str  # "/ops", "health.rerun", "app_mention"
    outcome: Outcome
    actor_id: str | None = None
    channel_id: str | None = None
    args: str = ""
    detail: str | None = None
    duration_ms: float | None = None
    inferred: bool = False  # the outcome was completed by the chores (from the run or incident), not by the request
    id: int | None = None


# The audit id of the request being handled, set by the handler layer for its work (and the tasks it spawns), so
# the run or incident a request makes records which audit entry it answers. None outside requests.
REQUEST: ContextVar[int | None] = ContextVar("opsbot_request_audit_id", default=None)


def current_request() -> int | None:
    return REQUEST.get()


@dataclass(frozen=True)
class AuditResult:
    """A request's outcome, for its "requested" entry."""

    audit_id: int
    outcome: Outcome
    detail: str | None
    duration_ms: float | None


class AuditOutbox:
    """Outcomes this process could not write yet (its store did not answer), retried by the chores until they land.

    In memory: a process that dies holding some loses them; the chores then complete those entries from the run or
    incident the request made, or as `unknown` (bot/audit_trail.py)."""

    def __init__(self) -> None:
        self._waiting: dict[int, AuditResult] = {}

    def keep(self, result: AuditResult) -> None:
        self._waiting[result.audit_id] = result

    def waiting(self) -> list[AuditResult]:
        return list(self._waiting.values())

    def landed(self, audit_id: int) -> None:
        self._waiting.pop(audit_id, None)

    def __len__(self) -> int:
        return len(self._waiting)
