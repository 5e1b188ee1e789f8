"""How a run ended, as a value: the engine's endings (which step, why in plain text, its effect, what was undone,
failed to undo or stays) and the run flows' (refused, denied, expired, withdrawn, recovered, handed over).

The engine and the run flows build these and store them (`ActionRun.outcome_data`); `bot.views.run_words` is the one
place they become words. Not responsible for deciding what to do after a failure (`bot.runs.effects`,
`bot.runs.engine`) nor for any markup.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bot.executors.base import Effect
from bot.runs.models import ActionState


class Ending(enum.Enum):
    FINISHED = "finished"  # every step ran (a step that may fail, `on_failure: continue`, may have failed)
    ROLLED_BACK = "rolled_back"  # a step failed; the engine undid what ran before it (and its own change)
    STOPPED = "stopped"  # a step failed and the run stopped there, nothing undone: people may Resume or Roll back
    UNKNOWN = "unknown"  # a step's effect is unknown: nothing tried again or undone; people decide
    CANCELLED = "cancelled"  # Cancel was pressed: stopped before a step, what ran was undone
    UNDONE = "undone"  # a Roll back asked for by people finished
    UNDO_FAILED = "undo_failed"  # a Roll back asked for by people did not finish
    INTERRUPTED = "interrupted"  # opsbot stopped, or lost its lease, while the run ran
    BROKE = "broke"  # opsbot itself failed (a bug, the store away): `reference` finds it in the logs
    HALTED = "halted"  # opsbot refused to go on (an OpsbotError: the run is no longer this replica's): `why`
    # Endings around the engine, of the run flows: the run never started, or left this replica.
    BUSY = "busy"  # refused before starting: another run (`holder`, when known) holds the service `held`
    UNREACHABLE = "unreachable"  # refused before starting: a service's lease could not be taken (`why`)
    RECOVERED = "recovered"  # its replica fell silent, so recovery marked it interrupted (`started`: it was running)
    HANDED_OVER = "handed_over"  # this replica is stopping: the next one goes on before `step` (None: at the start)
    DENIED = "denied"  # `denied_by` denied the request (`why`: their reason, plain text, may be empty)
    EXPIRED = "expired"  # nobody approved the request in time; nothing ran
    PLAN_EXPIRED = "plan_expired"  # the requester did not send the plan in time; nothing ran
    WITHDRAWN = "withdrawn"  # the request could not be posted in its channel, so nobody could approve it
    SUPERSEDED = "superseded"  # a follow-up's plan, not needed: another follow-up has the run
    DROPPED = "dropped"  # the requester dropped the plan (Cancel on it) before sending it


_FINAL = {Ending.FINISHED: ActionState.SUCCEEDED, Ending.UNDONE: ActionState.SUCCEEDED,
          Ending.CANCELLED: ActionState.CANCELLED, Ending.INTERRUPTED: ActionState.INTERRUPTED,
          Ending.RECOVERED: ActionState.INTERRUPTED, Ending.HANDED_OVER: ActionState.HANDED_OVER,
          Ending.DENIED: ActionState.DENIED, Ending.EXPIRED: ActionState.EXPIRED,
          Ending.PLAN_EXPIRED: ActionState.EXPIRED, Ending.WITHDRAWN: ActionState.CANCELLED,
          Ending.SUPERSEDED: ActionState.CANCELLED, Ending.DROPPED: ActionState.CANCELLED}


@dataclass(frozen=True)
class StepRef:
    index: int  # 0-based position in the plan
    title: str


@dataclass(frozen=True)
class UndoFailure:
    step: StepRef
    why: str


@dataclass(frozen=True)
class PassedOver:
    """A step whose failure the plan lets the run go on after (`on_failure: continue`)."""

    step: StepRef
    why: str
    effect: Effect


@dataclass(frozen=True)
class Holder:
    """The run that held a service another one needed."""

    id: int
    label: str  # `restart api`, `runbook deploy-api`: plain text
    requested_by: str  # a Slack user id, or SCHEDULER


@dataclass(frozen=True)
class RunOutcome:
    ending: Ending
    services: tuple[str, ...]
    step: StepRef | None = None  # the step it failed on, or was cancelled before
    why: str = ""  # why that step failed, the run broke or halted, a lease could not be taken; a denial's reason
    state: str = ""  # the failed step's own words for what it left behind, plain text
    effect: Effect | None = None  # the failed step's effect on its target
    undone: tuple[StepRef, ...] = ()
    undo_failed: tuple[UndoFailure, ...] = ()
    stays: tuple[StepRef, ...] = ()  # changed, and no undo exists
    still_changed: tuple[StepRef, ...] = ()  # stopped or unknown: earlier changes left in place
    cancelled_by: str | None = None
    retrying: bool = False  # cancelled before another try of `step` (rather than before its first)
    late_cancel_by: str | None = None  # a Cancel that came during the last step
    passed_over: tuple[PassedOver, ...] = ()
    details: tuple[str, ...] = ()  # finished: each step's own result, in order
    reference: str = ""  # broke: the log reference
    # The flows' endings (`step` above is also where a run was handed over):
    lease_lost: bool = False  # interrupted: because opsbot lost its lease on a service (else: opsbot was stopped)
    held: str = ""  # busy: the service another run holds
    holder: Holder | None = None  # busy: the run holding it (None: a lease with no run this store knows)
    started: bool = False  # recovered: it was running (else: approved, not yet started)
    denied_by: str | None = None  # denied: who

    @property
    def final(self) -> ActionState:
        """The run's end state for this outcome."""
        return _FINAL.get(self.ending, ActionState.FAILED)
