"""The records of the actions domain: runs with their state machine, steps, approval decisions, backups."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.executors.base import Effect


class ActionKind(enum.Enum):
    RESTART = "restart"
    BACKUP = "backup"
    RESTORE = "restore"
    ROLLBACK = "rollback"
    RUNBOOK = "runbook"  # a catalog runbook: `service` is the first it touches, params hold the approved plan


class ActionState(enum.Enum):
    """draft → pending → approved → running → succeeded | failed; draft → approved when no approval is
    needed; pending → denied | expired; draft | pending → cancelled; approved | running → interrupted;
    approved | running → handed_over (a stopping replica, at a step boundary) → running (another replica).
    The store applies each move as a compare-and-set, so a second click changes nothing."""

    DRAFT = "draft"  # a plan shown to the requester, not yet requested
    PENDING = "pending"  # waiting for approvals
    APPROVED = "approved"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DENIED = "denied"
    EXPIRED = "expired"
    INTERRUPTED = "interrupted"  # the bot stopped while it ran
    CANCELLED = "cancelled"  # the requester dropped the draft
    HANDED_OVER = "handed_over"  # a stopping replica left it at a step boundary; the next replica up goes on

    @property
    def final(self) -> bool:
        return self in _FINAL


_FINAL = {ActionState.SUCCEEDED, ActionState.FAILED, ActionState.DENIED, ActionState.EXPIRED,
          ActionState.INTERRUPTED, ActionState.CANCELLED}


class StepState(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # a runbook step not run (after a failure, a cancel, or `on_failure: continue`)
    UNDONE = "undone"  # a runbook step whose change was reversed by its undo


@dataclass(frozen=True)
class ActionStep:
    position: int
    title: str
    state: StepState = StepState.WAITING
    detail: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    undo: dict[str, Any] | None = None  # runbook steps: what reverses the change, captured before making it
    effect: Effect | None = None  # a failed step: what it did to its target (None: not failed, or not recorded)

    @property
    def seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


@dataclass(frozen=True)
class PlannedStep:
    """One step with its arguments resolved: what the approvers saw, and exactly what runs."""

    kind: str
    service: str | None
    args: dict[str, Any]
    title: str
    undo: str | None  # what reverses it, in words; None: nothing does
    on_failure: str
    timeout: float
    retries: int
    probe: str = ""  # what a read-only look found while planning ("runs app:1.0 now")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, data: dict[str, Any]) -> PlannedStep:
        return cls(**data)


SCHEDULER = "opsbot:schedule"  # requested_by of the runs the scheduler starts (catalog schedules, no person)


@dataclass(frozen=True)
class ActionRun:
    service: str
    kind: ActionKind
    environment: str
    target: str  # what will be touched, in words
    requested_by: str
    created_at: datetime
    expires_at: datetime
    state: ActionState = ActionState.DRAFT
    params: dict[str, Any] = field(default_factory=dict)
    approvals_needed: int = 0
    approvers: tuple[str, ...] = ()  # user and group IDs allowed to approve; empty: anyone but the requester
    reason: str = ""
    channel_id: str | None = None
    message_ts: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    outcome: str = ""  # the summary, or what failed
    target_state: str = ""  # after a failure: the state the target is in
    steps: tuple[ActionStep, ...] = ()
    cancel_requested_by: str | None = None
    followed_by: int | None = None  # an interrupted runbook run: the run that resumes or rolls it back
    audit_id: int | None = None  # the audit entry of the request that made it (written at creation only)
    id: int | None = None

    @property
    def label(self) -> str:
        if self.kind is ActionKind.RUNBOOK:
            return f"runbook {self.params.get('runbook', '?')}"
        return f"{self.kind.value} {self.service}"

    @property
    def plan(self) -> tuple[PlannedStep, ...]:
        """The typed steps the approvers saw and the engine runs (a Roll back's too: the plan it undoes)."""
        return tuple(PlannedStep.of(data) for data in self.params.get("plan") or ())

    @property
    def services(self) -> tuple[str, ...]:
        """Every service the run holds the lock of: a runbook's services, or the action's one."""
        return tuple(self.params.get("services") or (self.service,))

    @property
    def requester(self) -> str:
        """Who asked, as Slack shows it: a mention, or the schedule for runs the catalog's schedule started."""
        return "the schedule" if self.requested_by == SCHEDULER else f"<@{self.requested_by}>"


class Decision(enum.Enum):
    APPROVE = "approve"
    DENY = "deny"


@dataclass(frozen=True)
class ApprovalDecision:
    run_id: int
    user_id: str
    decision: Decision
    at: datetime
    reason: str = ""


class BackupLabel(enum.Enum):
    MANUAL = "manual"
    SAFETY = "safety"  # taken automatically before a restore
    SCHEDULED = "scheduled"


@dataclass(frozen=True)
class BackupRecord:
    service: str
    kind: str  # the backup target's type: postgres | mysql | redis | directory
    path: Path
    size: int
    sha256: str
    created_at: datetime
    label: BackupLabel = BackupLabel.MANUAL
    verified_at: datetime | None = None
    run_id: int | None = None
    deleted_at: datetime | None = None
    id: int | None = None
