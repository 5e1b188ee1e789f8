"""How a run ended, as a value: which step, why (plain text), its effect, what was undone, failed to undo or stays.

The engine and the run flows build these; `bot.views.runs` turns them into words. Not responsible for deciding
what to do after a failure (`bot.runs.effects`, `bot.runs.engine`) nor for any markup.
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


_FINAL = {Ending.FINISHED: ActionState.SUCCEEDED, Ending.UNDONE: ActionState.SUCCEEDED,
          Ending.CANCELLED: ActionState.CANCELLED, Ending.INTERRUPTED: ActionState.INTERRUPTED}


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
class RunOutcome:
    ending: Ending
    services: tuple[str, ...]
    step: StepRef | None = None  # the step it failed on, or was cancelled before
    why: str = ""  # why that step failed / why the run was interrupted or broke, plain text
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

    @property
    def final(self) -> ActionState:
        """The run's end state for this outcome."""
        return _FINAL.get(self.ending, ActionState.FAILED)
