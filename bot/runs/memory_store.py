"""The run ports (`bot.runs.ports`) kept in memory, with the SQL backends' semantics, for engine and flow tests
that must run in milliseconds; tests/test_run_store_contract.py holds all three to one contract.

Not a backend: nothing is persisted and it is not shared between processes. No I/O and no threads: each method
finishes without awaiting, so on one event loop every compare-and-set is atomic. Ids count from 1 per table.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from bot.runs.models import (
    ActionRun,
    ActionState,
    ActionStep,
    ApprovalDecision,
    BackupLabel,
    BackupRecord,
    StepAnswer,
    StepState,
    UnknownStepKind,
    rows_to_store,
)
from bot.runs.ports import SETTABLE_RUN_FIELDS
from bot.runs.states import IllegalTransition, check_run_move, step_sources
from bot.runs.steps import REGISTRY

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A follow-up in one of these states ended without running, so its claim on the interrupted run is free again (a
# FAILED follow-up counts only when it never started: refused by a held lock or an unreachable target).
_DEAD_FOLLOW_UPS = frozenset({ActionState.CANCELLED, ActionState.EXPIRED, ActionState.DENIED})
_CANCELLABLE = frozenset({ActionState.APPROVED, ActionState.RUNNING})
_AWAITING = frozenset({ActionState.DRAFT, ActionState.PENDING})
_ROW_ONLY_FIELDS = frozenset({"lease_owner", "heartbeat_at"})  # columns the ActionRun record does not carry

J = TypeVar("J")


def _utc(value: datetime) -> datetime:
    # Same rule as the SQL backends (bot.store.rows.utc), without importing the store package and its drivers.
    if value.tzinfo is None:
        raise ValueError("naive datetime: the store keeps UTC timestamps only")
    return value.astimezone(UTC)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


def _json_copy(value: J) -> J:
    # The SQL backends keep params and undo data as JSON text: a round trip gives the same values back (tuples read
    # back as lists, an unserialisable value fails on write) and no caller shares a mutable dict with the store.
    copied: J = json.loads(json.dumps(value))
    return copied


@dataclass(frozen=True)
class _RunRow:
    run: ActionRun  # without steps (kept apart, by position) and as stored (progress fields only set by moves)
    lease_owner: str | None = None
    heartbeat_at: datetime | None = None


@dataclass(frozen=True)
class _LeaseRow:
    owner: str
    token: int
    expires_at: datetime


class MemoryRunStore:
    """`RunStore`, `BackupLedger` and `LeaseStore` in dicts."""

    def __init__(self) -> None:
        self._runs: dict[int, _RunRow] = {}
        self._steps: dict[int, dict[int, ActionStep]] = {}
        self._decisions: dict[tuple[int, str], ApprovalDecision] = {}
        self._backups: dict[int, BackupRecord] = {}
        self._leases: dict[str, _LeaseRow] = {}
        self._run_ids = itertools.count(1)
        self._backup_ids = itertools.count(1)

    # --- runs -----------------------------------------------------------------------------------------------------

    async def create_action(self, run: ActionRun) -> int:
        run_id = next(self._run_ids)
        stored = ActionRun(
            service=run.service, kind=run.kind, environment=run.environment, target=run.target,
            requested_by=run.requested_by, created_at=_utc(run.created_at), expires_at=_utc(run.expires_at),
            state=run.state, params=_json_copy(run.params), approvals_needed=run.approvals_needed,
            approvers=tuple(run.approvers), reason=run.reason, channel_id=run.channel_id, message_ts=run.message_ts,
            plan=tuple(replace(step, args=_json_copy(step.args)) for step in run.plan), audit_id=run.audit_id,
            id=run_id,
        )
        self._runs[run_id] = _RunRow(stored)
        self._steps[run_id] = {}
        for step, _ in rows_to_store(run):  # the plan itself is kept whole on the run record
            # As the SQL insert's upsert does: a second step at one position replaces the first only where the
            # step table allows that move, and is dropped (not raised) otherwise.
            if self._step_move_allowed(run_id, step):
                self._put_step(run_id, replace(step, answer=None))  # a new run asks its people again
        return run_id

    async def get_action(self, run_id: int) -> ActionRun | None:
        row = self._runs.get(run_id)
        return None if row is None else self._read(row)

    async def actions(self, *, service: str | None = None, states: Iterable[ActionState] | None = None, limit: int = 20,
                      since: datetime | None = None) -> list[ActionRun]:
        wanted = None if states is None else frozenset(states)
        floor = _utc_or_none(since)
        found = [
            row for row in self._runs.values()
            if (service is None or row.run.service == service)
            and (wanted is None or row.run.state in wanted)
            and (floor is None or row.run.created_at >= floor
                 or (row.run.finished_at is not None and row.run.finished_at >= floor))
        ]
        found.sort(key=lambda row: (row.run.created_at, row.run.id or 0), reverse=True)
        return [self._read(row) for row in found[:max(limit, 0)]]

    async def transition_action(self, run_id: int, to: ActionState, *, expect: Iterable[ActionState], owner: str | None = None,
                                unexpired_at: datetime | None = None, **fields: Any) -> bool:
        unknown = set(fields) - SETTABLE_RUN_FIELDS
        if unknown:
            raise ValueError(f"not action fields: {sorted(unknown)}")
        expected = check_run_move(expect, to)  # raises on a move the table refuses, before looking at the row
        values: dict[str, Any] = {name: _utc(value) if isinstance(value, datetime) else value for name, value in fields.items()}
        floor = _utc_or_none(unexpired_at)
        row = self._runs.get(run_id)
        if (row is None or row.run.state not in expected or (owner is not None and row.lease_owner != owner)
                or (floor is not None and not row.run.expires_at > floor)):
            return False
        run_fields = {name: value for name, value in values.items() if name not in _ROW_ONLY_FIELDS}
        row_fields = {name: value for name, value in values.items() if name in _ROW_ONLY_FIELDS}
        self._runs[run_id] = replace(row, run=replace(row.run, state=to, **run_fields), **row_fields)
        return True

    async def heartbeat(self, run_id: int, owner: str, at: datetime) -> bool:
        row = self._runs.get(run_id)
        if row is None or row.lease_owner != owner or row.run.state is not ActionState.RUNNING:
            return False
        self._runs[run_id] = replace(row, heartbeat_at=_utc(at))
        return True

    async def stale_actions(self, before: datetime) -> list[ActionRun]:
        floor = _utc(before)
        return [self._read(row) for _, row in sorted(self._runs.items())
                if row.run.state in _CANCELLABLE and (row.heartbeat_at is None or row.heartbeat_at < floor)]

    async def set_action_message(self, run_id: int, channel_id: str, message_ts: str) -> None:
        row = self._runs.get(run_id)
        if row is not None:
            self._runs[run_id] = replace(row, run=replace(row.run, channel_id=channel_id, message_ts=message_ts))

    async def save_step(self, run_id: int, step: ActionStep) -> None:
        if run_id not in self._runs:
            raise LookupError(f"no run {run_id} to save a step of")  # a foreign-key violation in SQL: a bug
        if not self._step_move_allowed(run_id, step):
            stored = self._steps[run_id][step.position]
            raise IllegalTransition("step", [stored.state.value], step.state.value)
        kept = self._steps[run_id].get(step.position)
        self._put_step(run_id, replace(step, answer=None if kept is None else kept.answer))  # only `answer_step` sets it

    async def answer_step(self, run_id: int, position: int, answer: StepAnswer) -> bool:
        row, step = self._runs.get(run_id), self._steps.get(run_id, {}).get(position)
        if (row is None or row.run.state is not ActionState.RUNNING or step is None
                or step.state is not StepState.RUNNING or step.answer is not None):
            return False
        self._steps[run_id][position] = replace(step, answer=replace(answer, at=_utc(answer.at)))
        return True

    async def claim_follow_up(self, run_id: int, follow_up_id: int) -> bool:
        row = self._runs.get(run_id)
        if row is None:
            return False
        holder = None if row.run.followed_by is None else self._runs.get(row.run.followed_by)
        if row.run.followed_by is not None and (holder is None or not _ended_without_running(holder.run)):
            return False
        self._runs[run_id] = replace(row, run=replace(row.run, followed_by=follow_up_id))
        return True

    async def request_cancel(self, run_id: int, user: str) -> bool:
        row = self._runs.get(run_id)
        if row is None or row.run.state not in _CANCELLABLE or row.run.cancel_requested_by is not None:
            return False
        self._runs[run_id] = replace(row, run=replace(row.run, cancel_requested_by=user))
        return True

    async def expired_actions(self, now: datetime) -> list[ActionRun]:
        at = _utc(now)
        return [self._read(row) for _, row in sorted(self._runs.items())
                if row.run.state in _AWAITING and row.run.expires_at <= at]

    async def add_decision(self, decision: ApprovalDecision) -> bool:
        if decision.run_id not in self._runs:
            raise LookupError(f"no run {decision.run_id} to decide on")  # a foreign-key violation in SQL: a bug
        key = (decision.run_id, decision.user_id)
        if key in self._decisions:
            return False
        self._decisions[key] = replace(decision, at=_utc(decision.at))
        return True

    async def decisions(self, run_id: int) -> list[ApprovalDecision]:
        found = [decision for (of_run, _), decision in self._decisions.items() if of_run == run_id]
        return sorted(found, key=lambda decision: (decision.at, decision.user_id))

    def _read(self, row: _RunRow) -> ActionRun:
        run_id = row.run.id
        assert run_id is not None  # every stored run got its id in create_action
        steps = tuple(self._read_step(step) for _, step in sorted(self._steps[run_id].items()))
        for position, planned in enumerate(row.run.plan):
            if planned.kind not in REGISTRY:  # as the SQL stores refuse to read it
                raise UnknownStepKind(run_id, position, planned.kind)
        plan = tuple(replace(planned, args=_json_copy(planned.args)) for planned in row.run.plan)
        return replace(row.run, params=_json_copy(row.run.params), steps=steps, plan=plan)

    @staticmethod
    def _read_step(step: ActionStep) -> ActionStep:
        return step if step.undo is None else replace(step, undo=_json_copy(step.undo))

    def _step_move_allowed(self, run_id: int, step: ActionStep) -> bool:
        stored = self._steps[run_id].get(step.position)
        return stored is None or stored.state in step_sources(step.state)  # a new row may start in any state

    def _put_step(self, run_id: int, step: ActionStep) -> None:
        self._steps[run_id][step.position] = replace(
            step, started_at=_utc_or_none(step.started_at), finished_at=_utc_or_none(step.finished_at),
            undo=None if step.undo is None else _json_copy(step.undo),
        )

    # --- backups --------------------------------------------------------------------------------------------------

    async def add_backup(self, record: BackupRecord) -> int:
        for backup_id, live in self._backups.items():
            if live.path == record.path and live.deleted_at is None:
                return backup_id  # one live record per file
        backup_id = next(self._backup_ids)
        self._backups[backup_id] = replace(record, id=backup_id, created_at=_utc(record.created_at),
                                           verified_at=_utc_or_none(record.verified_at), deleted_at=None)
        return backup_id

    async def get_backup(self, backup_id: int) -> BackupRecord | None:
        return self._backups.get(backup_id)

    async def backup_of_run(self, run_id: int) -> BackupRecord | None:
        written = [record for _, record in sorted(self._backups.items())
                   if record.run_id == run_id and record.label is not BackupLabel.SAFETY]
        return written[-1] if written else None

    async def backups(self, service: str | None = None, *, include_deleted: bool = False,
                      limit: int = 50) -> list[BackupRecord]:
        found = [record for record in self._backups.values()
                 if (service is None or record.service == service) and (include_deleted or record.deleted_at is None)]
        found.sort(key=lambda record: (record.created_at, record.id or 0), reverse=True)
        return found[:max(limit, 0)]

    async def mark_backup_deleted(self, backup_id: int, at: datetime) -> None:
        record = self._backups.get(backup_id)
        if record is not None and record.deleted_at is None:
            self._backups[backup_id] = replace(record, deleted_at=_utc(at))

    # --- leases ---------------------------------------------------------------------------------------------------

    async def acquire_lease(self, name: str, owner: str, ttl: float, now: datetime) -> int | None:
        at = _utc(now)
        held = self._leases.get(name)
        if held is not None and held.expires_at > at:
            return None
        token = 1 if held is None else held.token + 1  # only ever grows, even across releases
        self._leases[name] = _LeaseRow(owner, token, at + timedelta(seconds=ttl))
        return token

    async def renew_lease(self, name: str, owner: str, token: int, ttl: float, now: datetime) -> bool:
        at = _utc(now)
        held = self._leases.get(name)
        if held is None or (held.owner, held.token) != (owner, token) or not held.expires_at > at:
            return False
        self._leases[name] = replace(held, expires_at=at + timedelta(seconds=ttl))
        return True

    async def release_lease(self, name: str, owner: str, token: int) -> None:
        held = self._leases.get(name)
        if held is not None and (held.owner, held.token) == (owner, token):
            # Expire rather than forget: the row keeps the token, so the next holder's token is still larger.
            self._leases[name] = replace(held, expires_at=_EPOCH)


def _ended_without_running(run: ActionRun) -> bool:
    return run.state in _DEAD_FOLLOW_UPS or (run.state is ActionState.FAILED and run.started_at is None)
