"""Queries for actions, approvals, backups, deploy history and leases, written once for both backends.

Every state change is a single compare-and-set statement, so two replicas (or two clicks) racing on one
row cannot both win.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from bot.executors.base import Effect, Revision
from bot.runs.models import (
    ActionKind,
    ActionRun,
    ActionState,
    ActionStep,
    Answer,
    ApprovalDecision,
    BackupLabel,
    BackupRecord,
    Decision,
    PlannedStep,
    StepAnswer,
    StepState,
    UnknownStepKind,
    rows_to_store,
)
from bot.runs.outcomes import RunOutcome
from bot.runs.ports import SETTABLE_RUN_FIELDS
from bot.runs.states import IllegalTransition, check_run_move, step_sources
from bot.runs.steps import REGISTRY
from bot.store.rows import utc
from bot.store.sql import SqlBase, Statement

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_OUTCOME = TypeAdapter(RunOutcome)  # runs.outcome_data: the outcome as JSON, read back as the same value


class ActionQueries(SqlBase):
    # --- action runs ----------------------------------------------------------------------------------

    async def create_action(self, run: ActionRun) -> int:
        row = {
            "service": run.service, "kind": run.kind.value, "state": run.state.value,
            "environment": run.environment, "target": run.target, "params": json.dumps(run.params),
            "requested_by": run.requested_by, "reason": run.reason, "approvals_needed": run.approvals_needed,
            "approvers": json.dumps(list(run.approvers)), "channel_id": run.channel_id, "message_ts": run.message_ts,
            "created_at": self._enc(run.created_at), "expires_at": self._enc(run.expires_at), "audit_id": run.audit_id,
        }
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        [inserted] = await self._atomic([(f"INSERT INTO runs ({columns}) VALUES ({marks}) RETURNING id",
                                          list(row.values()))])
        run_id = int(inserted[0]["id"])
        rows = rows_to_store(run)
        if rows:
            await self._atomic([self._step_upsert(run_id, step, planned) for step, planned in rows])
        return run_id

    async def get_action(self, run_id: int) -> ActionRun | None:
        rows = await self._rows("SELECT * FROM runs WHERE id = ?", [run_id])
        if not rows:
            return None
        return (await self._with_steps(rows))[0]

    async def actions(
        self, *, service: str | None = None, states: Iterable[ActionState] | None = None, limit: int = 20,
        since: datetime | None = None,
    ) -> list[ActionRun]:
        """Newest first; with `since`, only runs asked for or finished at or after it."""
        where, args = ["1 = 1"], []
        if since is not None:
            where.append("(created_at >= ? OR finished_at >= ?)")
            args.extend([self._enc(since), self._enc(since)])
        if service is not None:
            where.append("service = ?")
            args.append(service)
        wanted = [state.value for state in states] if states is not None else None
        if wanted is not None:
            where.append(f"state IN ({', '.join('?' for _ in wanted)})" if wanted else "1 = 0")
            args.extend(wanted)
        rows = await self._rows(
            f"SELECT * FROM runs WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT ?",
            [*args, limit],
        )
        return await self._with_steps(rows)

    async def transition_action(
        self, run_id: int, to: ActionState, *, expect: Iterable[ActionState], owner: str | None = None,
        unexpired_at: datetime | None = None, **fields: Any
    ) -> bool:
        """Move a run to `to` only if it is in one of `expect` (and, when given, still held by `owner`, or not
        expired at `unexpired_at`); True when this call made the change."""
        unknown = set(fields) - SETTABLE_RUN_FIELDS
        if unknown:
            raise ValueError(f"not action fields: {sorted(unknown)}")
        sets, args = ["state = ?"], [to.value]
        for name, value in fields.items():
            sets.append(f"{name} = ?")
            args.append(self._enc(value) if isinstance(value, datetime)
                        else _OUTCOME.dump_json(value).decode() if isinstance(value, RunOutcome) else value)
        expected = sorted(state.value for state in check_run_move(expect, to))  # raises on a move the table refuses
        where = f"id = ? AND state IN ({', '.join('?' for _ in expected)})"
        conditions: list[Any] = [run_id, *expected]
        if owner is not None:
            where += " AND lease_owner = ?"
            conditions.append(owner)
        if unexpired_at is not None:
            where += " AND expires_at > ?"
            conditions.append(self._enc(unexpired_at))
        return await self._execute(f"UPDATE runs SET {', '.join(sets)} WHERE {where}", [*args, *conditions]) == 1

    async def heartbeat(self, run_id: int, owner: str, at: datetime) -> bool:
        """The running replica says it is alive; False when the run is no longer its own."""
        return await self._execute(
            "UPDATE runs SET heartbeat_at = ? WHERE id = ? AND lease_owner = ? AND state = ?",
            [self._enc(at), run_id, owner, ActionState.RUNNING.value]) == 1

    async def stale_actions(self, before: datetime) -> list[ActionRun]:
        """Approved or running runs whose last heartbeat is older than `before`: their replica is gone."""
        rows = await self._rows(
            "SELECT * FROM runs WHERE state IN (?, ?) AND (heartbeat_at IS NULL OR heartbeat_at < ?) ORDER BY id",
            [ActionState.APPROVED.value, ActionState.RUNNING.value, self._enc(before)])
        return await self._with_steps(rows)

    async def set_action_message(self, run_id: int, channel_id: str, message_ts: str) -> None:
        await self._execute("UPDATE runs SET channel_id = ?, message_ts = ? WHERE id = ?",
                            [channel_id, message_ts, run_id])

    async def save_step(self, run_id: int, step: ActionStep) -> None:
        """Insert or update one step row; an update only from a state the step table lets move to `step.state`."""
        sql, args = self._step_upsert(run_id, step)
        if await self._execute(sql, args) == 0:
            stored = await self._rows("SELECT state FROM run_steps WHERE run_id = ? AND position = ?",
                                      [run_id, step.position])
            raise IllegalTransition("step", [row["state"] for row in stored], step.state.value)

    async def answer_step(self, run_id: int, position: int, answer: StepAnswer) -> bool:
        """Keep a person's answer to the running step at `position` of a running run; True for the first answer."""
        return await self._execute(
            "UPDATE run_steps SET answer = ?, answered_by = ?, answered_at = ? WHERE run_id = ? AND position = ? "
            "AND state = ? AND answer IS NULL AND EXISTS (SELECT 1 FROM runs WHERE id = ? AND state = ?)",
            [answer.answer.value, answer.by, self._enc(answer.at), run_id, position, StepState.RUNNING.value,
             run_id, ActionState.RUNNING.value]) == 1

    async def claim_follow_up(self, run_id: int, follow_up_id: int) -> bool:
        """Make `follow_up_id` the one run that resumes or rolls back `run_id`; True unless a live one has it. A
        follow-up that ended without running (dropped, expired, denied, refused) leaves the claim free again."""
        return await self._execute(
            "UPDATE runs SET followed_by = ? WHERE id = ? AND (followed_by IS NULL OR followed_by IN ("
            "SELECT id FROM runs WHERE state IN (?, ?, ?) OR (state = ? AND started_at IS NULL)))",
            [follow_up_id, run_id, ActionState.CANCELLED.value, ActionState.EXPIRED.value, ActionState.DENIED.value,
             ActionState.FAILED.value]) == 1

    async def request_cancel(self, run_id: int, user: str) -> bool:
        """Ask a run that is about to start or running to stop before its next step; True for the first ask."""
        return await self._execute(
            "UPDATE runs SET cancel_requested_by = ? WHERE id = ? AND state IN (?, ?) AND cancel_requested_by IS NULL",
            [user, run_id, ActionState.APPROVED.value, ActionState.RUNNING.value]) == 1

    async def expired_actions(self, now: datetime) -> list[ActionRun]:
        """Drafts and pending requests past their expiry."""
        rows = await self._rows(
            "SELECT * FROM runs WHERE state IN (?, ?) AND expires_at <= ? ORDER BY id",
            [ActionState.DRAFT.value, ActionState.PENDING.value, self._enc(now)],
        )
        return await self._with_steps(rows)

    def _step_upsert(self, run_id: int, step: ActionStep, planned: PlannedStep | None = None) -> Statement:
        """A step row; with `planned`, the plan step it is (written when the run is created; an update keeps the
        plan columns as they are)."""
        plan = ([planned.kind, planned.service, json.dumps(planned.args), planned.undo, planned.on_failure,
                 planned.timeout, planned.retries, planned.probe] if planned is not None else [None] * 8)
        return (
            ("INSERT INTO run_steps (run_id, position, title, state, detail, started_at, finished_at, undo, effect, "
             "kind, service, args, undo_words, on_failure, timeout, retries, probe) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, position) DO UPDATE SET "
             "title = excluded.title, state = excluded.state, detail = excluded.detail, "
             "started_at = excluded.started_at, finished_at = excluded.finished_at, undo = excluded.undo, "
             "effect = excluded.effect WHERE run_steps.state IN ("
             + ", ".join(f"'{state.value}'" for state in sorted(step_sources(step.state), key=lambda s: s.value))
             + ")"),
            [run_id, step.position, step.title, step.state.value, step.detail,
             self._enc(step.started_at), self._enc(step.finished_at),
             None if step.undo is None else json.dumps(step.undo),
             None if step.effect is None else step.effect.value, *plan],
        )

    async def _with_steps(self, rows: list[dict[str, Any]]) -> list[ActionRun]:
        if not rows:
            return []
        ids = [row["id"] for row in rows]
        steps = await self._rows(
            f"SELECT * FROM run_steps WHERE run_id IN ({', '.join('?' for _ in ids)}) ORDER BY run_id, position", ids
        )
        by_run: dict[int, list[ActionStep]] = {}
        plans: dict[int, list[PlannedStep]] = {}
        for step in steps:
            run_id = int(step["run_id"])
            by_run.setdefault(run_id, []).append(
                ActionStep(position=step["position"], title=step["title"], state=StepState(step["state"]),
                           detail=step["detail"], started_at=self._dec(step["started_at"]),
                           finished_at=self._dec(step["finished_at"]),
                           undo=None if step["undo"] is None else json.loads(step["undo"]),
                           effect=None if step["effect"] is None else Effect(step["effect"]),
                           answer=self._answer(step))
            )
            if step["kind"] is not None:
                plan = plans.setdefault(run_id, [])
                if int(step["position"]) != len(plan):  # the plan is rows 0..n-1; a gap would shift every step
                    raise ValueError(f"run {run_id}: plan step at row {step['position']} after {len(plan)} plan rows")
                plan.append(_planned(run_id, step))
        return [self._run(row, by_run.get(int(row["id"]), []), plans.get(int(row["id"]), [])) for row in rows]

    def _answer(self, step: dict[str, Any]) -> StepAnswer | None:
        at = self._dec(step["answered_at"])
        if step["answer"] is None or at is None:
            return None
        return StepAnswer(Answer(step["answer"]), step["answered_by"], at)

    def _run(self, row: dict[str, Any], steps: list[ActionStep], plan: list[PlannedStep]) -> ActionRun:
        created, expires = self._dec(row["created_at"]), self._dec(row["expires_at"])
        assert created is not None and expires is not None
        return ActionRun(
            id=int(row["id"]), service=row["service"], kind=ActionKind(row["kind"]), state=ActionState(row["state"]),
            environment=row["environment"], target=row["target"], params=json.loads(row["params"]),
            requested_by=row["requested_by"], reason=row["reason"], approvals_needed=int(row["approvals_needed"]),
            approvers=tuple(json.loads(row["approvers"])), channel_id=row["channel_id"], message_ts=row["message_ts"],
            created_at=created, expires_at=expires, started_at=self._dec(row["started_at"]),
            finished_at=self._dec(row["finished_at"]), outcome=row["outcome"], target_state=row["target_state"],
            steps=tuple(steps), plan=tuple(plan),
            outcome_data=None if row["outcome_data"] is None else _OUTCOME.validate_json(row["outcome_data"]),
            cancel_requested_by=row["cancel_requested_by"], followed_by=row["followed_by"], audit_id=row["audit_id"],
        )

    # --- approvals ------------------------------------------------------------------------------------

    async def add_decision(self, decision: ApprovalDecision) -> bool:
        """Record one person's decision; False if they already decided on this run (a double click)."""
        changed = await self._execute(
            "INSERT INTO approval_decisions (run_id, user_id, decision, reason, at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (run_id, user_id) DO NOTHING",
            [decision.run_id, decision.user_id, decision.decision.value, decision.reason, self._enc(decision.at)],
        )
        return changed == 1

    async def decisions(self, run_id: int) -> list[ApprovalDecision]:
        rows = await self._rows("SELECT * FROM approval_decisions WHERE run_id = ? ORDER BY at, user_id", [run_id])
        return [
            ApprovalDecision(run_id=int(r["run_id"]), user_id=r["user_id"], decision=Decision(r["decision"]),
                             reason=r["reason"], at=self._at(r["at"]))
            for r in rows
        ]

    # --- backups --------------------------------------------------------------------------------------

    async def add_backup(self, record: BackupRecord) -> int:
        """The record's id; a file already recorded (and not deleted) keeps its record and that id is returned."""
        [rows] = await self._atomic([(
            ("INSERT INTO backups (service, kind, path, size, sha256, label, created_at, verified_at, run_id) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) WHERE deleted_at IS NULL DO NOTHING RETURNING id"),
            [record.service, record.kind, str(record.path), record.size, record.sha256, record.label.value,
             self._enc(record.created_at), self._enc(record.verified_at), record.run_id],
        )])
        if not rows:
            rows = await self._rows("SELECT id FROM backups WHERE path = ? AND deleted_at IS NULL", [str(record.path)])
        return int(rows[0]["id"])

    async def get_backup(self, backup_id: int) -> BackupRecord | None:
        rows = await self._rows("SELECT * FROM backups WHERE id = ?", [backup_id])
        return self._backup(rows[0]) if rows else None

    async def backup_of_run(self, run_id: int) -> BackupRecord | None:
        rows = await self._rows("SELECT * FROM backups WHERE run_id = ? AND label <> 'safety' ORDER BY id DESC LIMIT 1", [run_id])
        return self._backup(rows[0]) if rows else None

    async def backups(self, service: str | None = None, *, include_deleted: bool = False, limit: int = 50) -> list[BackupRecord]:
        """Newest first; `service=None` lists every service's."""
        where, args = ["1 = 1"], []
        if service is not None:
            where.append("service = ?")
            args.append(service)
        if not include_deleted:
            where.append("deleted_at IS NULL")
        rows = await self._rows(
            f"SELECT * FROM backups WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT ?", [*args, limit]
        )
        return [self._backup(row) for row in rows]

    async def mark_backup_deleted(self, backup_id: int, at: datetime) -> None:
        await self._execute("UPDATE backups SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL", [self._enc(at), backup_id])

    def _backup(self, row: dict[str, Any]) -> BackupRecord:
        return BackupRecord(
            id=int(row["id"]), service=row["service"], kind=row["kind"], path=Path(row["path"]), size=int(row["size"]),
            sha256=row["sha256"], label=BackupLabel(row["label"]),
            created_at=self._at(row["created_at"]),
            verified_at=self._dec(row["verified_at"]), run_id=row["run_id"], deleted_at=self._dec(row["deleted_at"]),
        )

    # --- deploy history (bot.executors.base.DeployHistory) ------------------------------------------

    async def record_deploy(self, service: str, image: str, digest: str | None, seen_at: datetime) -> None:
        await self._execute(
            "INSERT INTO deploy_history (service, image, digest, first_seen) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (service, image) DO UPDATE SET digest = COALESCE(excluded.digest, deploy_history.digest)",
            [service, image, digest, self._enc(seen_at)],
        )

    async def deploy_history(self, service: str, limit: int = 20) -> list[Revision]:
        rows = await self._rows(
            "SELECT * FROM deploy_history WHERE service = ? ORDER BY first_seen DESC LIMIT ?", [service, limit]
        )
        return [Revision(id=r["image"], image=r["image"], digest=r["digest"], created_at=self._dec(r["first_seen"]))
                for r in rows]

    # --- leases ---------------------------------------------------------------------------------------

    async def acquire_lease(self, name: str, owner: str, ttl: float, now: datetime) -> int | None:
        """Take `name` if it is free or expired; returns the new fencing token (it only ever grows)."""
        [rows] = await self._atomic([(
            ("INSERT INTO leases (name, owner, token, expires_at) VALUES (?, ?, 1, ?) "
             "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, token = leases.token + 1, "
             "expires_at = excluded.expires_at WHERE leases.expires_at <= ? RETURNING token"),
            [name, owner, self._enc(now + timedelta(seconds=ttl)), self._enc(utc(now))],
        )])
        return int(rows[0]["token"]) if rows else None

    async def renew_lease(self, name: str, owner: str, token: int, ttl: float, now: datetime) -> bool:
        changed = await self._execute(
            "UPDATE leases SET expires_at = ? WHERE name = ? AND owner = ? AND token = ? AND expires_at > ?",
            [self._enc(now + timedelta(seconds=ttl)), name, owner, token, self._enc(utc(now))],
        )
        return changed == 1

    async def release_lease(self, name: str, owner: str, token: int) -> None:
        # Expire rather than delete: the row keeps the token, so the next holder's token is still larger.
        await self._execute(
            "UPDATE leases SET expires_at = ? WHERE name = ? AND owner = ? AND token = ?",
            [self._enc(_EPOCH), name, owner, token],
        )


def _planned(run_id: int, row: Any) -> PlannedStep:
    kind = str(row["kind"])
    if kind not in REGISTRY:  # a kind renamed or removed since the run was planned: it cannot run as approved
        raise UnknownStepKind(run_id, int(row["position"]), kind)
    return PlannedStep(kind=kind, service=row["service"], args=json.loads(row["args"]), title=row["title"],
                       undo=row["undo_words"], on_failure=row["on_failure"], timeout=float(row["timeout"]),
                       retries=int(row["retries"]), probe=row["probe"])
