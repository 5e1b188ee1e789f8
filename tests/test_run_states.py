"""The run and step transition tables (the stores refusing a move they do not allow: tests/test_run_store_contract.py)."""

from __future__ import annotations

import pytest

from bot.runs.models import ActionState, StepState
from bot.runs.states import RUN_MOVES, STEP_MOVES, IllegalTransition, check_run_move, step_sources


def test_every_state_has_a_row_and_final_states_go_nowhere() -> None:
    assert set(RUN_MOVES) == set(ActionState) and set(STEP_MOVES) == set(StepState)
    assert {state for state, moves in RUN_MOVES.items() if not moves} == {s for s in ActionState if s.final}


def test_every_non_final_state_is_reachable_from_a_draft() -> None:
    seen, frontier = {ActionState.DRAFT}, [ActionState.DRAFT]
    while frontier:
        for nxt in RUN_MOVES[frontier.pop()] - seen:
            seen.add(nxt)
            frontier.append(nxt)
    assert seen == set(ActionState)


@pytest.mark.parametrize(("expect", "to"), [
    ({ActionState.SUCCEEDED}, ActionState.RUNNING),  # a finished run never runs again
    ({ActionState.PENDING}, ActionState.RUNNING),  # nothing runs unapproved
    ({ActionState.DRAFT}, ActionState.DENIED),  # nobody was asked yet
    ({ActionState.RUNNING, ActionState.DENIED}, ActionState.INTERRUPTED),  # one illegal source is enough
    (set(), ActionState.RUNNING),  # a compare-and-set must expect something
])
def test_an_illegal_run_move_raises_naming_it(expect: set[ActionState], to: ActionState) -> None:
    with pytest.raises(IllegalTransition) as raised:
        check_run_move(expect, to)
    assert raised.value.to == to.value


def test_a_step_never_succeeds_without_running_and_only_changes_are_undone() -> None:
    assert StepState.WAITING not in step_sources(StepState.SUCCEEDED)
    assert step_sources(StepState.UNDONE) == {StepState.RUNNING, StepState.SUCCEEDED, StepState.FAILED,
                                              StepState.UNDONE}
    assert step_sources(StepState.RUNNING) == {StepState.WAITING, StepState.RUNNING}
