"""Queries that complete the audit log, written once for both backends: a request's outcome written after its work,
entries still "requested", and what a request made (its incident or run), which the chores complete them from.

Not responsible for writing the first row (each backend's `record_audit`) nor for deciding outcomes (bot/audit_trail.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.audit import Outcome
from bot.store.sql import SqlBase


@dataclass(frozen=True)
class Pending:
    """An audit entry still waiting for its outcome."""

    id: int
    at: datetime
    kind: str
    name: str


@dataclass(frozen=True)
class Made:
    """What a request made, as its row says now: an incident (with its declaration's stage) or a run (its state)."""

    audit_id: int
    kind: str  # "incident" | "run"
    id: int
    state: str  # the incident's declare_stage, or the run's state


class AuditQueries(SqlBase):
    async def finish_audit(self, audit_id: int, outcome: Outcome, detail: str | None, duration_ms: float | None, *,
                           inferred: bool = False) -> bool:
        """Write a request's outcome. The request's own outcome replaces one the chores inferred meanwhile; an inferred
        one only fills an entry still "requested". True when the row changed."""
        allowed = [Outcome.REQUESTED.value] if inferred else [Outcome.REQUESTED.value, Outcome.UNKNOWN.value]
        inferred_only = "" if inferred else " OR inferred = ?"
        marks = ", ".join("?" for _ in allowed)
        return await self._execute(
            f"UPDATE audit_log SET outcome = ?, detail = ?, duration_ms = ?, inferred = ? "
            f"WHERE id = ? AND (outcome IN ({marks}){inferred_only})",
            [outcome.value, detail, duration_ms, inferred, audit_id, *allowed, *([] if inferred else [True])],
        ) == 1

    async def requested_audits(self, before: datetime, limit: int = 200) -> list[Pending]:
        """Entries still "requested" that were written before `before`, oldest first."""
        rows = await self._rows("SELECT id, at, kind, name FROM audit_log WHERE outcome = ? AND at < ? ORDER BY at, id LIMIT ?",
                                [Outcome.REQUESTED.value, self._enc(before), limit])
        return [Pending(int(r["id"]), self._at(r["at"]), r["kind"], r["name"]) for r in rows]

    async def made_by_requests(self, audit_ids: Sequence[int]) -> list[Made]:
        """The incidents and runs these requests made."""
        if not audit_ids:
            return []
        marks = ", ".join("?" for _ in audit_ids)
        incidents = await self._rows(f"SELECT id, audit_id, declare_stage FROM incidents WHERE audit_id IN ({marks})",
                                     list(audit_ids))
        runs = await self._rows(f"SELECT id, audit_id, state FROM runs WHERE audit_id IN ({marks})", list(audit_ids))
        return ([Made(int(r["audit_id"]), "incident", int(r["id"]), r["declare_stage"]) for r in incidents]
                + [Made(int(r["audit_id"]), "run", int(r["id"]), r["state"]) for r in runs])
