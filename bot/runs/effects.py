"""What the runbook engine does with a failed step, decided by its typed effect on the target: retry, undo, or stop
and leave it to people. Never by the wording of the step's state.

A table and two pure rules, so the engine and the Roll back preview decide alike; not responsible for running
anything (`bot.runs.engine`) or for the words a person reads (`bot.views.effects`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from bot.executors.base import Effect
from bot.runs.models import ActionRun, ActionState, ActionStep, StepState


@dataclass(frozen=True)
class AfterFailure:
    retry: bool  # another try may run (when the step has tries left)
    undo_own: bool  # rolling back puts back this step's own change too
    automatic: bool  # the engine may go on by itself (roll back, or `on_failure: continue`); else people decide


AFTER_FAILURE: Mapping[Effect, AfterFailure] = MappingProxyType({
    # Nothing changed: trying again is safe, and its own undo would put back what others wrote since (a safety
    # backup restored over a database the failed restore never touched).
    Effect.UNTOUCHED: AfterFailure(retry=True, undo_own=False, automatic=True),
    Effect.CHANGED: AfterFailure(retry=True, undo_own=True, automatic=True),
    # Nobody knows what it did: neither trying again nor undoing is safe without a person looking first.
    Effect.UNKNOWN: AfterFailure(retry=False, undo_own=False, automatic=False),
})

_ORDER = (Effect.UNTOUCHED, Effect.CHANGED, Effect.UNKNOWN)


def combined(effects: Iterable[Effect]) -> Effect:
    """The effect of several tries of one step: unknown over changed over untouched (a try that changed something
    is not taken back by a later one refused up front)."""
    return max(effects, key=_ORDER.index, default=Effect.UNTOUCHED)


def needs_undo(row: ActionStep, *, chosen_by_people: bool) -> bool:
    """Whether rolling back puts back this row's step (if it has an undo and captured what the undo needs).

    A step that succeeded changed its target; one that failed is undone only when its effect says it changed
    something. A step whose effect is unknown — it failed so, was cut short while running, or failed before
    effects were recorded — is put back only when people chose Roll back, never by the engine on its own."""
    if row.state is StepState.SUCCEEDED:
        return True
    if row.state is StepState.FAILED and row.effect is not None and row.effect is not Effect.UNKNOWN:
        return AFTER_FAILURE[row.effect].undo_own
    return chosen_by_people and row.state in (StepState.FAILED, StepState.RUNNING)


def unknown_step(run: ActionRun) -> int | None:
    """The step of a run that stopped with its effect unknown — failed so, or still running when opsbot stopped —
    for people to decide on (Resume, Roll back, or mark it done after checking by hand); None otherwise."""
    if run.params.get("mode") == "rollback":
        return None
    rows = run.steps[: len(run.plan)]
    if run.state is ActionState.FAILED:  # the step it stopped on is the last that failed (earlier ones went on)
        failed = [i for i, r in enumerate(rows) if r.state is StepState.FAILED]
        return failed[-1] if failed and rows[failed[-1]].effect is Effect.UNKNOWN else None
    if run.state is ActionState.INTERRUPTED:
        running = [i for i, r in enumerate(rows) if r.state is StepState.RUNNING]
        return running[-1] if running else None
    return None


def stopped_step(run: ActionRun) -> int | None:
    """The step a failed run stopped on without undoing anything (its plan says `stop`: a built-in action's health
    check that fails after a restart, roll back or restore), when that step or an earlier one left a change people
    may want put back; None otherwise."""
    plan = run.plan
    if run.state is not ActionState.FAILED or run.params.get("mode") == "rollback" or len(run.steps) > len(plan):
        return None
    rows = run.steps[: len(plan)]
    if any(r.state is StepState.UNDONE for r in rows):
        return None
    failed = [i for i, r in enumerate(rows) if r.state is StepState.FAILED]
    if not failed or plan[failed[-1]].on_failure != "stop" or rows[failed[-1]].effect is Effect.UNKNOWN:
        return None
    index = failed[-1]
    changed = rows[index].effect is Effect.CHANGED or any(r.state is StepState.SUCCEEDED and r.undo
                                                          for r in rows[:index])
    return index if changed else None


def awaits_people(run: ActionRun) -> bool:
    """An interrupted run, or one stopped by a step of unknown effect or by a step whose plan says stop after a
    change: only a person's follow-up goes on from it."""
    return run.state is ActionState.INTERRUPTED or (run.state is ActionState.FAILED and (
        unknown_step(run) is not None or stopped_step(run) is not None))
