"""The run engine on its narrow ports, in milliseconds: the in-memory run store, a clock that moves when slept on,
and a throwaway step kind scripted per step (tests/run_harness.py). Order, retries, timeouts, typed effects, undo,
`on_failure`, Cancel, hand-over at a step boundary, Resume and Roll back, as `bot.runs.engine.perform` does them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.executors.base import Effect
from bot.runs import engine
from bot.runs.models import ActionRun, ActionState, ActionStep, StepState
from bot.runs.outcomes import Ending, RunOutcome
from bot.runs.steps.base import register, unregister
from tests.run_harness import (
    ALICE,
    LOOK,
    SCRIPTED,
    SCRIPTS,
    Deps,
    Scripts,
    failure,
    running_run,
    scripted,
    stored,
)


@pytest.fixture(autouse=True)
def kinds() -> Iterator[Scripts]:
    register(SCRIPTED)
    register(LOOK)
    SCRIPTS.plans.clear()
    SCRIPTS.tries.clear()
    SCRIPTS.undone.clear()
    SCRIPTS.undo_fails.clear()
    yield SCRIPTS
    unregister(SCRIPTED.name)
    unregister(LOOK.name)


@pytest.fixture
def deps() -> Deps:
    return Deps()


class Shown:
    """The step rows each re-render showed, and the notes told."""

    def __init__(self) -> None:
        self.renders: list[list[ActionStep]] = []
        self.notes: list[tuple[str, str | None]] = []

    async def show(self, rows: list[ActionStep]) -> None:
        self.renders.append(rows)

    async def note(self, text: str, actor: str | None) -> None:
        self.notes.append((text, actor))


async def perform(deps: Deps, run: ActionRun, shown: Shown | None = None) -> RunOutcome:
    shown = shown or Shown()
    try:
        return await engine.perform(deps, run, shown.show, shown.note)
    except engine.RunStopped as stopped:
        return stopped.outcome


def states(run: ActionRun) -> list[tuple[str, StepState]]:
    return [(row.title, row.state) for row in run.steps]


async def test_steps_run_in_order_each_stored_before_it_is_shown(deps: Deps) -> None:
    run = await running_run(deps, [scripted("a"), scripted("b"), scripted("c", kind="look")])
    shown = Shown()
    ended = await perform(deps, run, shown)

    assert ended.ending is Ending.FINISHED and ended.details == ("a done", "b done", "c done")
    assert SCRIPTS.tries == ["a", "b", "c"]
    after = await stored(deps, run.id or 0)
    assert states(after) == [("Step a", StepState.SUCCEEDED), ("Step b", StepState.SUCCEEDED),
                             ("Step c", StepState.SUCCEEDED)]
    assert after.steps[0].undo == {"was": "before a"}  # what its undo needs, kept before it acted
    # Each render shows rows the store already had: the first shows step a running, the last all done.
    assert shown.renders[0][0].state is StepState.RUNNING
    assert [r.state for r in shown.renders[-1]] == [StepState.SUCCEEDED] * 3


async def test_a_failure_that_touched_nothing_is_retried_after_the_pause(deps: Deps) -> None:
    SCRIPTS.plans["a"] = [Effect.UNTOUCHED, "ok"]
    run = await running_run(deps, [scripted("a", retries=2)])
    ended = await perform(deps, run)

    assert ended.ending is Ending.FINISHED and ended.details == ("a done (on try 2)",)
    assert SCRIPTS.tries == ["a", "a"]
    assert deps.clock.slept == [engine.RETRY_PAUSE]


async def test_a_step_past_its_timeout_leaves_its_kinds_cut_short_effect(deps: Deps) -> None:
    SCRIPTS.plans["slow"] = ["hang"]
    run = await running_run(deps, [scripted("a"), scripted("slow", timeout=0.02, retries=3)])
    ended = await perform(deps, run)

    # A step that acts may have got anywhere: unknown, so it is neither tried again nor undone, nor is step a.
    assert ended.ending is Ending.UNKNOWN and ended.effect is Effect.UNKNOWN
    assert SCRIPTS.tries == ["a", "slow"] and SCRIPTS.undone == []
    assert "did not finish within 0.02 s" in (ended.why or "")


async def test_a_read_only_step_past_its_timeout_touched_nothing_so_it_is_retried_then_earlier_steps_undone(
        deps: Deps) -> None:
    SCRIPTS.plans["look"] = ["hang"]
    run = await running_run(deps, [scripted("a"), scripted("look", kind="look", timeout=0.02, retries=1)])
    ended = await perform(deps, run)

    assert ended.ending is Ending.ROLLED_BACK and ended.effect is Effect.UNTOUCHED
    assert SCRIPTS.tries == ["a", "look", "look"] and SCRIPTS.undone == ["a"]


async def test_an_unknown_effect_stops_the_run_with_nothing_retried_or_undone(deps: Deps) -> None:
    SCRIPTS.plans["b"] = [Effect.UNKNOWN, "ok"]
    run = await running_run(deps, [scripted("a"), scripted("b", retries=3), scripted("c")])
    ended = await perform(deps, run)

    assert ended.ending is Ending.UNKNOWN and ended.final is ActionState.FAILED
    assert ended.step is not None and ended.step.index == 1
    assert [ref.index for ref in ended.still_changed] == [0]  # what stays changed is named for people
    assert SCRIPTS.tries == ["a", "b"] and SCRIPTS.undone == []
    after = await stored(deps, run.id or 0)
    assert states(after) == [("Step a", StepState.SUCCEEDED), ("Step b", StepState.FAILED),
                             ("Step c", StepState.SKIPPED)]
    assert after.steps[1].effect is Effect.UNKNOWN


async def test_a_changed_failure_undoes_itself_and_the_steps_before_it_newest_first(deps: Deps) -> None:
    SCRIPTS.plans["c"] = [Effect.CHANGED]
    run = await running_run(deps, [scripted("a"), scripted("b", kind="look"), scripted("c"), scripted("d")])
    shown = Shown()
    ended = await perform(deps, run, shown)

    assert ended.ending is Ending.ROLLED_BACK and ended.final is ActionState.FAILED
    assert SCRIPTS.undone == ["c", "a"]  # b changed nothing; d never ran
    assert [ref.index for ref in ended.undone] == [2, 0]
    after = await stored(deps, run.id or 0)
    assert [row.state for row in after.steps] == [StepState.UNDONE, StepState.SUCCEEDED, StepState.UNDONE,
                                                  StepState.SKIPPED, StepState.SUCCEEDED, StepState.SUCCEEDED]
    assert after.steps[4].title.startswith("Undo “Step c”")  # each undo is a row of its own, after the plan's
    assert any("c failed" in text for text, _ in shown.notes)


async def test_an_untouched_failure_is_retried_and_only_the_earlier_steps_are_undone(deps: Deps) -> None:
    SCRIPTS.plans["b"] = [Effect.UNTOUCHED]
    run = await running_run(deps, [scripted("a"), scripted("b", retries=1)])
    ended = await perform(deps, run)

    assert ended.ending is Ending.ROLLED_BACK
    assert SCRIPTS.tries == ["a", "b", "b"]
    assert SCRIPTS.undone == ["a"]  # b's own undo would put back what others wrote since: it never runs


async def test_the_tries_of_one_step_add_up_to_the_least_known_effect(deps: Deps) -> None:
    SCRIPTS.plans["b"] = [Effect.CHANGED, Effect.UNTOUCHED]
    run = await running_run(deps, [scripted("b", retries=1)])
    ended = await perform(deps, run)

    assert ended.effect is Effect.CHANGED and SCRIPTS.undone == ["b"]


async def test_on_failure_continue_goes_on_and_names_what_it_passed_over(deps: Deps) -> None:
    SCRIPTS.plans["b"] = [Effect.UNKNOWN]
    run = await running_run(deps, [scripted("a"), scripted("b", on_failure="continue"), scripted("c")])
    ended = await perform(deps, run)

    assert ended.ending is Ending.FINISHED
    assert [(p.step.index, p.effect) for p in ended.passed_over] == [(1, Effect.UNKNOWN)]
    assert SCRIPTS.tries == ["a", "b", "c"] and SCRIPTS.undone == []


async def test_on_failure_stop_stops_without_undoing(deps: Deps) -> None:
    SCRIPTS.plans["b"] = [Effect.CHANGED]
    run = await running_run(deps, [scripted("a"), scripted("b", on_failure="stop"), scripted("c")])
    ended = await perform(deps, run)

    assert ended.ending is Ending.STOPPED and SCRIPTS.undone == []
    assert [ref.index for ref in ended.still_changed] == [0]


async def test_an_undo_that_fails_is_reported_and_the_others_still_run(deps: Deps) -> None:
    SCRIPTS.plans["c"] = [Effect.CHANGED]
    SCRIPTS.undo_fails.add("b")
    run = await running_run(deps, [scripted("a"), scripted("b"), scripted("c")])
    ended = await perform(deps, run)

    assert ended.ending is Ending.ROLLED_BACK
    assert SCRIPTS.undone == ["c", "a"]
    assert [f.step.index for f in ended.undo_failed] == [1]


async def test_cancel_stops_before_the_next_step_and_undoes_what_ran(deps: Deps) -> None:
    async def cancel(d: Deps, run: ActionRun) -> str:
        assert await d.store.request_cancel(run.id or 0, ALICE)
        return "a done; then Cancel was pressed"

    SCRIPTS.plans["a"] = [cancel]
    run = await running_run(deps, [scripted("a"), scripted("b")])
    ended = await perform(deps, run)

    assert ended.ending is Ending.CANCELLED and ended.cancelled_by == ALICE and ended.final is ActionState.CANCELLED
    assert SCRIPTS.tries == ["a"] and SCRIPTS.undone == ["a"]
    assert [row.state for row in (await stored(deps, run.id or 0)).steps[:2]] == [StepState.UNDONE, StepState.SKIPPED]


async def test_cancel_between_tries_fails_the_step_and_undoes_it_when_it_changed_something(deps: Deps) -> None:
    async def cancel_then_fail(d: Deps, run: ActionRun) -> str:
        await d.store.request_cancel(run.id or 0, ALICE)
        raise failure(Effect.CHANGED)

    SCRIPTS.plans["a"] = [cancel_then_fail, "ok"]
    run = await running_run(deps, [scripted("a", retries=2)])
    ended = await perform(deps, run)

    assert ended.ending is Ending.CANCELLED and ended.retrying
    assert SCRIPTS.tries == ["a"] and SCRIPTS.undone == ["a"]


async def test_a_draining_replica_hands_the_run_over_at_the_next_step_boundary(deps: Deps) -> None:
    async def drain(d: Deps, run: ActionRun) -> str:
        d.handover.begin()  # SIGTERM while step a runs: a is let finish
        return "a done"

    SCRIPTS.plans["a"] = [drain]
    run = await running_run(deps, [scripted("a"), scripted("b")])
    with pytest.raises(engine.HandedOver) as boundary:
        await engine.perform(deps, run, Shown().show)

    assert boundary.value.step == 1 and SCRIPTS.tries == ["a"]
    assert [row.state for row in (await stored(deps, run.id or 0)).steps] == [StepState.SUCCEEDED, StepState.WAITING]


async def test_a_run_another_replica_declared_interrupted_starts_nothing_more(deps: Deps) -> None:
    async def declared(d: Deps, run: ActionRun) -> str:
        assert await d.store.transition_action(run.id or 0, ActionState.INTERRUPTED, expect={ActionState.RUNNING})
        return "a done"

    SCRIPTS.plans["a"] = [declared]
    run = await running_run(deps, [scripted("a"), scripted("b")])
    with pytest.raises(engine.NoLongerOurs):
        await engine.perform(deps, run, Shown().show)
    assert SCRIPTS.tries == ["a"]


async def test_a_resumed_run_does_not_redo_the_steps_that_succeeded(deps: Deps) -> None:
    plan = [scripted("a"), scripted("b"), scripted("c")]
    rows = [ActionStep(0, "Step a", StepState.SUCCEEDED, undo={"was": "before a"}), ActionStep(1, "Step b"),
            ActionStep(2, "Step c")]
    run = await running_run(deps, plan, rows=rows, params={"mode": "resume"})
    ended = await perform(deps, run)

    assert ended.ending is Ending.FINISHED and SCRIPTS.tries == ["b", "c"]


async def test_roll_back_runs_only_the_undos_of_what_changed_including_a_step_cut_short(deps: Deps) -> None:
    plan = [scripted("a"), scripted("b", kind="look"), scripted("c"), scripted("d")]
    rows = [ActionStep(0, "Step a", StepState.SUCCEEDED, undo={"was": "before a"}),
            ActionStep(1, "Step b", StepState.SUCCEEDED),
            ActionStep(2, "Step c", StepState.RUNNING, undo={"was": "before c"}),  # cut short: people chose Roll back
            ActionStep(3, "Step d")]
    run = await running_run(deps, plan, rows=rows, params={"mode": "rollback"})
    ended = await perform(deps, run)

    assert ended.ending is Ending.UNDONE and ended.final is ActionState.SUCCEEDED
    assert SCRIPTS.tries == [] and SCRIPTS.undone == ["c", "a"]


async def test_a_roll_back_whose_undo_fails_ends_failed(deps: Deps) -> None:
    SCRIPTS.undo_fails.add("a")
    rows = [ActionStep(0, "Step a", StepState.SUCCEEDED, undo={"was": "before a"})]
    run = await running_run(deps, [scripted("a")], rows=rows, params={"mode": "rollback"})
    ended = await perform(deps, run)

    assert ended.ending is Ending.UNDO_FAILED and ended.final is ActionState.FAILED
