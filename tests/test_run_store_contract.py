"""The run ports' contract (`bot.runs.ports`: runs, steps, decisions, backups, leases), one set of tests held by
the in-memory store, SQLite and PostgreSQL alike: an engine test on the in-memory store proves what production does.

Deploy history and the rest of `Store` are not run ports: tests/test_store_actions.py and tests/test_store.py.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

import pytest

from bot.executors.base import Effect
from bot.runs.memory_store import MemoryRunStore
from bot.runs.models import (
    ActionKind,
    ActionRun,
    ActionState,
    ActionStep,
    ApprovalDecision,
    BackupLabel,
    BackupRecord,
    Decision,
    PlannedStep,
    StepState,
    UnknownStepKind,
)
from bot.runs.outcomes import Ending, RunOutcome, StepRef, UndoFailure
from bot.runs.ports import SETTABLE_RUN_FIELDS, BackupLedger, LeaseStore, RunStore
from bot.runs.states import IllegalTransition
from bot.store import create_store
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore

T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
S = ActionState


class RunPorts(RunStore, BackupLedger, LeaseStore, Protocol):
    """Every port at once: what each backend under test offers."""


AN_OUTCOME = RunOutcome(
    Ending.ROLLED_BACK, ("api", "db"), step=StepRef(1, "Restore db"), why="pg_restore: bad archive", state="rolled back",
    effect=Effect.UNTOUCHED, undone=(StepRef(0, "Scale api to 0"),),
    undo_failed=(UndoFailure(StepRef(0, "Scale api to 0"), "api is gone"),), details=("one", "two"))
PLAN = (
    PlannedStep(kind="restart", service="api", args={}, title="Restart api (Docker container api)", undo=None,
                on_failure="stop", timeout=3600.0, retries=0, probe="what it does: Stop container; Start container"),
    PlannedStep(kind="check", service="api", args={"attempts": 3, "interval": 2.0}, title="Check the health of api",
                undo=None, on_failure="stop", timeout=600.0, retries=2),
    PlannedStep(kind="notify", service=None, args={"channel": "C1", "text": "done ✓", "when": [1, 2]}, title="Tell C1",
                undo=None, on_failure="continue", timeout=30.0, retries=0),
)


def a_run(**changes: object) -> ActionRun:
    fields: dict[str, Any] = dict(service="api", kind=ActionKind.RESTART, environment="production", target="Docker container api",
                        requested_by="U1", created_at=T0, expires_at=T0 + timedelta(minutes=30), state=S.PENDING,
                        params={"to": "v1"}, approvals_needed=2, approvers=("S0LEADS", "U9"), reason="memory leak",
                        steps=(ActionStep(0, "Restart container api"), ActionStep(1, "Wait until running")))
    fields.update(changes)
    return ActionRun(**fields)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """"memory", or the URL of a fresh database of each SQL backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'opsbot.db'}"
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_database"))
    return "memory"


@pytest.fixture
async def ports(backend: str) -> AsyncIterator[RunPorts]:
    if backend == "memory":
        yield MemoryRunStore()
        return
    store = create_store(backend)
    await store.open()
    await store.migrate()
    yield store
    await store.close()


async def running(ports: RunPorts, owner: str = "replica-1", **changes: object) -> int:
    """A run taken by `owner` the way the engine takes one: created approved, then moved to running."""
    run_id = await ports.create_action(a_run(state=S.APPROVED, **changes))
    assert await ports.transition_action(run_id, S.RUNNING, expect={S.APPROVED}, lease_owner=owner, started_at=T0,
                                         heartbeat_at=T0)
    return run_id


async def state_of(ports: RunPorts, run_id: int) -> ActionState:
    run = await ports.get_action(run_id)
    assert run is not None
    return run.state


# --- the implementations agree on the ports' shape -----------------------------------------------------------------

@pytest.mark.parametrize("port", [RunStore, BackupLedger, LeaseStore])
@pytest.mark.parametrize("implementation", [MemoryRunStore, SqliteStore, PostgresStore])
def test_every_implementation_offers_each_port_method_with_its_parameters(port: type, implementation: type) -> None:
    methods = [name for name, value in vars(port).items() if inspect.iscoroutinefunction(value)]
    assert methods, f"{port.__name__} declares no methods"
    for name in methods:
        wanted = inspect.signature(getattr(port, name)).parameters
        found = inspect.signature(getattr(implementation, name)).parameters
        assert [(p.name, p.kind, p.default) for p in found.values()] == [(p.name, p.kind, p.default)
                                                                          for p in wanted.values()], name


# --- runs ---------------------------------------------------------------------------------------------------------

async def test_a_run_round_trips_with_its_steps(ports: RunPorts) -> None:
    run_id = await ports.create_action(a_run())
    run = await ports.get_action(run_id)
    assert run is not None and run.id == run_id
    assert (run.kind, run.state, run.params, run.approvers, run.reason) == (ActionKind.RESTART, S.PENDING, {"to": "v1"},
                                                                            ("S0LEADS", "U9"), "memory leak")
    assert run.expires_at == T0 + timedelta(minutes=30)
    assert [(s.position, s.title, s.state) for s in run.steps] == [(0, "Restart container api", StepState.WAITING),
                                                                   (1, "Wait until running", StepState.WAITING)]
    assert await ports.get_action(run_id + 1000) is None


async def test_a_new_run_starts_with_no_progress_whatever_it_was_given(ports: RunPorts) -> None:
    run_id = await ports.create_action(a_run(started_at=T0, finished_at=T0, outcome="done", target_state="up",
                                             cancel_requested_by="U2", followed_by=99))
    run = await ports.get_action(run_id)
    assert run is not None
    assert (run.started_at, run.finished_at, run.outcome, run.target_state, run.cancel_requested_by,
            run.followed_by) == (None, None, "", "", None, None)


async def test_times_come_back_as_the_same_instant_in_utc_and_naive_times_are_refused(ports: RunPorts) -> None:
    paris = timezone(timedelta(hours=1))
    run_id = await ports.create_action(a_run(created_at=T0.astimezone(paris)))
    run = await ports.get_action(run_id)
    assert run is not None and run.created_at == T0 and run.created_at.utcoffset() == timedelta(0)
    with pytest.raises(ValueError, match="naive"):
        await ports.create_action(a_run(created_at=T0.replace(tzinfo=None)))


async def test_what_a_caller_holds_is_a_copy(ports: RunPorts) -> None:
    run_id = await ports.create_action(a_run(params={"services": ("api", "db")}))
    await ports.save_step(run_id, ActionStep(0, "Deploy", StepState.RUNNING, undo={"image": "app:1.0"}))
    run = await ports.get_action(run_id)
    assert run is not None and run.params == {"services": ["api", "db"]}, "params are JSON: a tuple reads as a list"
    run.params["services"].append("web")
    assert run.steps[0].undo is not None
    run.steps[0].undo["image"] = "app:9"
    again = await ports.get_action(run_id)
    assert again is not None and again.params == {"services": ["api", "db"]}
    assert again.steps[0].undo == {"image": "app:1.0"}


async def test_listing_by_service_and_state_newest_first(ports: RunPorts) -> None:
    old = await ports.create_action(a_run())
    new = await ports.create_action(a_run(created_at=T0 + timedelta(minutes=1), state=S.RUNNING))
    await ports.create_action(a_run(service="db"))
    assert [r.id for r in await ports.actions(service="api")] == [new, old]
    assert [r.id for r in await ports.actions(service="api", states=[S.RUNNING])] == [new]
    assert await ports.actions(states=[]) == []
    assert len(await ports.actions()) == 3
    assert len(await ports.actions(limit=2)) == 2


async def test_listing_since_keeps_runs_asked_for_or_finished_since(ports: RunPorts) -> None:
    finished_late = await running(ports)
    await ports.transition_action(finished_late, S.SUCCEEDED, expect={S.RUNNING}, finished_at=T0 + timedelta(hours=2))
    await ports.create_action(a_run())  # asked for and still waiting before the window: left out
    asked_late = await ports.create_action(a_run(created_at=T0 + timedelta(hours=1)))
    since = T0 + timedelta(minutes=30)
    assert [r.id for r in await ports.actions(since=since)] == [asked_late, finished_late]


async def test_a_transition_happens_once_from_the_expected_state(ports: RunPorts) -> None:
    run_id = await ports.create_action(a_run())
    results = await asyncio.gather(*(ports.transition_action(run_id, S.APPROVED, expect={S.PENDING})
                                     for _ in range(8)))
    assert results.count(True) == 1
    assert await ports.transition_action(run_id, S.RUNNING, expect={S.APPROVED}, started_at=T0) is True
    assert await ports.transition_action(run_id, S.DENIED, expect={S.PENDING}) is False
    assert await ports.transition_action(run_id + 1000, S.APPROVED, expect={S.PENDING}) is False
    run = await ports.get_action(run_id)
    assert run is not None and run.state is S.RUNNING and run.started_at == T0


async def test_a_double_approval_moves_the_run_once(ports: RunPorts) -> None:
    run_id = await ports.create_action(a_run(approvals_needed=1))
    both = await asyncio.gather(*(ports.add_decision(ApprovalDecision(run_id, user, Decision.APPROVE, T0))
                                  for user in ("U2", "U2")))
    assert sorted(both) == [False, True], "one person, two clicks: one decision"
    moved = await asyncio.gather(*(ports.transition_action(run_id, S.APPROVED, expect={S.PENDING}) for _ in range(2)))
    assert sorted(moved) == [False, True]
    assert len(await ports.decisions(run_id)) == 1


async def test_every_settable_field_is_set_by_a_transition_and_no_other(ports: RunPorts) -> None:
    run_id = await ports.create_action(a_run(state=S.DRAFT))
    later = T0 + timedelta(hours=1)
    fields: dict[str, Any] = dict(
        reason="now with a reason", lease_owner="replica-1", heartbeat_at=T0, channel_id="C1", message_ts="1.2",
        started_at=T0, finished_at=later, outcome="done", target_state="up", expires_at=later, cancel_requested_by="U3",
        outcome_data=AN_OUTCOME)
    assert set(fields) == SETTABLE_RUN_FIELDS
    assert await ports.transition_action(run_id, S.DRAFT, expect={S.DRAFT}, **fields)
    run = await ports.get_action(run_id)
    assert run is not None
    assert (run.reason, run.channel_id, run.message_ts, run.started_at, run.finished_at, run.outcome, run.target_state,
            run.expires_at, run.cancel_requested_by, run.outcome_data) == (
        "now with a reason", "C1", "1.2", T0, later, "done", "up", later, "U3", AN_OUTCOME)
    assert await ports.heartbeat(run_id, "replica-1", later) is False, "a draft is not running, whoever owns it"
    with pytest.raises(ValueError, match="not action fields"):
        await ports.transition_action(run_id, S.PENDING, expect={S.DRAFT}, followed_by=3)
    assert await state_of(ports, run_id) is S.DRAFT


async def test_an_illegal_run_move_raises_and_changes_nothing(ports: RunPorts) -> None:
    run_id = await ports.create_action(a_run(state=S.SUCCEEDED))
    with pytest.raises(IllegalTransition):
        await ports.transition_action(run_id, S.RUNNING, expect={S.SUCCEEDED})
    with pytest.raises(IllegalTransition):
        await ports.transition_action(run_id + 1000, S.RUNNING, expect={S.PENDING})  # refused before any row is read
    assert await state_of(ports, run_id) is S.SUCCEEDED


async def test_only_the_owner_moves_or_heartbeats_its_running_run(ports: RunPorts) -> None:
    run_id = await running(ports, owner="replica-1")
    assert await ports.heartbeat(run_id, "replica-2", T0 + timedelta(seconds=5)) is False
    assert await ports.transition_action(run_id, S.SUCCEEDED, expect={S.RUNNING}, owner="replica-2") is False
    assert await ports.heartbeat(run_id, "replica-1", T0 + timedelta(seconds=5)) is True
    # A stopping replica hands over; the next takes it with its own name, and the first is fenced off.
    assert await ports.transition_action(run_id, S.HANDED_OVER, expect={S.RUNNING}, owner="replica-1") is True
    assert await ports.heartbeat(run_id, "replica-1", T0 + timedelta(seconds=6)) is False, "not running"
    assert await ports.transition_action(run_id, S.RUNNING, expect={S.HANDED_OVER}, lease_owner="replica-2") is True
    assert await ports.heartbeat(run_id, "replica-1", T0 + timedelta(seconds=7)) is False
    assert await ports.transition_action(run_id, S.FAILED, expect={S.RUNNING}, owner="replica-1") is False
    assert await ports.transition_action(run_id, S.SUCCEEDED, expect={S.RUNNING}, owner="replica-2") is True
    assert await ports.heartbeat(run_id, "replica-2", T0 + timedelta(seconds=8)) is False, "finished"


async def test_an_expired_request_can_no_longer_be_approved(ports: RunPorts) -> None:
    run_id = await ports.create_action(a_run())
    expiry = T0 + timedelta(minutes=30)
    assert await ports.transition_action(run_id, S.APPROVED, expect={S.PENDING}, unexpired_at=expiry) is False
    assert await ports.transition_action(run_id, S.APPROVED, expect={S.PENDING},
                                         unexpired_at=expiry - timedelta(microseconds=1)) is True


async def test_expired_requests_are_found(ports: RunPorts) -> None:
    due = await ports.create_action(a_run())
    due_draft = await ports.create_action(a_run(state=S.DRAFT, expires_at=T0 + timedelta(minutes=31)))
    await ports.create_action(a_run(expires_at=T0 + timedelta(hours=2)))
    await ports.create_action(a_run(state=S.RUNNING))
    await ports.create_action(a_run(state=S.APPROVED))
    assert [r.id for r in await ports.expired_actions(T0 + timedelta(minutes=31))] == [due, due_draft]
    assert [r.id for r in await ports.expired_actions(T0 + timedelta(minutes=30))] == [due], "due at its expiry"


async def test_stale_runs_are_approved_or_running_ones_without_a_recent_heartbeat(ports: RunPorts) -> None:
    never_started = await ports.create_action(a_run(state=S.APPROVED))
    silent = await running(ports, owner="replica-1")
    alive = await running(ports, owner="replica-2")
    await ports.create_action(a_run())  # pending: nobody runs it, so nobody can go silent
    handed = await running(ports, owner="replica-3")
    await ports.transition_action(handed, S.HANDED_OVER, expect={S.RUNNING}, owner="replica-3")
    assert await ports.heartbeat(alive, "replica-2", T0 + timedelta(minutes=2))
    found = await ports.stale_actions(T0 + timedelta(minutes=1))
    assert [r.id for r in found] == [never_started, silent]
    assert found[1].steps[0].title == "Restart container api"
    assert [r.id for r in await ports.stale_actions(T0)] == [never_started], "a heartbeat at the bound is recent"


async def test_a_runs_message_is_remembered(ports: RunPorts) -> None:
    run_id = await ports.create_action(a_run())
    await ports.set_action_message(run_id, "C42", "1700000000.000100")
    run = await ports.get_action(run_id)
    assert run is not None and (run.channel_id, run.message_ts) == ("C42", "1700000000.000100")


# --- steps --------------------------------------------------------------------------------------------------------

async def test_steps_are_updated_in_place(ports: RunPorts) -> None:
    run_id = await ports.create_action(a_run())
    await ports.save_step(run_id, ActionStep(0, "Restart container api", StepState.RUNNING, "", T0))
    await ports.save_step(run_id, ActionStep(0, "Restart container api", StepState.SUCCEEDED, "up in 1.2 s", T0,
                                             T0 + timedelta(seconds=1)))
    run = await ports.get_action(run_id)
    assert run is not None and run.steps[0].state is StepState.SUCCEEDED and run.steps[0].seconds == 1.0
    assert run.steps[0].detail == "up in 1.2 s" and run.steps[1].state is StepState.WAITING


async def test_a_failed_steps_effect_is_kept_and_a_later_save_can_clear_it(ports: RunPorts) -> None:
    run_id = await ports.create_action(a_run())
    await ports.save_step(run_id, ActionStep(0, "Restore db", StepState.RUNNING))  # a step fails only after it ran
    await ports.save_step(run_id, ActionStep(0, "Restore db", StepState.FAILED, effect=Effect.UNTOUCHED))
    await ports.save_step(run_id, ActionStep(1, "Check db", StepState.RUNNING, effect=Effect.UNKNOWN))  # a try so far
    run = await ports.get_action(run_id)
    assert run is not None and [s.effect for s in run.steps] == [Effect.UNTOUCHED, Effect.UNKNOWN]
    await ports.save_step(run_id, ActionStep(1, "Check db", StepState.SUCCEEDED))  # a later try succeeded
    run = await ports.get_action(run_id)
    assert run is not None and [s.effect for s in run.steps] == [Effect.UNTOUCHED, None]


async def test_a_runbook_step_keeps_what_its_undo_needs(ports: RunPorts) -> None:
    run_id = await ports.create_action(a_run(kind=ActionKind.RUNBOOK, params={"runbook": "deploy", "services": ["api", "db"]}))
    await ports.save_step(run_id, ActionStep(0, "Deploy 2.0 to api", StepState.RUNNING, undo={"image": "app:1.0"}))
    await ports.save_step(run_id, ActionStep(1, "Check", StepState.SKIPPED))
    await ports.save_step(run_id, ActionStep(2, "Undo “Deploy 2.0 to api”", StepState.SUCCEEDED))
    run = await ports.get_action(run_id)
    assert run is not None and run.kind is ActionKind.RUNBOOK and run.services == ("api", "db")
    assert [(s.state, s.undo) for s in run.steps] == [(StepState.RUNNING, {"image": "app:1.0"}), (StepState.SKIPPED, None),
                                                       (StepState.SUCCEEDED, None)]


async def test_an_illegal_step_move_raises_and_keeps_the_row(ports: RunPorts) -> None:
    run_id = await ports.create_action(a_run())
    await ports.save_step(run_id, ActionStep(0, "Restart container api", StepState.RUNNING, "restarting"))
    await ports.save_step(run_id, ActionStep(0, "Restart container api", StepState.FAILED, "exit 1"))
    with pytest.raises(IllegalTransition) as raised:
        await ports.save_step(run_id, ActionStep(0, "Restart container api", StepState.SUCCEEDED, "fine after all"))
    assert raised.value.sources == ("failed",)
    run = await ports.get_action(run_id)
    assert run is not None and (run.steps[0].state, run.steps[0].detail) == (StepState.FAILED, "exit 1")
    # A new row may start in any state: a follow-up run copies its predecessor's rows.
    await ports.save_step(run_id, ActionStep(5, "Undo", StepState.SUCCEEDED, "put back"))
    run = await ports.get_action(run_id)
    assert run is not None and [s.position for s in run.steps] == [0, 1, 5]


# --- cancel and follow-ups ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("state", [S.DRAFT, S.PENDING, S.SUCCEEDED, S.INTERRUPTED, S.HANDED_OVER])
async def test_cancel_is_only_asked_of_an_approved_or_running_run(ports: RunPorts, state: ActionState) -> None:
    run_id = await ports.create_action(a_run(state=state))
    assert await ports.request_cancel(run_id, "U2") is False
    run = await ports.get_action(run_id)
    assert run is not None and run.cancel_requested_by is None


async def test_the_first_cancel_of_a_running_run_counts_and_later_ones_do_not(ports: RunPorts) -> None:
    approved = await ports.create_action(a_run(state=S.APPROVED))
    assert await ports.request_cancel(approved, "U2") is True
    run_id = await running(ports)
    results = await asyncio.gather(*(ports.request_cancel(run_id, user) for user in ("U2", "U3", "U4")))
    assert results.count(True) == 1
    run = await ports.get_action(run_id)
    assert run is not None and run.cancel_requested_by == ("U2", "U3", "U4")[results.index(True)]
    assert await ports.request_cancel(run_id + 1000, "U2") is False


async def test_an_interrupted_run_is_followed_up_by_one_live_run(ports: RunPorts) -> None:
    old = await ports.create_action(a_run(kind=ActionKind.RUNBOOK, state=S.INTERRUPTED))
    first = await ports.create_action(a_run(state=S.DRAFT))
    second = await ports.create_action(a_run(state=S.DRAFT))
    results = await asyncio.gather(ports.claim_follow_up(old, first), ports.claim_follow_up(old, second))
    assert results.count(True) == 1
    winner = first if results[0] else second
    loser = second if winner == first else first
    assert (await ports.get_action(old)).followed_by == winner  # type: ignore[union-attr]
    assert await ports.claim_follow_up(old, winner) is False, "claimed once, even by the same run"
    await ports.transition_action(winner, S.CANCELLED, expect={S.DRAFT})
    assert await ports.claim_follow_up(old, loser) is True, "a dropped follow-up frees the run"


@pytest.mark.parametrize(("start", "moves", "frees"), [
    (S.PENDING, [S.EXPIRED], True),
    (S.PENDING, [S.DENIED], True),
    (S.APPROVED, [S.FAILED], True),  # refused before it started: a lock held, a target unreachable
    (S.APPROVED, [S.RUNNING, S.FAILED], False),  # it ran: what it did is for a follow-up of its own
    (S.APPROVED, [S.RUNNING, S.INTERRUPTED], False),
    (S.APPROVED, [S.RUNNING, S.SUCCEEDED], False),
    (S.APPROVED, [S.RUNNING], False),
    (S.PENDING, [], False),
])
async def test_a_follow_up_frees_its_claim_only_if_it_ended_without_running(
        ports: RunPorts, start: ActionState, moves: list[ActionState], frees: bool) -> None:
    old = await ports.create_action(a_run(state=S.INTERRUPTED))
    follow_up = await ports.create_action(a_run(state=start))
    assert await ports.claim_follow_up(old, follow_up) is True
    at = start
    for to in moves:
        started: dict[str, Any] = {"started_at": T0} if to is S.RUNNING else {}
        assert await ports.transition_action(follow_up, to, expect={at}, **started)
        at = to
    another = await ports.create_action(a_run(state=S.DRAFT))
    assert await ports.claim_follow_up(old, another) is frees
    assert (await ports.get_action(old)).followed_by == (another if frees else follow_up)  # type: ignore[union-attr]


async def test_a_missing_run_cannot_be_followed_up(ports: RunPorts) -> None:
    follow_up = await ports.create_action(a_run(state=S.DRAFT))
    assert await ports.claim_follow_up(follow_up + 1000, follow_up) is False


# --- decisions ----------------------------------------------------------------------------------------------------

async def test_each_person_decides_once(ports: RunPorts) -> None:
    run_id = await ports.create_action(a_run())
    approve = ApprovalDecision(run_id, "U2", Decision.APPROVE, T0)
    assert await ports.add_decision(approve) is True
    assert await ports.add_decision(ApprovalDecision(run_id, "U2", Decision.DENY, T0)) is False
    assert await ports.add_decision(ApprovalDecision(run_id, "U3", Decision.DENY, T0, "not now")) is True
    assert [(d.user_id, d.decision, d.reason) for d in await ports.decisions(run_id)] == [("U2", Decision.APPROVE, ""),
                                                                                          ("U3", Decision.DENY, "not now")]


async def test_decisions_are_in_time_order_and_per_run(ports: RunPorts) -> None:
    run_id = await ports.create_action(a_run())
    other = await ports.create_action(a_run())
    await ports.add_decision(ApprovalDecision(run_id, "U1", Decision.APPROVE, T0 + timedelta(minutes=2)))
    await ports.add_decision(ApprovalDecision(run_id, "U9", Decision.APPROVE, T0 + timedelta(minutes=1)))
    await ports.add_decision(ApprovalDecision(other, "U1", Decision.DENY, T0))
    decided = await ports.decisions(run_id)
    assert [(d.user_id, d.at) for d in decided] == [("U9", T0 + timedelta(minutes=1)), ("U1", T0 + timedelta(minutes=2))]
    assert await ports.decisions(other + 1000) == []


# --- backups ------------------------------------------------------------------------------------------------------

async def test_backups_are_listed_newest_first_and_deletion_is_remembered(ports: RunPorts) -> None:
    first = await ports.add_backup(BackupRecord("db", "postgres", Path("/b/1.dump"), 10, "aa", T0, verified_at=T0))
    second = await ports.add_backup(BackupRecord("db", "postgres", Path("/b/2.dump"), 20, "bb", T0 + timedelta(days=1),
                                                 BackupLabel.SAFETY))
    web = await ports.add_backup(BackupRecord("web", "directory", Path("/b/w.tar.gz"), 5, "cc", T0))
    assert [b.id for b in await ports.backups("db")] == [second, first]
    assert [b.id for b in await ports.backups()] == [second, web, first]
    assert [b.id for b in await ports.backups(limit=1)] == [second]
    await ports.mark_backup_deleted(first, T0 + timedelta(days=40))
    await ports.mark_backup_deleted(first, T0 + timedelta(days=41))  # deleted once: the first time stays
    assert [b.id for b in await ports.backups("db")] == [second]
    [gone] = [b for b in await ports.backups("db", include_deleted=True) if b.id == first]
    assert gone.deleted_at == T0 + timedelta(days=40) and gone.verified_at == T0
    record = await ports.get_backup(second)
    assert record is not None and record.label is BackupLabel.SAFETY and record.path == Path("/b/2.dump")
    assert (record.service, record.kind, record.size, record.sha256, record.deleted_at) == ("db", "postgres", 20, "bb", None)
    assert await ports.get_backup(second + 1000) is None


async def test_a_file_has_one_live_record(ports: RunPorts) -> None:
    path = Path("/b/db-1.dump")
    first = await ports.add_backup(BackupRecord("db", "postgres", path, 10, "aa", T0))
    assert await ports.add_backup(BackupRecord("db", "postgres", path, 10, "aa", T0 + timedelta(minutes=1))) == first
    assert len(await ports.backups("db")) == 1
    await ports.mark_backup_deleted(first, T0 + timedelta(days=1))
    rewritten = await ports.add_backup(BackupRecord("db", "postgres", path, 12, "dd", T0 + timedelta(days=2)))
    assert rewritten != first, "a file written again after its deletion is a new backup"
    assert [b.id for b in await ports.backups("db", include_deleted=True)] == [rewritten, first]


async def test_the_backup_of_a_run_is_the_one_it_wrote_not_a_restores_safety_backup(ports: RunPorts) -> None:
    await ports.add_backup(BackupRecord("db", "mysql", Path("/b/0.sql.gz"), 10, "a0", T0, run_id=7))
    written = await ports.add_backup(BackupRecord("db", "mysql", Path("/b/1.sql.gz"), 10, "aa", T0, run_id=7))
    await ports.add_backup(BackupRecord("db", "mysql", Path("/b/2.sql.gz"), 20, "bb", T0, BackupLabel.SAFETY, run_id=8))
    found = await ports.backup_of_run(7)
    assert found is not None and found.id == written, "the latest it wrote"
    assert await ports.backup_of_run(8) is None  # a restore run's safety backup is not "the backup it wrote"
    assert await ports.backup_of_run(9) is None


# --- leases -------------------------------------------------------------------------------------------------------

async def test_a_lease_has_one_holder_until_released_or_expired_and_tokens_grow(ports: RunPorts) -> None:
    tokens = await asyncio.gather(*(ports.acquire_lease("service:api", f"r{i}", 30, T0) for i in range(5)))
    held = [t for t in tokens if t is not None]
    assert len(held) == 1
    owner = f"r{tokens.index(held[0])}"
    assert await ports.renew_lease("service:api", owner, held[0], 30, T0 + timedelta(seconds=10)) is True
    assert await ports.renew_lease("service:api", "someone-else", held[0], 30, T0) is False
    assert await ports.acquire_lease("service:api", "r9", 30, T0 + timedelta(seconds=39)) is None, "renewed to 40 s"
    await ports.release_lease("service:api", "someone-else", held[0])  # not theirs to release: still held
    assert await ports.acquire_lease("service:api", "r9", 30, T0 + timedelta(seconds=11)) is None
    await ports.release_lease("service:api", owner, held[0])
    again = await ports.acquire_lease("service:api", "r9", 30, T0 + timedelta(seconds=11))
    assert again is not None and again > held[0]
    assert await ports.renew_lease("service:api", owner, held[0], 30, T0 + timedelta(seconds=12)) is False
    # Expired leases can be taken over; the old holder can no longer renew.
    later = await ports.acquire_lease("service:api", "r10", 30, T0 + timedelta(minutes=5))
    assert later is not None and later > again
    assert await ports.renew_lease("service:api", "r9", again, 30, T0 + timedelta(minutes=5)) is False
    assert await ports.acquire_lease("service:db", "r9", 30, T0) == 1, "each name has its own tokens"


async def test_a_plan_is_stored_as_its_step_rows_and_read_back_whole(ports: RunPorts) -> None:
    # Rows given for the first two steps (the first in another title, as a follow-up copies them), none for the third,
    # and an undo row past the plan (a Roll back's): the plan comes back as given, each row titled as its step.
    undo_row = ActionStep(3, "Undo “Restart api”", state=StepState.SUCCEEDED, undo={"image": "app:1"})
    run_id = await ports.create_action(a_run(
        plan=PLAN, steps=(ActionStep(0, "old words", state=StepState.SUCCEEDED, detail="done"), ActionStep(1, "x"),
                          undo_row)))
    run = await ports.get_action(run_id)
    assert run is not None and run.plan == PLAN
    assert [(s.position, s.title, s.state) for s in run.steps] == [
        (0, PLAN[0].title, StepState.SUCCEEDED), (1, PLAN[1].title, StepState.WAITING),
        (2, PLAN[2].title, StepState.WAITING), (3, "Undo “Restart api”", StepState.SUCCEEDED)]
    assert "plan" not in run.params
    # Saving a step's progress keeps its plan columns; a new undo row carries no plan step.
    await ports.save_step(run_id, ActionStep(1, PLAN[1].title, state=StepState.RUNNING))
    await ports.save_step(run_id, ActionStep(4, "Undo “Tell C1”", state=StepState.RUNNING))
    again = await ports.get_action(run_id)
    assert again is not None and again.plan == PLAN and len(again.steps) == 5
    assert [r.plan for r in await ports.actions()] == [PLAN]


async def test_a_run_without_a_plan_reads_back_with_none(ports: RunPorts) -> None:
    run = await ports.get_action(await ports.create_action(a_run()))
    assert run is not None and run.plan == () and [s.title for s in run.steps] == ["Restart container api",
                                                                                     "Wait until running"]
    assert run.outcome_data is None


async def test_a_stored_step_of_a_kind_no_module_registers_fails_loudly(ports: RunPorts) -> None:
    gone = PlannedStep(kind="teleport", service="api", args={}, title="Teleport api", undo=None, on_failure="stop",
                       timeout=60.0, retries=0)
    run_id = await ports.create_action(a_run(plan=(PLAN[0], gone)))
    with pytest.raises(UnknownStepKind) as raised:
        await ports.get_action(run_id)
    assert (raised.value.run_id, raised.value.position, raised.value.kind) == (run_id, 1, "teleport")
