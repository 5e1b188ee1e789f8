"""Queries for the scheduler (job cursors, occurrences, posted messages, pruning) and the digests' windows,
written once for both backends.

Several replicas record the same due occurrences at once; inserts ignore duplicates and the cursor only moves
forward, so the outcome is the same whoever writes first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.scheduling.models import Occurrence, OccurrenceState
from bot.store.sql import SqlBase, Statement

_OPEN = (OccurrenceState.PENDING.value, OccurrenceState.RUNNING.value)
_FINAL = (OccurrenceState.DONE.value, OccurrenceState.FAILED.value, OccurrenceState.SKIPPED.value)


@dataclass(frozen=True)
class PostRecord:
    key: str
    channel_id: str
    ts: str | None
    created_at: datetime
    new: bool  # this call recorded the intent; False when an earlier attempt did


@dataclass(frozen=True)
class CheckTally:
    service: str
    runs: int  # results recorded for the service's checks in the window
    failing: int  # of which critical or error
    warnings: int


class ScheduleQueries(SqlBase):
    # --- jobs and occurrences ------------------------------------------------------------------------

    async def register_job(self, job: str, now: datetime) -> datetime:
        """The job's cursor; a job seen for the first time starts now (nothing before it is owed)."""
        [_, rows] = await self._atomic([
            ("INSERT INTO schedule_jobs (job, cursor) VALUES (?, ?) ON CONFLICT (job) DO NOTHING", [job, self._enc(now)]),
            ("SELECT cursor FROM schedule_jobs WHERE job = ?", [job]),
        ])
        return self._at(rows[0]["cursor"])

    async def record_occurrences(self, job: str, due: Sequence[datetime], skipped: Sequence[tuple[datetime, str]],
                                 cursor: datetime) -> None:
        """Record due occurrences (pending) and missed ones (skipped, with why), then move the cursor forward."""
        statements: list[Statement] = [
            ("INSERT INTO schedule_occurrences (job, due_at, state) VALUES (?, ?, ?) ON CONFLICT (job, due_at) DO NOTHING",
             [job, self._enc(at), OccurrenceState.PENDING.value]) for at in due
        ]
        statements += [
            (("INSERT INTO schedule_occurrences (job, due_at, state, detail) VALUES (?, ?, ?, ?) "
              "ON CONFLICT (job, due_at) DO NOTHING"),
             [job, self._enc(at), OccurrenceState.SKIPPED.value, why]) for at, why in skipped
        ]
        statements.append(("UPDATE schedule_jobs SET cursor = ? WHERE job = ? AND cursor < ?",
                           [self._enc(cursor), job, self._enc(cursor)]))
        await self._atomic(statements)

    async def open_occurrences(self, jobs: Iterable[str]) -> list[Occurrence]:
        """Pending or running occurrences of these jobs, oldest first."""
        names = list(jobs)
        if not names:
            return []
        rows = await self._rows(
            f"SELECT * FROM schedule_occurrences WHERE state IN (?, ?) AND job IN ({', '.join('?' for _ in names)}) "
            "ORDER BY due_at, job", [*_OPEN, *names])
        return [self._occurrence(row) for row in rows]

    async def claim_occurrence(self, job: str, due_at: datetime, owner: str, now: datetime) -> Occurrence | None:
        """Take a pending occurrence, or one whose runner died, for `owner`: the attempt number grows, and only
        the holder of the latest attempt may finish it. None when it is already finished. Call under its lease."""
        [rows] = await self._atomic([(
            ("UPDATE schedule_occurrences SET state = ?, attempt = attempt + 1, owner = ?, started_at = ? "
             "WHERE job = ? AND due_at = ? AND state IN (?, ?) RETURNING *"),
            [OccurrenceState.RUNNING.value, owner, self._enc(now), job, self._enc(due_at), *_OPEN],
        )])
        return self._occurrence(rows[0]) if rows else None

    async def finish_occurrence(self, job: str, due_at: datetime, state: OccurrenceState, detail: str, now: datetime,
                                *, attempt: int | None = None) -> bool:
        """Running (this attempt) → done or failed; or, with no attempt, pending → skipped. True if this call did it."""
        args: list[object]
        if attempt is None:
            where, args = "state = ?", [OccurrenceState.PENDING.value]
        else:
            where, args = "state = ? AND attempt = ?", [OccurrenceState.RUNNING.value, attempt]
        changed = await self._execute(
            f"UPDATE schedule_occurrences SET state = ?, detail = ?, finished_at = ? WHERE job = ? AND due_at = ? AND {where}",
            [state.value, detail[:1000], self._enc(now), job, self._enc(due_at), *args])
        return changed == 1

    async def get_occurrence(self, job: str, due_at: datetime) -> Occurrence | None:
        rows = await self._rows("SELECT * FROM schedule_occurrences WHERE job = ? AND due_at = ?", [job, self._enc(due_at)])
        return self._occurrence(rows[0]) if rows else None

    async def occurrences(self, job: str | None = None, *, limit: int = 50) -> list[Occurrence]:
        """Newest first."""
        where, args = ("WHERE job = ?", [job]) if job is not None else ("", [])
        rows = await self._rows(f"SELECT * FROM schedule_occurrences {where} ORDER BY due_at DESC, job LIMIT ?", [*args, limit])
        return [self._occurrence(row) for row in rows]

    async def latest_finished(self, jobs: Iterable[str]) -> dict[str, Occurrence]:
        """Each job's most recent finished occurrence (for `/ops schedule`)."""
        found: dict[str, Occurrence] = {}
        for job in jobs:
            rows = await self._rows(
                "SELECT * FROM schedule_occurrences WHERE job = ? AND state IN (?, ?, ?) ORDER BY due_at DESC LIMIT 1",
                [job, *_FINAL])
            if rows:
                found[job] = self._occurrence(rows[0])
        return found

    def _occurrence(self, row: dict[str, Any]) -> Occurrence:
        return Occurrence(
            job=row["job"], due_at=self._at(row["due_at"]), state=OccurrenceState(row["state"]),
            attempt=int(row["attempt"]), owner=row["owner"], started_at=self._dec(row["started_at"]),
            finished_at=self._dec(row["finished_at"]), detail=row["detail"],
        )

    # --- messages posted by scheduled work -----------------------------------------------------------

    async def begin_post(self, key: str, channel_id: str, now: datetime) -> PostRecord:
        """Record the intent to post `key` before posting, so a retry can tell it may already have been posted."""
        [inserted, rows] = await self._atomic([
            (("INSERT INTO posted_messages (key, channel_id, created_at) VALUES (?, ?, ?) "
              "ON CONFLICT (key) DO NOTHING RETURNING key"), [key, channel_id, self._enc(now)]),
            ("SELECT * FROM posted_messages WHERE key = ?", [key]),
        ])
        row = rows[0]
        return PostRecord(key, row["channel_id"], row["ts"], self._at(row["created_at"]), bool(inserted))

    async def set_posted(self, key: str, ts: str) -> None:
        await self._execute("UPDATE posted_messages SET ts = ? WHERE key = ?", [ts, key])

    # --- pruning -------------------------------------------------------------------------------------

    async def prune(self, before: datetime) -> int:
        """Forget what only guards against repeats, once nothing can repeat it: event delivery keys, posted
        messages, finished occurrences and lapsed occurrence leases older than `before`. Returns rows removed."""
        at = self._enc(before)
        results = await self._atomic([
            ("DELETE FROM idempotency_keys WHERE created_at < ? RETURNING key", [at]),
            ("DELETE FROM posted_messages WHERE created_at < ? RETURNING key", [at]),
            (f"DELETE FROM schedule_occurrences WHERE due_at < ? AND state IN ({', '.join('?' for _ in _FINAL)}) RETURNING job",
             [at, *_FINAL]),
            ("DELETE FROM leases WHERE name LIKE ? AND expires_at < ? RETURNING name", ["schedule:%", at]),
        ])
        return sum(len(rows) for rows in results)

    # --- the digests' windows ------------------------------------------------------------------------

    async def check_tallies(self, since: datetime) -> list[CheckTally]:
        """Per service, how many check results were recorded since `since`, and how many failed or warned."""
        rows = await self._rows(
            "SELECT service, COUNT(*) AS runs, "
            "SUM(CASE WHEN status IN ('critical', 'error') THEN 1 ELSE 0 END) AS failing, "
            "SUM(CASE WHEN status = 'warning' THEN 1 ELSE 0 END) AS warnings "
            "FROM health_results WHERE checked_at >= ? GROUP BY service ORDER BY service", [self._enc(since)])
        return [CheckTally(row["service"], int(row["runs"]), int(row["failing"] or 0), int(row["warnings"] or 0)) for row in rows]
