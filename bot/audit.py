"""The audit log: who asked for what, where, when, how it ended and how long it took.

Entries are written by the handler layer around each request; the store keeps them. No secrets go in.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class Outcome(enum.Enum):
    OK = "ok"
    REJECTED = "rejected"  # bad input or not allowed: the user was told why
    ERROR = "error"  # something broke on our side
    DUPLICATE = "duplicate"  # a retried delivery, already handled


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
    id: int | None = None
