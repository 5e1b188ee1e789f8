"""The narrow storage ports the run engine and the run flows use: runs with their steps and decisions, the backup
ledger, leases. Each SQL backend satisfies them structurally; `bot.runs.memory_store` is the in-memory one.

Signatures only, mirroring `bot.store.base.ActionStore`; not responsible for how a backend makes each
compare-and-set atomic, nor for incidents, schedules, audit or deploy history (the rest of `Store`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from bot.runs.models import ActionRun, ActionState, ActionStep, ApprovalDecision, BackupRecord, StepAnswer

# The columns `RunStore.transition_action` may set beside the state; any other name raises ValueError, in every
# backend, so a misspelt field fails loudly instead of being dropped.
SETTABLE_RUN_FIELDS = frozenset({
    "reason", "lease_owner", "heartbeat_at", "channel_id", "message_ts", "started_at", "finished_at", "outcome",
    "target_state", "expires_at", "cancel_requested_by", "outcome_data",
})


class RunStore(Protocol):
    """Runs, their steps and approval decisions. Every state change is a compare-and-set: of two racing calls,
    exactly one returns True; a move the table in `bot.runs.states` refuses raises `IllegalTransition`."""

    async def create_action(self, run: ActionRun) -> int:
        """Store a new run with its steps; its id. Progress fields (started, finished, outcome, cancel, follow-up)
        start empty whatever `run` says: they change only through the calls below."""
    async def get_action(self, run_id: int) -> ActionRun | None: ...
    async def actions(self, *, service: str | None = None, states: Iterable[ActionState] | None = None, limit: int = 20,
                      since: datetime | None = None) -> list[ActionRun]:
        """Newest first; with `since`, only runs asked for or finished at or after it."""
    async def transition_action(self, run_id: int, to: ActionState, *, expect: Iterable[ActionState], owner: str | None = None,
                                unexpired_at: datetime | None = None, **fields: Any) -> bool:
        """Move to `to` from one of `expect` (held by `owner`, not expired at `unexpired_at`, when given), setting
        `fields` (names from SETTABLE_RUN_FIELDS); True only for the one call that made the change."""
    async def heartbeat(self, run_id: int, owner: str, at: datetime) -> bool:
        """The running replica says it is alive; False when the run is not running or no longer its own."""
    async def stale_actions(self, before: datetime) -> list[ActionRun]:
        """Approved or running runs with no heartbeat at or after `before`, by id."""
    async def set_action_message(self, run_id: int, channel_id: str, message_ts: str) -> None: ...
    async def save_step(self, run_id: int, step: ActionStep) -> None:
        """Insert or replace the step at `step.position`; replacing only from a state the step table lets move to
        `step.state`, else `IllegalTransition` and the stored step is kept."""
    async def answer_step(self, run_id: int, position: int, answer: StepAnswer) -> bool:
        """Keep a person's answer to the step at `position` (a `manual` step): True only for the first answer to a
        running step of a running run; saving the step never changes it."""
    async def claim_follow_up(self, run_id: int, follow_up_id: int) -> bool:
        """True when `follow_up_id` now resumes or rolls back `run_id` (no live follow-up had it)."""
    async def request_cancel(self, run_id: int, user: str) -> bool:
        """First Cancel on an approved or running run: True; later ones, or a run in any other state: False."""
    async def expired_actions(self, now: datetime) -> list[ActionRun]:
        """Drafts and pending requests whose expiry is at or before `now`, by id."""
    async def add_decision(self, decision: ApprovalDecision) -> bool:
        """False when this person already decided on this run."""
    async def decisions(self, run_id: int) -> list[ApprovalDecision]:
        """In time order (then by user)."""


class BackupLedger(Protocol):
    """The backups opsbot wrote: one live record per file."""

    async def add_backup(self, record: BackupRecord) -> int:
        """The new record's id; for a file already recorded and not deleted, that record's id (nothing is added)."""
    async def get_backup(self, backup_id: int) -> BackupRecord | None: ...
    async def backup_of_run(self, run_id: int) -> BackupRecord | None:
        """The backup a backup run wrote (not a restore's safety backup), if it wrote one."""
    async def backups(self, service: str | None = None, *, include_deleted: bool = False,
                      limit: int = 50) -> list[BackupRecord]:
        """Newest first; `service=None` lists every service's."""
    async def mark_backup_deleted(self, backup_id: int, at: datetime) -> None:
        """Remember the file is gone; a second call keeps the first time."""


class LeaseStore(Protocol):
    """Named leases with fencing tokens that only grow (`bot.locks.StoreLocks` builds its locks on them)."""

    async def acquire_lease(self, name: str, owner: str, ttl: float, now: datetime) -> int | None:
        """The fencing token when `name` was free or expired, else None."""
    async def renew_lease(self, name: str, owner: str, token: int, ttl: float, now: datetime) -> bool:
        """Extend a lease still held (same owner and token, not expired); False when it was lost."""
    async def release_lease(self, name: str, owner: str, token: int) -> None:
        """Let it go now; the token is kept, so the next holder's is larger."""
