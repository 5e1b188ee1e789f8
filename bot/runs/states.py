"""The moves a run and its steps may make, as tables: the store's compare-and-set takes its expected states from
them and refuses any other move with `IllegalTransition`.

Data only, with two lookups; not responsible for deciding when a move happens (`bot.runs.requests`, `bot.runs.execution`,
`bot.runs.engine`) or for applying it atomically (the store).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from bot.errors import OpsbotError
from bot.runs.models import ActionState, StepState

R = ActionState
# A run: draft → pending → approved → running → succeeded | failed | cancelled; draft → approved when no approval
# is needed; pending → denied | expired; draft | pending | approved → cancelled (withdrawn: dropped, or it could not
# be posted); approved → failed (refused before it started: a lock held or unreachable); approved | running |
# handed_over → interrupted (its replica went silent); approved | running → handed_over (a stopping replica, at a
# step boundary) → running (another replica goes on). A draft "moves" to itself when its reason is added.
RUN_MOVES: Mapping[ActionState, frozenset[ActionState]] = MappingProxyType({
    R.DRAFT: frozenset({R.DRAFT, R.PENDING, R.APPROVED, R.CANCELLED, R.EXPIRED}),
    R.PENDING: frozenset({R.APPROVED, R.DENIED, R.EXPIRED, R.CANCELLED}),
    R.APPROVED: frozenset({R.RUNNING, R.FAILED, R.CANCELLED, R.INTERRUPTED, R.HANDED_OVER}),
    R.RUNNING: frozenset({R.SUCCEEDED, R.FAILED, R.CANCELLED, R.INTERRUPTED, R.HANDED_OVER}),
    R.HANDED_OVER: frozenset({R.RUNNING, R.INTERRUPTED}),
    R.SUCCEEDED: frozenset(),
    R.FAILED: frozenset(),
    R.DENIED: frozenset(),
    R.EXPIRED: frozenset(),
    R.INTERRUPTED: frozenset(),
    R.CANCELLED: frozenset(),
})

S = StepState
# A step: waiting → running → succeeded | failed; waiting → skipped (not run: after a failure, a Cancel, or
# `on_failure: continue` before it); running → skipped (a person pressed Skip on a `manual` step);
# succeeded | failed | running (people chose Roll back of a step cut short) → undone. A step stays in its state
# while its detail, effect or undo data are updated; a new row may start in any state (a follow-up run copies its
# predecessor's rows).
STEP_MOVES: Mapping[StepState, frozenset[StepState]] = MappingProxyType({
    S.WAITING: frozenset({S.WAITING, S.RUNNING, S.SKIPPED}),
    S.RUNNING: frozenset({S.RUNNING, S.SUCCEEDED, S.FAILED, S.UNDONE, S.SKIPPED}),
    S.SUCCEEDED: frozenset({S.SUCCEEDED, S.UNDONE}),
    S.FAILED: frozenset({S.FAILED, S.UNDONE}),
    S.SKIPPED: frozenset({S.SKIPPED}),
    S.UNDONE: frozenset({S.UNDONE}),
})


class IllegalTransition(OpsbotError):
    """A move the tables do not allow: a bug in the caller, never a race (a race loses the compare-and-set)."""

    def __init__(self, what: str, sources: Iterable[str], to: str) -> None:
        self.what, self.sources, self.to = what, tuple(sources), to
        super().__init__(f"a {what} cannot move from {' or '.join(self.sources) or 'nowhere'} to {to}")


def check_run_move(expect: Iterable[ActionState], to: ActionState) -> frozenset[ActionState]:
    """The expected states of a compare-and-set, each checked against the table; raises on any illegal one."""
    sources = frozenset(expect)
    illegal = sorted(state.value for state in sources if to not in RUN_MOVES[state])
    if illegal or not sources:
        raise IllegalTransition("run", illegal, to.value)
    return sources


def step_sources(to: StepState) -> frozenset[StepState]:
    """The states a stored step may be in for it to move to `to`."""
    return frozenset(state for state, moves in STEP_MOVES.items() if to in moves)
