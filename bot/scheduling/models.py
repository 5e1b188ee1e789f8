"""What the scheduler stores: one row per occurrence of a job, with its state. No I/O here."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class OccurrenceState(enum.Enum):
    """pending → running → done | failed; pending → skipped (missed beyond the grace period).
    running → running again when the replica running it died (its lease lapsed) and another takes it over."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"



def occurrence_key(job: str, due_at: datetime) -> str:
    """Deterministic, so every replica names the same occurrence the same way: `digest:daily@2026-11-23T09:00:00Z`."""
    return f"{job}@{due_at:%Y-%m-%dT%H:%M:%SZ}"


@dataclass(frozen=True)
class Occurrence:
    job: str
    due_at: datetime
    state: OccurrenceState
    attempt: int = 0
    owner: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    detail: str = ""

    @property
    def key(self) -> str:
        return occurrence_key(self.job, self.due_at)
