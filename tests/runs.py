"""Putting a stored run or step into a state a scenario needs (as if a crash left it so), only through moves the
transition tables allow: the shortest legal path, each move a compare-and-set the store checks."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import replace
from typing import TypeVar

from bot.runs.models import ActionState, ActionStep, StepState
from bot.runs.states import RUN_MOVES, STEP_MOVES
from bot.store import Store

S = TypeVar("S", ActionState, StepState)


def _path(moves: Mapping[S, frozenset[S]], start: S, goal: S) -> list[S]:
    came: dict[S, S | None] = {start: None}
    queue = deque([start])
    while queue:
        here = queue.popleft()
        if here == goal:
            path = [here]
            while (back := came[path[-1]]) is not None:
                path.append(back)
            return path[::-1][1:]
        for there in sorted(moves[here] - came.keys(), key=lambda s: s.value):
            came[there] = here
            queue.append(there)
    raise AssertionError(f"no legal path from {start.value} to {goal.value}")


async def move_run(store: Store, run_id: int, to: ActionState) -> None:
    run = await store.get_action(run_id)
    assert run is not None
    for state in _path(RUN_MOVES, run.state, to):
        current = (await store.get_action(run_id)).state  # type: ignore[union-attr]
        assert await store.transition_action(run_id, state, expect={current}), f"{current.value} → {state.value}"


async def move_step(store: Store, run_id: int, step: ActionStep) -> None:
    """Save `step` (its state, detail, undo) after walking its stored row there through legal moves."""
    run = await store.get_action(run_id)
    assert run is not None
    stored = next((s for s in run.steps if s.position == step.position), None)
    if stored is not None:
        for state in _path(STEP_MOVES, stored.state, step.state)[:-1]:
            await store.save_step(run_id, replace(stored, state=state))
    await store.save_step(run_id, step)
