"""The records of the actions domain: runs with their state machine, steps, approval decisions, backups."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.executors.base import Effect

if TYPE_CHECKING:
    from bot.runs.outcomes import RunOutcome


class ActionKind(enum.Enum):
    RESTART = "restart"
    BACKUP = "backup"
    RESTORE = "restore"
    ROLLBACK = "rollback"
    RUNBOOK = "runbook"  # a catalog runbook: `service` is the first it touches, `plan` holds the approved steps


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


class Answer(enum.Enum):
    """What a person pressed on a `manual` step (bot.runs.steps.manual)."""

    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class StepAnswer:
    answer: Answer
    by: str  # the Slack user who pressed it
    at: datetime


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
    # A `manual` step: a person's answer, the first press wins. Written only by `RunStore.answer_step`: saving the
    # step never changes it, and a new run (a Resume) starts without it.
    answer: StepAnswer | None = None

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
    # The typed steps the approvers saw and the engine runs (a Roll back's too: the plan it undoes), stored as the
    # step rows' plan columns: `plan[i]` is the step of row i; rows past the plan are undos a Roll back appended.
    plan: tuple[PlannedStep, ...] = ()
    outcome_data: RunOutcome | None = None  # how it ended, as data (None: not ended, or ended before it was kept)
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
    def services(self) -> tuple[str, ...]:
        """Every service the run holds the lock of: a runbook's services, or the action's one."""
        return tuple(self.params.get("services") or (self.service,))

    @property
    def requester(self) -> str:
        """Who asked, as Slack shows it: a mention, or the schedule for runs the catalog's schedule started."""
        return "the schedule" if self.requested_by == SCHEDULER else f"<@{self.requested_by}>"


class UnknownStepKind(LookupError):
    """A stored plan step of a kind no step module registers (renamed or removed since the run was planned): the
    run cannot be read, let alone run as approved."""

    def __init__(self, run_id: int, position: int, kind: str) -> None:
        self.run_id, self.position, self.kind = run_id, position, kind
        super().__init__(f"run {run_id}: step {position + 1} is of kind {kind!r}, which no step module registers")


def rows_to_store(run: ActionRun) -> list[tuple[ActionStep, PlannedStep | None]]:
    """The rows a new run is stored as, in order, each with the plan step it carries: the row at position i is
    plan step i and bears its title (a plan step given no row gets a waiting one); rows past the plan carry none
    (the undo rows a follow-up copies from the run it rolls back). Every store writes a run's plan this way."""
    plan = run.plan
    given = [(replace(step, title=plan[step.position].title) if step.position < len(plan) else step,
              plan[step.position] if step.position < len(plan) else None) for step in run.steps]
    covered = {step.position for step in run.steps}
    return given + [(ActionStep(index, planned.title), planned) for index, planned in enumerate(plan)
                    if index not in covered]


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
