"""The one run engine: a run's planned steps in order, each stored before it is shown, undone in reverse on failure.

Runs runbooks and built-in actions alike (both are plans), on the narrow ports of `bot.runs.deps.EngineDeps`.
Called by the run flow once the run holds every service's lease; not responsible for approvals, leases, heartbeats
or the final state row (`bot.runs.service`), nor for words (it ends with a typed `RunOutcome`;
`bot.views.run_words` says it).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from bot.errors import OpsbotError
from bot.executors.base import Effect, ExecutorError
from bot.runs import steps
from bot.runs.deps import EngineDeps
from bot.runs.effects import AFTER_FAILURE, combined, needs_undo
from bot.runs.models import ActionRun, ActionState, ActionStep, StepState
from bot.runs.outcomes import Ending, PassedOver, RunOutcome, StepRef, UndoFailure
from bot.runs.steps import PlannedStep, UndoBook
from bot.runs.steps.base import StepCancelled, StepSkipped
from bot.views.run_words import note_cancelled, note_step_failed, note_undid, note_undo_failed
from bot.views.words import try_of

log = logging.getLogger(__name__)
RETRY_PAUSE = 3.0  # seconds between a failed attempt and the next
UNDO_TIMEOUT = 900.0
_CARRIED = {StepState.SUCCEEDED}  # a resumed run does not redo these (follow_up resets every other row)


class RunStopped(OpsbotError):
    """The run ended early: failed (and maybe rolled back), stopped for people, or cancelled. How is `outcome`."""

    def __init__(self, outcome: RunOutcome) -> None:
        self.outcome = outcome
        super().__init__(outcome.ending.value)

    @property
    def final(self) -> ActionState:
        return self.outcome.final


class HandedOver(Exception):  # a way a run leaves this replica, not a failure
    """This replica is stopping: step `step` was not started, and every step before it has its end stored."""

    def __init__(self, step: int) -> None:
        self.step = step
        super().__init__(f"handed over before step {step + 1}")


class NoLongerOurs(OpsbotError):
    """Another replica declared this run interrupted (this one looked dead): start nothing more."""


Show = Callable[[list[ActionStep]], Awaitable[None]]  # re-render the run's message with these step rows
# A note for the run's story (an incident's timeline, when it was started in one), and who it is by: None for the
# requester. The run flow decides where it goes; the engine only says what happened.
Note = Callable[[str, str | None], Awaitable[None]]


async def _no_note(text: str, actor: str | None) -> None:
    return None


class _Rows:
    """The run's step rows: every change is stored, then the message is re-rendered (best effort)."""

    def __init__(self, deps: EngineDeps, run: ActionRun, show: Show, note: Note) -> None:
        self._deps, self._run_id, self._show, self.note = deps, run.id or 0, show, note
        self.rows = list(run.steps)

    async def set(self, index: int, **changes: Any) -> None:
        self.rows[index] = replace(self.rows[index], **changes)
        await self._deps.store.save_step(self._run_id, self.rows[index])
        try:
            await self._show(list(self.rows))
        except Exception:
            log.exception("could not update the message of run %s", self._run_id)

    async def add(self, title: str) -> int:
        self.rows.append(ActionStep(len(self.rows), title))
        await self.set(len(self.rows) - 1)
        return len(self.rows) - 1


async def perform(deps: EngineDeps, run: ActionRun, show: Show, note: Note = _no_note) -> RunOutcome:
    """Run the approved plan (or, for a Roll back, only its undos); returns how a run that finished ended, and
    raises RunStopped with how it ended otherwise."""
    plan = list(run.plan)
    rows = _Rows(deps, run, show, note)
    if run.params.get("mode") == "rollback":
        undone, failed, stays = await _undo_all(deps, run, plan, rows, len(plan) - 1, chosen_by_people=True)
        ended = RunOutcome(Ending.UNDO_FAILED if failed else Ending.UNDONE, run.services, undone=undone,
                           undo_failed=failed, stays=stays)
        if failed:
            raise RunStopped(ended)
        return ended
    passed_over: list[PassedOver] = []
    for index, step in enumerate(plan):
        if rows.rows[index].state in _CARRIED:
            continue
        await _stop_if_cancelled(deps, run, plan, rows, index)
        if deps.handover.draining:
            # A step boundary: the steps before this one have their ends stored, so the next replica can go on
            # here without running any of them twice. A step already under way is let finish, never cut.
            raise HandedOver(index)
        try:
            with deps.tracer.span(f"step {step.kind}", _step_attributes(run, index, step)) as span:
                try:
                    detail = await _attempts(deps, run, plan, index, step, rows)
                except ExecutorError as exc:
                    span.set({"opsbot.step.outcome": StepState.FAILED.value, "opsbot.step.effect": exc.effect.value})
                    raise
                span.set({"opsbot.step.outcome": StepState.SUCCEEDED.value})
        except StepSkipped as skipped:
            await rows.set(index, state=StepState.SKIPPED, detail=str(skipped)[:500], finished_at=deps.clock.now())
            continue
        except StepCancelled as stopped:
            await rows.set(index, state=StepState.FAILED, detail=str(stopped)[:500], effect=Effect.UNTOUCHED,
                           finished_at=deps.clock.now())
            await _stop_if_cancelled(deps, run, plan, rows, index)  # raises: the Cancel is stored, never taken back
            raise AssertionError(f"step {index + 1} said Cancel was pressed; the run has no Cancel") from stopped
        except ExecutorError as exc:
            ref = StepRef(index, step.title)
            await rows.set(index, state=StepState.FAILED, detail=str(exc)[:500], effect=exc.effect,
                           finished_at=deps.clock.now())
            await rows.note(note_step_failed(ref, str(exc), exc.effect), None)
            after = AFTER_FAILURE[exc.effect]
            if step.on_failure == "continue":
                # The plan says this step's failure does not matter to what follows; an unknown effect is
                # still named, and the step is never undone by the engine (see `needs_undo`).
                passed_over.append(PassedOver(ref, str(exc), exc.effect))
                continue
            await _skip_from(rows, index + 1, len(plan))
            still = tuple(StepRef(i, plan[i].title) for i in range(index)
                          if rows.rows[i].state is StepState.SUCCEEDED and _changed(plan[i]))
            failed_at = RunOutcome(Ending.STOPPED, run.services, step=ref, why=str(exc), state=exc.state,
                                   effect=exc.effect, still_changed=still)
            if not after.automatic:
                raise RunStopped(replace(failed_at, ending=Ending.UNKNOWN)) from exc
            if step.on_failure == "stop":
                raise RunStopped(failed_at) from exc
            # Only a step whose effect is `changed` has anything of its own to undo (`AFTER_FAILURE`).
            undone, failed, stays = await _undo_all(deps, run, plan, rows, index if after.undo_own else index - 1,
                                                    chosen_by_people=False)
            raise RunStopped(replace(failed_at, ending=Ending.ROLLED_BACK, undone=undone, undo_failed=failed,
                                     stays=stays, still_changed=())) from exc
        await rows.set(index, state=StepState.SUCCEEDED, detail=detail[:500], effect=None, finished_at=deps.clock.now())
    late = (await _fresh(deps, run)).cancel_requested_by
    return RunOutcome(Ending.FINISHED, run.services, late_cancel_by=late, passed_over=tuple(passed_over),
                      details=tuple(row.detail for row in rows.rows[:len(plan)]))


async def _fresh(deps: EngineDeps, run: ActionRun) -> ActionRun:
    return await deps.store.get_action(run.id or 0) or run


async def _stop_if_cancelled(deps: EngineDeps, run: ActionRun, plan: list[PlannedStep], rows: _Rows, index: int) -> None:
    """Before step `index` (or its next try): stop if another replica declared the run interrupted, or if Cancel
    was pressed — then undo what ran and end the run cancelled."""
    fresh = await _fresh(deps, run)
    if fresh.state is not ActionState.RUNNING:
        raise NoLongerOurs(f"run #{run.id} is {fresh.state.value} now; step {index + 1} was not started")
    cancelled_by = fresh.cancel_requested_by
    if not cancelled_by:
        return
    retrying = rows.rows[index].state is StepState.RUNNING
    if retrying:
        await rows.set(index, state=StepState.FAILED, finished_at=deps.clock.now(),
                       detail=f"{rows.rows[index].detail}; cancelled before its next try"[:500])
    await _skip_from(rows, index, len(plan))
    undone, failed, stays = await _undo_all(deps, run, plan, rows, index if retrying else index - 1,
                                            chosen_by_people=False)
    ended = RunOutcome(Ending.CANCELLED, run.services, step=StepRef(index, plan[index].title), undone=undone,
                       undo_failed=failed, stays=stays, cancelled_by=cancelled_by, retrying=retrying)
    await rows.note(note_cancelled(ended), cancelled_by)
    raise RunStopped(ended)


async def _attempts(deps: EngineDeps, run: ActionRun, plan: list[PlannedStep], index: int, step: PlannedStep,
                    rows: _Rows) -> str:
    """One step with its retries, each attempt within the step's timeout; raises the last failure, with the effect
    of all the tries together. A try whose effect is unknown is not followed by another."""
    row = rows.rows[index]
    book = UndoBook(dict(row.undo or {}), lambda data: rows.set(index, undo=data))
    await rows.set(index, state=StepState.RUNNING, started_at=deps.clock.now(), finished_at=None, detail="")
    last: ExecutorError | None = None
    effects: list[Effect] = []
    for attempt in range(step.retries + 1):
        if attempt:
            await deps.clock.sleep(RETRY_PAUSE)
            await rows.set(index, detail=f"{try_of(attempt + 1, step.retries + 1)} (last: {last})"[:500])
            await _stop_if_cancelled(deps, run, plan, rows, index)
        try:
            async with asyncio.timeout(step.timeout):
                detail = await steps.perform(deps, run, step, book, lambda text: rows.set(index, detail=text[:500]))
            return detail + (f" (on try {attempt + 1})" if attempt else "")
        except (StepSkipped, StepCancelled):
            raise  # a person's choice, not a failed try
        except ExecutorError as exc:
            last = exc
        except TimeoutError:
            cut = steps.traits_of(step).cut_short
            last = ExecutorError(f"did not finish within {step.timeout:g} s and was stopped", effect=cut,
                                 state="unchanged: this kind of step does not act on its target" if cut is Effect.UNTOUCHED
                                 else "unknown: it was stopped part-way")
        except OpsbotError as exc:
            # opsbot's own refusals (no target, no backup, not in the channel): raised before the target is acted on.
            last = ExecutorError(str(exc), state="unchanged by this step", effect=Effect.UNTOUCHED)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reference = secrets.token_hex(4)
            log.exception("run %s step %s failed unexpectedly (reference %s)", run.id, index + 1, reference)
            cut = steps.traits_of(step).cut_short
            last = ExecutorError(f"opsbot failed: {type(exc).__name__} (reference {reference})", effect=cut,
                                 state="unchanged: this kind of step does not act on its target" if cut is Effect.UNTOUCHED
                                 else "unknown: look at the service")
        effects.append(last.effect)
        await rows.set(index, effect=combined(effects))
        if not AFTER_FAILURE[last.effect].retry:
            break
    assert last is not None
    if last.effect is combined(effects):
        raise last
    raise ExecutorError(str(last), state=last.state, effect=combined(effects)) from last


async def _skip_from(rows: _Rows, start: int, end: int) -> None:
    for index in range(start, end):
        if rows.rows[index].state is StepState.WAITING:
            await rows.set(index, state=StepState.SKIPPED)


async def _undo_all(deps: EngineDeps, run: ActionRun, plan: list[PlannedStep], rows: _Rows,
                    last: int, *, chosen_by_people: bool,
                    ) -> tuple[tuple[StepRef, ...], tuple[UndoFailure, ...], tuple[StepRef, ...]]:
    """Undo steps `last`..0 that changed something and can be put back, newest first; every undo is tried.
    Steps whose effect is unknown are undone only when people chose Roll back (`needs_undo`).
    Returns what was undone, what could not be, and which changes stay (no undo)."""
    undone: list[StepRef] = []
    failed: list[UndoFailure] = []
    stays: list[StepRef] = []
    for index in range(last, -1, -1):
        step, row = plan[index], rows.rows[index]
        ref = StepRef(index, step.title)
        if not needs_undo(row, chosen_by_people=chosen_by_people):
            continue
        if not steps.can_undo(step, row.undo):
            if step.undo is None and _changed(step) and row.state is StepState.SUCCEEDED:
                stays.append(ref)
            continue
        data = dict(row.undo or {})
        position = await rows.add(steps.undo_title(step, data))
        await rows.set(position, state=StepState.RUNNING, started_at=deps.clock.now())
        try:
            with deps.tracer.span(f"undo {step.kind}", _step_attributes(run, index, step)) as span:
                try:
                    async with asyncio.timeout(UNDO_TIMEOUT):
                        detail = await steps.undo(deps, step, data)
                except ExecutorError as exc:
                    span.set({"opsbot.step.outcome": StepState.FAILED.value, "opsbot.step.effect": exc.effect.value})
                    raise
                span.set({"opsbot.step.outcome": StepState.SUCCEEDED.value})
        except (ExecutorError, TimeoutError) as exc:
            text = str(exc) or f"did not finish within {UNDO_TIMEOUT:g} s"
            effect = exc.effect if isinstance(exc, ExecutorError) else Effect.UNKNOWN
            await rows.set(position, state=StepState.FAILED, detail=text[:500], effect=effect,
                           finished_at=deps.clock.now())
            failed.append(UndoFailure(ref, text))
            await rows.note(note_undo_failed(failed[-1]), None)
            continue
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("undo of step %s of run %s failed unexpectedly", index + 1, run.id)
            await rows.set(position, state=StepState.FAILED, detail=type(exc).__name__, effect=Effect.UNKNOWN,
                           finished_at=deps.clock.now())
            failed.append(UndoFailure(ref, type(exc).__name__))
            continue
        await rows.set(position, state=StepState.SUCCEEDED, detail=detail[:500], finished_at=deps.clock.now())
        await rows.set(index, state=StepState.UNDONE)
        undone.append(ref)
        await rows.note(note_undid(ref, detail), None)
    return tuple(undone), tuple(failed), tuple(stays)


def _step_attributes(run: ActionRun, index: int, step: PlannedStep) -> dict[str, str | int]:
    return {"opsbot.run_id": run.id or 0, "opsbot.step.index": index + 1, "opsbot.step.kind": step.kind}


def _changed(step: PlannedStep) -> bool:
    return steps.traits_of(step).changes

