"""The store's contract: what the domain may ask of storage, whatever the backend.

Backends: `bot.store.sqlite` (embedded default) and `bot.store.postgres`. Both pass tests/test_store.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from importlib import resources
from typing import Any, Protocol

from bot.actions.models import ActionRun, ActionState, ActionStep, ApprovalDecision, BackupRecord
from bot.audit import AuditEntry
from bot.executors.base import Revision
from bot.health import HealthRun


class ActionStore(Protocol):
    """Action runs, approvals, backups, deploy history and leases (bot/store/actions_sql.py implements it)."""

    async def create_action(self, run: ActionRun) -> int: ...
    async def get_action(self, run_id: int) -> ActionRun | None: ...
    async def actions(self, *, service: str | None = None, states: Iterable[ActionState] | None = None, limit: int = 20,
                      since: datetime | None = None) -> list[ActionRun]: ...
    async def transition_action(self, run_id: int, to: ActionState, *, expect: Iterable[ActionState], owner: str | None = None,
                                unexpired_at: datetime | None = None, **fields: Any) -> bool:
        """Compare-and-set: True only for the one call that made the change."""
    async def heartbeat(self, run_id: int, owner: str, at: datetime) -> bool: ...
    async def stale_actions(self, before: datetime) -> list[ActionRun]: ...
    async def set_action_message(self, run_id: int, channel_id: str, message_ts: str) -> None: ...
    async def save_step(self, run_id: int, step: ActionStep) -> None: ...
    async def claim_follow_up(self, run_id: int, follow_up_id: int) -> bool:
        """True when `follow_up_id` now resumes or rolls back `run_id` (no live follow-up had it)."""
    async def request_cancel(self, run_id: int, user: str) -> bool:
        """First Cancel on an approved or running run: True; later ones, or a finished run: False."""
    async def expired_actions(self, now: datetime) -> list[ActionRun]: ...
    async def add_decision(self, decision: ApprovalDecision) -> bool:
        """False when this person already decided on this run."""
    async def decisions(self, run_id: int) -> list[ApprovalDecision]: ...
    async def add_backup(self, record: BackupRecord) -> int: ...
    async def get_backup(self, backup_id: int) -> BackupRecord | None: ...
    async def backup_of_run(self, run_id: int) -> BackupRecord | None:
        """The backup a backup run wrote (not a restore's safety backup), if it wrote one."""
    async def backups(self, service: str | None = None, *, include_deleted: bool = False, limit: int = 50) -> list[BackupRecord]: ...
    async def mark_backup_deleted(self, backup_id: int, at: datetime) -> None: ...
    async def record_deploy(self, service: str, image: str, digest: str | None, seen_at: datetime) -> None: ...
    async def deploy_history(self, service: str, limit: int = 20) -> list[Revision]: ...
    async def acquire_lease(self, name: str, owner: str, ttl: float, now: datetime) -> int | None:
        """The fencing token when `name` was free or expired, else None."""
    async def renew_lease(self, name: str, owner: str, token: int, ttl: float, now: datetime) -> bool: ...
    async def release_lease(self, name: str, owner: str, token: int) -> None: ...
    # Incidents, timelines and follow-ups: bot/store/incidents_sql.py (create_incident, get_incident,
    # incident_by_channel, incidents, update_incident, delete_incident, replace_roles, add_entry, entries, …).
    # The scheduler and the digests' windows: bot/store/schedule_sql.py (register_job, record_occurrences,
    # open_occurrences, claim_occurrence, finish_occurrence, begin_post, set_posted, prune, check_tallies, …).


class Store(ActionStore, Protocol):
    async def open(self) -> None:
        """Connect (pools, files). Called once from the app's start-up hook."""

    async def close(self) -> None: ...

    async def migrate(self) -> list[int]:
        """Apply pending migrations; returns the versions applied now (empty when up to date)."""

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers a query."""

    async def save_health_run(self, run: HealthRun) -> int:
        """Store a run with its results; returns the run's id."""

    async def get_health_run(self, run_id: int) -> HealthRun | None: ...

    async def health_runs_since(self, since: datetime, limit: int = 500) -> list[HealthRun]:
        """Runs started at or after `since`, newest first, with their results."""

    async def record_audit(self, entry: AuditEntry) -> int: ...

    async def audit_entries(self, *, since: datetime | None = None, limit: int = 100) -> list[AuditEntry]:
        """Newest first."""

    async def claim(self, key: str, at: datetime) -> bool:
        """Record an idempotency key; True the first time it is claimed, False ever after."""


def migrations(backend: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) for a backend, in order, from bot/store/migrations/<backend>/NNNN_name.sql."""
    folder = resources.files("bot.store") / "migrations" / backend
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append((int(number), rest.removesuffix(".sql"), entry.read_text(encoding="utf-8")))
    return sorted(found)
