"""The audit log's writes and the queries that complete it, written once for both backends: a request's entry written
before its work and its outcome after it, entries still "requested", and what a request made (its incident or run),
which the chores complete them from.

Entries and outcomes go through a group commit (bot/store/group_commit.py): the entries of concurrent requests share one
transaction, so a burst of requests does not queue one transaction each before its acknowledgement. Not responsible
for deciding outcomes (bot/audit_trail.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from bot.audit import AuditEntry, Outcome
from bot.store import rows
from bot.store.group_commit import GroupCommit
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
    @cached_property
    def _audit_writes(self) -> GroupCommit:
        return GroupCommit(self._atomic, writers=self._group_writers)

    async def record_audit(self, entry: AuditEntry) -> int:
        """Write one entry; its id once it is committed."""
        row = rows.audit_row(entry, self._enc)
        columns, marks = ", ".join(row), ", ".join("?" for _ in row)
        [written] = await self._audit_writes.run(
            (f"INSERT INTO audit_log ({columns}) VALUES ({marks}) RETURNING id", list(row.values())))
        return int(written["id"])

    async def finish_audit(self, audit_id: int, outcome: Outcome, detail: str | None, duration_ms: float | None, *,
                           inferred: bool = False) -> bool:
        """Write a request's outcome. The request's own outcome replaces one the chores inferred meanwhile; an inferred
        one only fills an entry still "requested". True when the row changed."""
        allowed = [Outcome.REQUESTED.value] if inferred else [Outcome.REQUESTED.value, Outcome.UNKNOWN.value]
        inferred_only = "" if inferred else " OR inferred = ?"
        marks = ", ".join("?" for _ in allowed)
        changed = await self._audit_writes.run((
            (f"UPDATE audit_log SET outcome = ?, detail = ?, duration_ms = ?, inferred = ? "
             f"WHERE id = ? AND (outcome IN ({marks}){inferred_only}) RETURNING id"),
            [outcome.value, detail, duration_ms, inferred, audit_id, *allowed, *([] if inferred else [True])],
        ))
        return len(changed) == 1

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
