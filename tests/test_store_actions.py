"""Store contract for actions, approvals, backups, deploy history and leases — on both backends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.actions.models import (
    ActionKind,
    ActionRun,
    ActionState,
    ActionStep,
    ApprovalDecision,
    BackupLabel,
    BackupRecord,
    Decision,
    StepState,
)
from bot.executors.base import Effect
from bot.store import Store

T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def a_run(**changes: object) -> ActionRun:
    fields: dict = dict(service="api", kind=ActionKind.RESTART, environment="production", target="Docker container api",
                        requested_by="U1", created_at=T0, expires_at=T0 + timedelta(minutes=30), state=ActionState.PENDING,
                        params={"to": "v1"}, approvals_needed=2, approvers=("S0LEADS", "U9"), reason="memory leak",
                        steps=(ActionStep(0, "Restart container api"), ActionStep(1, "Wait until running")))
    fields.update(changes)
    return ActionRun(**fields)


async def test_an_action_run_round_trips_with_its_steps(store: Store) -> None:
    run_id = await store.create_action(a_run())
    run = await store.get_action(run_id)
    assert run is not None and run.id == run_id
    assert (run.kind, run.state, run.params, run.approvers, run.reason) == (ActionKind.RESTART, ActionState.PENDING, {"to": "v1"},
                                                                            ("S0LEADS", "U9"), "memory leak")
    assert run.expires_at == T0 + timedelta(minutes=30)
    assert [(s.position, s.title, s.state) for s in run.steps] == [(0, "Restart container api", StepState.WAITING),
                                                                   (1, "Wait until running", StepState.WAITING)]
    assert await store.get_action(run_id + 1000) is None


async def test_a_transition_happens_once_from_the_expected_state(store: Store) -> None:
    run_id = await store.create_action(a_run())
    results = await asyncio.gather(*(store.transition_action(run_id, ActionState.APPROVED, expect={ActionState.PENDING}) for _
                                     in range(8)))
    assert results.count(True) == 1
    assert await store.transition_action(run_id, ActionState.RUNNING, expect={ActionState.APPROVED}, started_at=T0) is True
    assert await store.transition_action(run_id, ActionState.DENIED, expect={ActionState.PENDING}) is False
    run = await store.get_action(run_id)
    assert run is not None and run.state is ActionState.RUNNING and run.started_at == T0


async def test_steps_are_updated_in_place(store: Store) -> None:
    run_id = await store.create_action(a_run())
    await store.save_step(run_id, ActionStep(0, "Restart container api", StepState.SUCCEEDED, "up in 1.2 s", T0, T0
                                             + timedelta(seconds=1)))
    run = await store.get_action(run_id)
    assert run is not None and run.steps[0].state is StepState.SUCCEEDED and run.steps[0].seconds == 1.0
    assert run.steps[1].state is StepState.WAITING


async def test_a_failed_steps_effect_is_kept_and_a_later_save_can_clear_it(store: Store) -> None:
    run_id = await store.create_action(a_run())
    await store.save_step(run_id, ActionStep(0, "Restore db", StepState.FAILED, effect=Effect.UNTOUCHED))
    await store.save_step(run_id, ActionStep(1, "Check db", StepState.FAILED, effect=Effect.UNKNOWN))
    run = await store.get_action(run_id)
    assert run is not None and [s.effect for s in run.steps] == [Effect.UNTOUCHED, Effect.UNKNOWN]
    await store.save_step(run_id, ActionStep(1, "Check db", StepState.SUCCEEDED))
    run = await store.get_action(run_id)
    assert run is not None and [s.effect for s in run.steps] == [Effect.UNTOUCHED, None]


async def test_a_runbook_step_keeps_what_its_undo_needs_and_cancel_is_asked_once(store: Store) -> None:
    run_id = await store.create_action(a_run(kind=ActionKind.RUNBOOK, params={"runbook": "deploy", "services": ["api", "db"]}))
    await store.save_step(run_id, ActionStep(0, "Deploy 2.0 to api", StepState.RUNNING, undo={"image": "app:1.0"}))
    await store.save_step(run_id, ActionStep(1, "Check", StepState.SKIPPED))
    await store.save_step(run_id, ActionStep(2, "Undo “Deploy 2.0 to api”", StepState.SUCCEEDED))
    run = await store.get_action(run_id)
    assert run is not None and run.kind is ActionKind.RUNBOOK and run.services == ("api", "db")
    assert [(s.state, s.undo) for s in run.steps] == [(StepState.RUNNING, {"image": "app:1.0"}), (StepState.SKIPPED, None),
                                                       (StepState.SUCCEEDED, None)]
    assert await store.request_cancel(run_id, "U2") is False, "a pending run is not running: nothing to cancel"
    await store.transition_action(run_id, ActionState.APPROVED, expect={ActionState.PENDING})
    assert await store.request_cancel(run_id, "U2") is True
    assert await store.request_cancel(run_id, "U3") is False
    run = await store.get_action(run_id)
    assert run is not None and run.cancel_requested_by == "U2"


async def test_listing_by_service_and_state_newest_first(store: Store) -> None:
    old = await store.create_action(a_run())
    new = await store.create_action(a_run(created_at=T0 + timedelta(minutes=1), state=ActionState.RUNNING))
    await store.create_action(a_run(service="db"))
    assert [r.id for r in await store.actions(service="api")] == [new, old]
    assert [r.id for r in await store.actions(service="api", states=[ActionState.RUNNING])] == [new]
    assert len(await store.actions()) == 3


async def test_expired_requests_are_found(store: Store) -> None:
    due = await store.create_action(a_run())
    await store.create_action(a_run(expires_at=T0 + timedelta(hours=2)))
    await store.create_action(a_run(state=ActionState.RUNNING))
    assert [r.id for r in await store.expired_actions(T0 + timedelta(minutes=31))] == [due]


async def test_each_person_decides_once(store: Store) -> None:
    run_id = await store.create_action(a_run())
    approve = ApprovalDecision(run_id, "U2", Decision.APPROVE, T0)
    assert await store.add_decision(approve) is True
    assert await store.add_decision(ApprovalDecision(run_id, "U2", Decision.DENY, T0)) is False
    assert await store.add_decision(ApprovalDecision(run_id, "U3", Decision.DENY, T0, "not now")) is True
    assert [(d.user_id, d.decision, d.reason) for d in await store.decisions(run_id)] == [("U2", Decision.APPROVE, ""),
                                                                                          ("U3", Decision.DENY, "not now")]


async def test_backups_are_listed_newest_first_and_deletion_is_remembered(store: Store) -> None:
    first = await store.add_backup(BackupRecord("db", "postgres", Path("/b/1.dump"), 10, "aa", T0, verified_at=T0))
    second = await store.add_backup(BackupRecord("db", "postgres", Path("/b/2.dump"), 20, "bb", T0 + timedelta(days=1),
                                                 BackupLabel.SAFETY))
    await store.add_backup(BackupRecord("web", "directory", Path("/b/w.tar.gz"), 5, "cc", T0))
    assert [b.id for b in await store.backups("db")] == [second, first]
    await store.mark_backup_deleted(first, T0 + timedelta(days=40))
    assert [b.id for b in await store.backups("db")] == [second]
    [gone] = [b for b in await store.backups("db", include_deleted=True) if b.id == first]
    assert gone.deleted_at == T0 + timedelta(days=40) and gone.verified_at == T0
    record = await store.get_backup(second)
    assert record is not None and record.label is BackupLabel.SAFETY and record.path == Path("/b/2.dump")


async def test_deploy_history_keeps_the_first_time_an_image_was_seen(store: Store) -> None:
    await store.record_deploy("api", "registry/api:1", "sha256:1", T0)
    await store.record_deploy("api", "registry/api:2", None, T0 + timedelta(days=1))
    await store.record_deploy("api", "registry/api:1", "sha256:1", T0 + timedelta(days=2))
    history = await store.deploy_history("api")
    assert [(r.image, r.created_at) for r in history] == [("registry/api:2", T0 + timedelta(days=1)), ("registry/api:1", T0)]
    assert await store.deploy_history("other") == []


async def test_a_lease_has_one_holder_until_released_or_expired_and_tokens_grow(store: Store) -> None:
    tokens = await asyncio.gather(*(store.acquire_lease("service:api", f"r{i}", 30, T0) for i in range(5)))
    held = [t for t in tokens if t is not None]
    assert len(held) == 1
    owner = f"r{tokens.index(held[0])}"
    assert await store.renew_lease("service:api", owner, held[0], 30, T0 + timedelta(seconds=10)) is True
    assert await store.renew_lease("service:api", "someone-else", held[0], 30, T0) is False
    await store.release_lease("service:api", owner, held[0])
    again = await store.acquire_lease("service:api", "r9", 30, T0 + timedelta(seconds=11))
    assert again is not None and again > held[0]
    # Expired leases can be taken over; the old holder can no longer renew.
    later = await store.acquire_lease("service:api", "r10", 30, T0 + timedelta(minutes=5))
    assert later is not None and later > again
    assert await store.renew_lease("service:api", "r9", again, 30, T0 + timedelta(minutes=5)) is False


async def test_an_interrupted_run_is_followed_up_by_one_live_run(store: Store) -> None:
    old = await store.create_action(a_run(kind=ActionKind.RUNBOOK, state=ActionState.INTERRUPTED))
    first = await store.create_action(a_run(state=ActionState.DRAFT))
    second = await store.create_action(a_run(state=ActionState.DRAFT))
    results = await asyncio.gather(store.claim_follow_up(old, first), store.claim_follow_up(old, second))
    assert results.count(True) == 1
    winner = first if results[0] else second
    assert (await store.get_action(old)).followed_by == winner  # type: ignore[union-attr]
    await store.transition_action(winner, ActionState.CANCELLED, expect={ActionState.DRAFT})
    loser = second if winner == first else first
    assert await store.claim_follow_up(old, loser) is True, "a dropped follow-up frees the run"


async def test_the_backup_of_a_run_is_the_one_it_wrote_not_a_restores_safety_backup(store: Store) -> None:
    written = await store.add_backup(BackupRecord("db", "mysql", Path("/b/1.sql.gz"), 10, "aa", T0, run_id=7))
    await store.add_backup(BackupRecord("db", "mysql", Path("/b/2.sql.gz"), 20, "bb", T0, BackupLabel.SAFETY, run_id=8))
    found = await store.backup_of_run(7)
    assert found is not None and found.id == written
    assert await store.backup_of_run(8) is None  # a restore run's safety backup is not "the backup it wrote"
    assert await store.backup_of_run(9) is None
