"""The `manual` kind: a step a person does. Its instructions (mrkdwn) show in the run's message with Done / Skip /
Failed; the step waits for the first press (stored by `bot.runs.manual_answers`), reminding once in the run's thread.

Not responsible for the buttons or the words (`bot.views.manual_steps`), nor for recording who pressed
(`bot.runs.manual_answers`). The run waits as for any step: its lease and heartbeat go on (`bot.runs.execution`),
a crash while it waits leaves the run interrupted, and Resume asks again (the step runs again).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import Field

from bot.executors.base import Effect, ExecutorError
from bot.runs.models import ActionRun, ActionState, Answer, StepState
from bot.runs.steps.base import (
    Note,
    PlannedStep,
    StepCancelled,
    StepDeps,
    StepKind,
    StepSkipped,
    Template,
    Traits,
    UndoBook,
    _Step,
    refused,
    register,
)
from bot.views.manual_steps import MANUAL, reminder_message

log = logging.getLogger(__name__)
POLL_SECONDS = 2.0  # how often the waiting step reads the store: a press may land on another replica (one here
# wakes it at once)


class ManualStep(_Step):
    """A step a person does: its instructions show in the run's message with Done, Skip and Failed, and the run
    waits for the first press (by any person in the channel, not a bot; who pressed what and when goes to the audit
    log and, in an incident's channel, to its timeline). Done: the step succeeded. Skip: it is marked skipped and
    the run goes on (a Resume asks again). Failed: the run stops with the step's effect unknown, and people choose
    Resume, Roll back or Mark done, since only they know what it left. Cancel works while it waits. Nothing undoes
    it."""

    kind: Literal["manual"]
    instructions: Template = Field(min_length=1, max_length=2800,
                                   description="what the person does, as Slack mrkdwn; shown with Done / Skip / Failed")
    remind_after_minutes: float | None = Field(
        default=15, gt=0, le=24 * 60,
        description="post one reminder in the run's thread when no one has answered after this long; null: none")
    read_only: bool = Field(default=False, description=(
        "the person only looks (a smoke test, a dashboard, a checklist item that changes nothing): the step counts "
        "as changing nothing, so check-config's no-undo warning leaves it out, and Failed (or no answer in time) "
        "stops the run with the step's target untouched rather than unknown"))
    timeout: float = Field(default=3600, gt=0, le=6 * 3600,
                           description="seconds to wait for a person; then the step's effect is unknown and the run "
                                       "stops for people (at most 6 hours)")


@runtime_checkable
class Runs(Protocol):
    """The store as the waiting step reads it: the run with its step rows (the answer, a Cancel)."""

    async def get_action(self, run_id: int) -> ActionRun | None: ...


async def _describe(deps: StepDeps, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    first = str(args["instructions"]).strip().splitlines()[0]
    return f"By hand: {first[:120]}", ""


async def _perform(deps: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note) -> str:
    runs = deps.store
    if not isinstance(runs, Runs):
        raise refused("this store cannot keep a person's answer")
    remind = step.args.get("remind_after_minutes")
    remind_at = None if remind is None else deps.clock.now() + timedelta(minutes=float(remind))
    await note("waiting for a person: Done, Skip or Failed")
    while True:
        fresh = await runs.get_action(run.id or 0)
        if fresh is None or fresh.state is not ActionState.RUNNING:
            raise refused("the run is no longer running here; no one's answer was taken")
        position = _position(fresh, step)
        answer = fresh.steps[position].answer
        if answer is not None:
            if answer.answer is Answer.DONE:
                return "done by a person"
            if answer.answer is Answer.SKIPPED:
                raise StepSkipped("skipped by a person")
            if step.args.get("read_only"):  # they only looked: nothing was changed by this step
                raise ExecutorError("a person said it failed", effect=Effect.UNTOUCHED,
                                    state="unchanged by this step: a person looked and said it failed")
            # A person says it failed: what it left is theirs to judge, not opsbot's (never undone or retried).
            raise ExecutorError("a person said it failed", effect=Effect.UNKNOWN,
                                state="unknown: a person said the step failed; look before going on")
        if fresh.cancel_requested_by:
            raise StepCancelled("cancelled while waiting for a person")
        if remind_at is not None and deps.clock.now() >= remind_at:
            remind_at = None  # one reminder: a second ping is noise; the run's message still asks
            await _remind(deps, fresh, position, step.title)
        await deps.wakeups.wait(run.id or 0, deps.clock, POLL_SECONDS)


def _position(run: ActionRun, step: PlannedStep) -> int:
    """The row of this step: the running one that is it (a plan may hold the same manual step twice)."""
    return next(index for index, planned in enumerate(run.plan)
                if planned == step and index < len(run.steps) and run.steps[index].state is StepState.RUNNING)


async def _remind(deps: StepDeps, run: ActionRun, position: int, title: str) -> None:
    if not run.channel_id:
        return
    try:
        await deps.chat.post(run.channel_id, reminder_message(run, position, title), thread_ts=run.message_ts)
    except Exception:  # a reminder that could not be posted must not end the step; the run's message still asks
        log.exception("could not remind about step %s of run %s", position + 1, run.id)


_DOES = Traits(changes=True, undo=None, cut_short=Effect.UNKNOWN, on_failure="stop")
_LOOKS = Traits(changes=False, undo=None, cut_short=Effect.UNTOUCHED, on_failure="stop")


def _traits(args: Mapping[str, Any]) -> Traits:
    return _LOOKS if args.get("read_only") else _DOES


KIND = register(StepKind(MANUAL, ManualStep, _DOES, _describe, _perform, escape_values=True, step_traits=_traits))
