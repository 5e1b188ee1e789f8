"""The run flows on their narrow ports, in milliseconds: request, approve, deny, expire, execute under leases,
heartbeat, hand over and take over, recovery, Cancel, and the follow-ups (Resume, Roll back, mark done) of the
built-in plans, against fake workloads behind `demo` targets and a health switch (tests/run_harness.py).

The same flows through signed Slack requests, SQL stores and real podman are tests/test_actions_e2e.py,
tests/test_runbooks_e2e.py and tests/test_runbook_restore_safety.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.executors.base import Effect
from bot.incidents.models import Incident
from bot.locks import LockUnavailable
from bot.runs import execution, follow_ups, requests, runbook_plans
from bot.runs.effects import awaits_people, stopped_step, unknown_step
from bot.runs.models import ActionKind, ActionRun, ActionState, Decision, StepState
from bot.runs.policy import NotAllowed
from bot.views.runs import (
    CANCEL_RUN_ACTION,
    MARK_DONE_ACTION,
    RESUME_ACTION,
    ROLL_BACK_ACTION,
    plan_lines,
    plan_message,
    run_message,
)
from tests.run_harness import (
    ALICE,
    BOB,
    CAROL,
    CHANNEL,
    MALLORY,
    START,
    Deps,
    acting,
    ended,
    failure,
    run_action,
    settle,
    stored,
    words,
)

DAVE = "UDAVE"  # in the on-call group SONCALL, which may approve in production


@pytest.fixture
async def deps() -> AsyncIterator[Deps]:
    deps = Deps()
    yield deps
    await deps.tasks.drain(timeout=0)  # a run a test left hanging is cut, as at shutdown


def buttons(run: ActionRun) -> set[str]:
    found = set()
    for block in run_message(run, []).blocks:
        for element in block.get("elements", []) if isinstance(block, dict) else []:
            if isinstance(element, dict) and "action_id" in element:
                found.add(element["action_id"])
    return found


async def turns() -> None:
    """Let every task that can go on do so (a heartbeat goes back to sleep on the clock)."""
    for _ in range(20):
        await asyncio.sleep(0)


def kinds(run: ActionRun) -> list[str]:
    return [step.kind for step in run.plan]


async def follow(deps: Deps, run: ActionRun, mode: str, *, by: str = ALICE) -> ActionRun:
    """Resume, Roll back or mark done `run`, in staging (no approval): returns the follow-up once it ended."""
    draft = await follow_ups.follow_up(deps, run.id or 0, by, mode)
    await requests.request(deps, draft.id or 0, by)
    await settle(deps)
    return await stored(deps, draft.id or 0)


# --- built-in plans -------------------------------------------------------------------------------------------------


async def test_a_restart_is_restart_then_a_health_check_and_is_reported(deps: Deps) -> None:
    draft = await requests.plan(deps, "web", ActionKind.RESTART, requested_by=ALICE, channel_id=CHANNEL)
    assert "Run now" in words(plan_message(draft)) and "none: it runs" in words(plan_message(draft))
    assert deps.workload("web").calls == []  # planning touches nothing
    await requests.request(deps, draft.id or 0, ALICE)
    await settle(deps)
    run = await stored(deps, draft.id or 0)

    ended(run, ActionState.SUCCEEDED)
    assert kinds(run) == ["restart", "check"]
    assert deps.workload("web").calls == ["restart"] and deps.checked == ["web"]
    assert [row.state for row in run.steps] == [StepState.SUCCEEDED, StepState.SUCCEEDED]
    assert deps.metrics.runs == [("restart", "succeeded")]
    assert [entry.args for entry in deps.store.audit] == [f"#{run.id} {what}" for what in
                                                          ("planned", "approved", "running", "succeeded")]
    # One message, posted when it was sent, re-rendered as it ran.
    assert [channel for channel, _ in deps.chat.posted] == [CHANNEL] and run.message_ts in deps.chat.updated


async def test_a_service_without_checks_is_restarted_without_a_health_step(deps: Deps) -> None:
    run = await run_action(deps, "quiet", ActionKind.RESTART)
    ended(run, ActionState.SUCCEEDED)
    assert kinds(run) == ["restart"]


async def test_a_failed_health_check_after_a_restart_stops_the_run_and_leaves_nothing_to_undo(deps: Deps) -> None:
    deps.healthy["web"] = False
    run = await run_action(deps, "web", ActionKind.RESTART)

    ended(run, ActionState.FAILED)
    assert [row.state for row in run.steps] == [StepState.SUCCEEDED, StepState.FAILED]
    assert deps.checked == ["web"] * 3  # the gate's three tries, its pauses passed on the clock
    assert deps.clock.slept == [2.0, 2.0]
    assert "web fails its health checks" in run.target_state and "after step 1 (Restart web" in run.target_state
    assert stopped_step(run) is None and not awaits_people(run)  # a restart has no undo: nothing for people to pick
    assert ROLL_BACK_ACTION not in buttons(run)


async def test_a_rollback_whose_health_fails_waits_for_people_and_roll_back_deploys_the_image_before(
        deps: Deps) -> None:
    deps.healthy["web"] = False
    run = await run_action(deps, "web", ActionKind.ROLLBACK)
    ended(run, ActionState.FAILED)
    assert kinds(run) == ["rollback", "check"] and deps.workload("web").image == "app:1.0"
    assert [row.state for row in run.steps] == [StepState.SUCCEEDED, StepState.FAILED], "stopped; nothing undone"
    assert "is not healthy after 3 tries" in run.outcome and "after step 1 (Roll web back" in run.target_state
    assert awaits_people(run) and {RESUME_ACTION, ROLL_BACK_ACTION} <= buttons(run)
    assert MARK_DONE_ACTION not in buttons(run), "no step's effect is unknown"

    draft = await follow_ups.follow_up(deps, run.id or 0, ALICE, "rollback")
    assert "deploy app:2.0 again" in "\n".join(plan_lines(draft))
    deps.healthy["web"] = True
    await requests.request(deps, draft.id or 0, ALICE)
    await settle(deps)
    back = await stored(deps, draft.id or 0)

    ended(back, ActionState.SUCCEEDED)
    assert back.steps[0].state is StepState.UNDONE
    assert deps.workload("web").calls == ["rollback", "deploy app:2.0"]
    assert deps.workload("web").image == "app:2.0"
    assert (await stored(deps, run.id or 0)).followed_by == back.id


async def test_an_interrupted_plain_restart_offers_resume_and_roll_back_and_resume_runs_it(deps: Deps) -> None:
    deps.workload("web").hang.add("restart")
    run = await requests.plan(deps, "web", ActionKind.RESTART, requested_by=ALICE, channel_id=CHANNEL)
    await requests.request(deps, run.id or 0, ALICE)
    await acting(deps.workload("web"))
    await deps.tasks.drain(timeout=0)  # opsbot is stopped mid-restart

    cut = await stored(deps, run.id or 0)
    ended(cut, ActionState.INTERRUPTED)
    assert cut.steps[0].state is StepState.RUNNING and awaits_people(cut)
    # What the restart did before opsbot stopped is unknown: people choose, as for a runbook.
    assert {RESUME_ACTION, ROLL_BACK_ACTION, MARK_DONE_ACTION} <= buttons(cut) and CANCEL_RUN_ACTION not in buttons(cut)

    deps.workload("web").hang.clear()
    resumed = await follow(deps, cut, "resume")
    ended(resumed, ActionState.SUCCEEDED)
    assert resumed.kind is ActionKind.RESTART and resumed.params["mode"] == "resume"
    assert [row.state for row in resumed.steps] == [StepState.SUCCEEDED, StepState.SUCCEEDED]
    assert deps.workload("web").calls == ["restart", "restart"] and deps.checked == ["web"]
    assert (await stored(deps, run.id or 0)).followed_by == resumed.id


async def test_a_step_of_unknown_effect_checked_by_hand_is_marked_done_and_not_run_again(deps: Deps) -> None:
    deps.workload("web").script["restart"] = [failure(Effect.UNKNOWN, "the connection dropped")]
    run = await run_action(deps, "web", ActionKind.RESTART)
    ended(run, ActionState.FAILED)
    assert unknown_step(run) == 0 and deps.checked == []
    assert {RESUME_ACTION, ROLL_BACK_ACTION, MARK_DONE_ACTION} <= buttons(run)

    done = await follow(deps, run, "done")

    ended(done, ActionState.SUCCEEDED)
    assert deps.workload("web").calls == ["restart"] and deps.checked == ["web"]
    assert f"checked by hand by <@{ALICE}>" in done.steps[0].detail


async def test_a_follow_up_is_taken_once_and_only_from_a_run_that_waits_for_people(deps: Deps) -> None:
    run = await run_action(deps, "web", ActionKind.RESTART)
    with pytest.raises(requests.NotPending):
        await follow_ups.follow_up(deps, run.id or 0, ALICE, "resume")


async def test_a_follow_up_needs_the_approval_the_run_needed_and_a_run_is_followed_up_once(deps: Deps) -> None:
    deps.healthy["api"] = False
    run = await asked(deps)
    await requests.decide(deps, run.id or 0, BOB, Decision.APPROVE)
    await settle(deps)
    stopped = await stored(deps, run.id or 0)
    ended(stopped, ActionState.FAILED)

    draft = await follow_ups.follow_up(deps, stopped.id or 0, CAROL, "rollback")
    with pytest.raises(requests.NotPending, match=f"already followed up by run #{draft.id} \\(draft\\)"):
        await follow_ups.follow_up(deps, stopped.id or 0, ALICE, "resume")
    back = await requests.request(deps, draft.id or 0, CAROL)
    assert back.state is ActionState.PENDING and back.approvals_needed == 1, "the same approval"
    with pytest.raises(NotAllowed, match="second person"):
        await requests.decide(deps, draft.id or 0, CAROL, Decision.APPROVE)
    await requests.decide(deps, draft.id or 0, DAVE, Decision.APPROVE)
    await settle(deps)
    ended(await stored(deps, draft.id or 0), ActionState.SUCCEEDED)
    assert deps.workload("api").calls == ["rollback", "deploy app:2.0"]


async def test_a_roll_back_that_stopped_while_undoing_can_be_rolled_back_again_but_not_resumed(deps: Deps) -> None:
    deps.healthy["web"] = False
    stopped = await run_action(deps, "web", ActionKind.ROLLBACK)
    deps.workload("web").hang.add("deploy")  # the Roll back's undo hangs, then opsbot is stopped
    draft = await follow_ups.follow_up(deps, stopped.id or 0, ALICE, "rollback")
    await requests.request(deps, draft.id or 0, ALICE)
    for _ in range(50):
        await turns()
        if "deploy app:2.0" in deps.workload("web").calls:
            break
    await deps.tasks.drain(timeout=0)
    cut = await stored(deps, draft.id or 0)
    ended(cut, ActionState.INTERRUPTED)
    assert len(cut.steps) > len(cut.plan)  # its undo row was under way

    with pytest.raises(requests.NotPending, match="already undoing what it changed when it stopped"):
        await follow_ups.follow_up(deps, cut.id or 0, ALICE, "resume")
    deps.workload("web").hang.clear()
    again = await follow(deps, cut, "rollback")
    ended(again, ActionState.SUCCEEDED)
    assert deps.workload("web").calls == ["rollback", "deploy app:2.0", "deploy app:2.0"]
    assert deps.workload("web").image == "app:2.0"


async def test_a_run_started_in_an_incident_channel_tells_its_story_on_the_incidents_timeline(deps: Deps) -> None:
    deps.store.incidents[CHANNEL] = Incident("checkout down", "sev1", ALICE, START, channel_id=CHANNEL, id=7)
    deps.healthy["web"] = False
    run = await run_action(deps, "web", ActionKind.RESTART)

    story = [(entry.incident_id, entry.text, entry.author) for entry in deps.store.entries]
    assert all(incident == 7 for incident, _, _ in story)
    texts = "\n".join(text for _, text, _ in story)
    assert f"Action #{run.id} restart web: running" in texts and f"Action #{run.id} restart web: failed" in texts
    assert "step 2 (Check the health of web" in texts and "failed" in texts  # the engine's own note


# --- approvals ------------------------------------------------------------------------------------------------------


async def asked(deps: Deps, service: str = "api", kind: ActionKind = ActionKind.ROLLBACK) -> ActionRun:
    run = await requests.plan(deps, service, kind, requested_by=ALICE, channel_id=CHANNEL)
    return await requests.request(deps, run.id or 0, ALICE, "the release broke logins")


async def test_the_requester_cannot_approve_and_a_stranger_cannot_either(deps: Deps) -> None:
    run = await asked(deps)
    assert run.state is ActionState.PENDING and run.reason == "the release broke logins"
    with pytest.raises(NotAllowed, match="second person"):
        await requests.decide(deps, run.id or 0, ALICE, Decision.APPROVE)
    with pytest.raises(NotAllowed, match="not an approver"):
        await requests.decide(deps, run.id or 0, MALLORY, Decision.APPROVE)
    assert (await stored(deps, run.id or 0)).state is ActionState.PENDING


async def test_an_approver_through_a_group_approves_and_it_runs_once(deps: Deps) -> None:
    run = await asked(deps)
    said = await requests.decide(deps, run.id or 0, DAVE, Decision.APPROVE)
    assert said.startswith("Approved: it runs now")
    with pytest.raises(requests.NotPending, match="Already approved"):
        await requests.decide(deps, run.id or 0, BOB, Decision.APPROVE)
    await settle(deps)

    ended(await stored(deps, run.id or 0), ActionState.SUCCEEDED)
    assert deps.workload("api").calls == ["rollback"] and deps.metrics.approvals == ["approved"]


async def test_approving_twice_counts_once_and_two_approvals_are_needed_for_a_production_restart(deps: Deps) -> None:
    run = await asked(deps, kind=ActionKind.RESTART)
    assert run.approvals_needed == 2
    assert (await requests.decide(deps, run.id or 0, BOB, Decision.APPROVE)).startswith("Approved (1 of 2)")
    with pytest.raises(requests.NotPending, match="already decided"):
        await requests.decide(deps, run.id or 0, BOB, Decision.APPROVE)
    assert deps.workload("api").calls == []
    assert (await requests.decide(deps, run.id or 0, CAROL, Decision.APPROVE)).startswith("Approved: it runs now")
    await settle(deps)
    ended(await stored(deps, run.id or 0), ActionState.SUCCEEDED)
    assert deps.workload("api").calls == ["restart"]


async def test_deny_ends_it_and_it_never_runs(deps: Deps) -> None:
    run = await asked(deps)
    assert (await requests.decide(deps, run.id or 0, BOB, Decision.DENY, "not during the sale")) == "Denied: it will not run."
    denied = await stored(deps, run.id or 0)
    ended(denied, ActionState.DENIED)
    assert "not during the sale" in denied.outcome and deps.workload("api").calls == []
    with pytest.raises(requests.NotPending, match="Already denied"):
        await requests.decide(deps, run.id or 0, CAROL, Decision.APPROVE)


async def test_the_requester_may_withdraw_by_denying(deps: Deps) -> None:
    run = await asked(deps)
    await requests.decide(deps, run.id or 0, ALICE, Decision.DENY)
    ended(await stored(deps, run.id or 0), ActionState.DENIED)


async def test_a_request_nobody_approves_in_time_expires_and_never_runs(deps: Deps) -> None:
    run = await asked(deps)
    deps.clock.advance(deps.catalog.approvals.expire_after_minutes * 60)
    with pytest.raises(requests.NotPending, match="expired"):
        await requests.decide(deps, run.id or 0, BOB, Decision.APPROVE)
    expired = await stored(deps, run.id or 0)
    ended(expired, ActionState.EXPIRED)
    assert deps.workload("api").calls == [] and deps.metrics.approvals == ["expired"]
    assert "⌛ Expired" in words(deps.chat.updated[expired.message_ts or ""])
    assert "nothing ran" in words(deps.chat.updated[expired.message_ts or ""])


async def test_the_expiry_chore_expires_drafts_and_requests(deps: Deps) -> None:
    pending = await asked(deps)
    draft = await requests.plan(deps, "web", ActionKind.RESTART, requested_by=ALICE, channel_id=CHANNEL)
    deps.clock.advance(deps.catalog.approvals.expire_after_minutes * 60)
    assert await requests.expire_due(deps) == 2
    for run in (pending, draft):
        ended(await stored(deps, run.id or 0), ActionState.EXPIRED)


async def test_a_draft_is_sent_only_by_its_requester_and_not_after_it_expired(deps: Deps) -> None:
    draft = await requests.plan(deps, "web", ActionKind.RESTART, requested_by=ALICE, channel_id=CHANNEL)
    with pytest.raises(NotAllowed):
        await requests.request(deps, draft.id or 0, BOB)
    deps.clock.advance(requests.DRAFT_MINUTES * 60)
    with pytest.raises(requests.NotPending, match="expired"):
        await requests.request(deps, draft.id or 0, ALICE)


# --- leases, Cancel, hand-over, recovery ----------------------------------------------------------------------------


async def test_a_second_action_on_a_service_that_is_running_one_is_refused_naming_it(deps: Deps) -> None:
    deps.workload("web").hang.add("restart")
    first = await requests.plan(deps, "web", ActionKind.RESTART, requested_by=ALICE, channel_id=CHANNEL)
    await requests.request(deps, first.id or 0, ALICE)
    await acting(deps.workload("web"))
    with pytest.raises(execution.ActionAlreadyRunning) as refused:
        await requests.plan(deps, "web", ActionKind.ROLLBACK, requested_by=BOB, channel_id=CHANNEL)
    assert f"restart web #{first.id} (requested by <@{ALICE}>) is under way on `web`" in str(refused.value)
    assert len(deps.chat.posted) == 1  # the first run's message only


async def test_a_running_runbook_holds_every_service_it_touches(deps: Deps) -> None:
    deps.workload("web").hang.add("restart")
    draft = await runbook_plans.plan(deps, "both", {}, requested_by=ALICE, channel_id=CHANNEL)
    await requests.request(deps, draft.id or 0, ALICE)
    await acting(deps.workload("web"))
    for service in ("quiet", "web"):
        with pytest.raises(execution.ActionAlreadyRunning) as refused:
            await requests.plan(deps, service, ActionKind.RESTART, requested_by=BOB, channel_id=CHANNEL)
        assert f"runbook both #{draft.id} (requested by <@{ALICE}>) is under way on `{service}`" in str(refused.value)
    with pytest.raises(execution.ActionAlreadyRunning):
        await runbook_plans.plan(deps, "both", {}, requested_by=BOB, channel_id=CHANNEL)


async def test_an_approved_run_finding_its_service_leased_elsewhere_does_not_run(deps: Deps) -> None:
    other = deps.replica("replica-b")
    assert await other.locks.acquire("service:web", 60) is not None
    run = await run_action(deps, "web", ActionKind.RESTART)

    ended(run, ActionState.FAILED)
    assert "Not run: another action is running on `web`" in run.outcome and "nothing ran" in run.target_state
    assert deps.workload("web").calls == []
    assert "❌ Failed: restart web" in words(deps.chat.updated[run.message_ts or ""])


async def test_an_unreachable_lock_store_refuses_to_act_and_says_so(deps: Deps) -> None:
    class Unreachable:
        async def acquire(self, name: str, ttl: float) -> None:
            raise LockUnavailable("Redis")

    deps.locks = Unreachable()
    run = await run_action(deps, "web", ActionKind.RESTART)

    ended(run, ActionState.FAILED)
    assert "cannot reach its lock store (Redis)" in run.outcome and "nothing was run" in run.outcome
    assert deps.workload("web").calls == []


async def test_cancel_stops_a_run_before_its_next_step_and_only_the_requester_or_an_approver_may(deps: Deps) -> None:
    async def press_cancel() -> None:  # while the rollback runs
        with pytest.raises(NotAllowed):
            await follow_ups.cancel_run(deps, run.id or 0, MALLORY)
        assert (await follow_ups.cancel_run(deps, run.id or 0, BOB)).startswith("Cancelling")
        assert "already cancelled" in await follow_ups.cancel_run(deps, run.id or 0, ALICE)

    deps.workload("api").hooks["rollback"] = press_cancel
    run = await asked(deps)
    await requests.decide(deps, run.id or 0, CAROL, Decision.APPROVE)
    await settle(deps)

    cancelled = await stored(deps, run.id or 0)
    ended(cancelled, ActionState.CANCELLED)
    assert cancelled.cancel_requested_by == BOB
    assert f"Cancelled by <@{BOB}> before step 2" in words(run_message(cancelled, []))
    assert deps.checked == []  # the health check never started
    assert deps.workload("api").calls == ["rollback", "deploy app:2.0"]  # what ran was undone
    assert CANCEL_RUN_ACTION not in buttons(cancelled)


async def test_a_stopping_replica_hands_over_at_a_step_boundary_and_another_goes_on_from_there(deps: Deps) -> None:
    deps.workload("web").hooks["restart"] = deps.handover.begin  # SIGTERM while the restart runs
    run = await run_action(deps, "web", ActionKind.RESTART)
    ended(run, ActionState.HANDED_OVER)
    assert [row.state for row in run.steps] == [StepState.SUCCEEDED, StepState.WAITING]

    other = deps.replica("replica-b")
    assert await execution.take_over(deps) == 0  # a draining replica takes nothing over
    assert await execution.take_over(other) == 1
    await settle(other)

    ended(await stored(deps, run.id or 0), ActionState.SUCCEEDED)
    assert deps.workload("web").calls == ["restart"]  # the restart ran once
    assert deps.checked == [] and other.checked == ["web"]  # the next replica went on from the check


async def test_a_run_approved_as_the_replica_stops_is_handed_over_before_it_starts(deps: Deps) -> None:
    deps.handover.begin()
    run = await run_action(deps, "web", ActionKind.RESTART)
    ended(run, ActionState.HANDED_OVER)
    assert deps.workload("web").calls == []


async def test_a_silent_replicas_run_is_interrupted_by_recovery_and_a_live_one_is_not(deps: Deps) -> None:
    deps.workload("web").hang.add("restart")
    live = await requests.plan(deps, "web", ActionKind.RESTART, requested_by=ALICE, channel_id=CHANNEL)
    await requests.request(deps, live.id or 0, ALICE)
    await acting(deps.workload("web"))
    dead = await requests.plan(deps, "quiet", ActionKind.RESTART, requested_by=ALICE, channel_id=CHANNEL)
    await deps.store.transition_action(dead.id or 0, ActionState.APPROVED, expect={ActionState.DRAFT},
                                       heartbeat_at=deps.clock.now())  # approved; its replica died before it ran

    other = deps.replica("replica-b")
    assert await execution.recover(other) == 0  # both fresh
    for _ in range(4):  # a lease time passes: the live run's heartbeat renews it, nobody speaks for the dead one
        await turns()
        deps.clock.advance(deps.settings.heartbeat_seconds)
    assert await execution.recover(other) == 1

    ended(await stored(deps, dead.id or 0), ActionState.INTERRUPTED)
    assert (await stored(deps, live.id or 0)).state is ActionState.RUNNING


async def test_a_run_whose_lease_is_lost_stops_interrupted(deps: Deps) -> None:
    deps.workload("web").hang.add("restart")
    run = await requests.plan(deps, "web", ActionKind.RESTART, requested_by=ALICE, channel_id=CHANNEL)
    await requests.request(deps, run.id or 0, ALICE)
    await acting(deps.workload("web"))
    # Another replica declared it dead (a long pause here): the heartbeat finds the run no longer its own.
    assert await deps.store.transition_action(run.id or 0, ActionState.INTERRUPTED, expect={ActionState.RUNNING})
    await turns()  # the heartbeat is asleep
    deps.clock.advance(deps.settings.heartbeat_seconds)
    await settle(deps)

    cut = await stored(deps, run.id or 0)
    ended(cut, ActionState.INTERRUPTED)
    assert await deps.locks.acquire("service:web", 60) is not None  # its lease was let go
