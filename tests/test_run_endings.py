"""Every ending of a run is a typed outcome: each one's words (made only by `bot.views.run_words`), the store's JSON
keeping its fields, and the run flows storing the right one — refused (busy, lock store away), denied, expired,
withdrawn, dropped, recovered, handed over — in memory, in milliseconds (tests/run_harness.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from pydantic import TypeAdapter

from bot.locks import LockUnavailable
from bot.runs import execution, requests
from bot.runs.models import SCHEDULER, ActionKind, ActionRun, ActionState, Decision
from bot.runs.outcomes import Ending, Holder, RunOutcome, StepRef
from bot.views.run_words import outcome_text
from bot.views.runs import run_message
from tests.run_harness import ALICE, BOB, CHANNEL, Deps, acting, ended, run_action, settle, stored, words

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
RUN = ActionRun(service="web", kind=ActionKind.RESTART, environment="staging", target="demo web",
                requested_by=ALICE, created_at=T0, expires_at=T0, id=3)
SERVICES = ("web",)


@pytest.fixture
async def deps() -> AsyncIterator[Deps]:
    deps = Deps()
    yield deps
    await deps.tasks.drain(timeout=0)


@pytest.mark.parametrize(("outcome", "text", "state"), [
    (RunOutcome(Ending.BUSY, SERVICES, held="web", holder=Holder(7, "rollback web", BOB)),
     "Not run: rollback web #7 (requested by <@UBOB>) is running on `web`. Ask again when it is done.",
     "untouched: nothing ran"),
    (RunOutcome(Ending.BUSY, SERVICES, held="web", holder=Holder(8, "runbook <nightly>", SCHEDULER)),
     "Not run: runbook &lt;nightly&gt; #8 (requested by the schedule) is running on `web`. Ask again when it is done.",
     "untouched: nothing ran"),
    (RunOutcome(Ending.BUSY, SERVICES, held="web"),
     "Not run: another action is running on `web`. Ask again when it is done.", "untouched: nothing ran"),
    (RunOutcome(Ending.UNREACHABLE, SERVICES, why="opsbot cannot reach its lock store (Redis) <down>"),
     "Not run: opsbot cannot reach its lock store (Redis) &lt;down&gt;", "untouched: nothing ran"),
    (RunOutcome(Ending.RECOVERED, SERVICES, started=True), "Interrupted: opsbot stopped while this was running.",
     "unknown: check `/ops health web` before trying again"),
    (RunOutcome(Ending.RECOVERED, SERVICES), "Interrupted: approved, but opsbot stopped before it started.",
     "unknown: check `/ops health web` before trying again"),
    (RunOutcome(Ending.INTERRUPTED, SERVICES), "Interrupted: opsbot was stopped while this was running.",
     "unknown, possibly mid-change: check `/ops health web` before trying again"),
    (RunOutcome(Ending.INTERRUPTED, SERVICES, lease_lost=True),
     "Interrupted: opsbot lost its lease on the service (is its lock store reachable?) while this was running.",
     "unknown, possibly mid-change: check `/ops health web` before trying again"),
    (RunOutcome(Ending.HALTED, SERVICES, why="run #3 is cancelled now; step 2 was not started"),
     "run #3 is cancelled now; step 2 was not started", "unchanged by the failing step; see the steps above"),
    (RunOutcome(Ending.HANDED_OVER, SERVICES),
     "Handed over before it started: this opsbot replica is stopping; the next one up goes on from there.", ""),
    (RunOutcome(Ending.HANDED_OVER, SERVICES, step=StepRef(1, "check web")),
     "Handed over before step 2: this opsbot replica is stopping; the next one up goes on from there.", ""),
    (RunOutcome(Ending.DENIED, SERVICES, denied_by=BOB, why="not during the <sale>"),
     "Denied by <@UBOB>: not during the &lt;sale&gt;", ""),
    (RunOutcome(Ending.DENIED, SERVICES, denied_by=BOB), "Denied by <@UBOB>", ""),
    (RunOutcome(Ending.EXPIRED, SERVICES), "Expired: nobody approved in time; nothing ran.", ""),
    (RunOutcome(Ending.PLAN_EXPIRED, SERVICES), "Expired: the plan was not sent in time; nothing ran.", ""),
    (RunOutcome(Ending.WITHDRAWN, SERVICES), "Withdrawn: it could not be posted in the channel.", ""),
    (RunOutcome(Ending.SUPERSEDED, SERVICES), "Not needed: another follow-up has this run.", ""),
    (RunOutcome(Ending.DROPPED, SERVICES), "Dropped by the requester before it was sent; nothing ran.", ""),
])
def test_each_ending_of_the_flows_has_its_words(outcome: RunOutcome, text: str, state: str) -> None:
    assert outcome_text(RUN, outcome) == (text, state)


@pytest.mark.parametrize(("ending", "final"), [
    (Ending.BUSY, ActionState.FAILED), (Ending.UNREACHABLE, ActionState.FAILED), (Ending.HALTED, ActionState.FAILED),
    (Ending.RECOVERED, ActionState.INTERRUPTED), (Ending.HANDED_OVER, ActionState.HANDED_OVER),
    (Ending.DENIED, ActionState.DENIED), (Ending.EXPIRED, ActionState.EXPIRED),
    (Ending.PLAN_EXPIRED, ActionState.EXPIRED), (Ending.WITHDRAWN, ActionState.CANCELLED),
    (Ending.SUPERSEDED, ActionState.CANCELLED), (Ending.DROPPED, ActionState.CANCELLED),
])
def test_each_ending_of_the_flows_names_the_state_the_run_ends_in(ending: Ending, final: ActionState) -> None:
    assert RunOutcome(ending, SERVICES).final is final


@pytest.mark.parametrize("ending", list(Ending))
def test_every_ending_has_words_and_survives_the_stores_json(ending: Ending) -> None:
    outcome = RunOutcome(ending, SERVICES, step=StepRef(0, "restart web"), why="it broke", cancelled_by=BOB,
                         denied_by=BOB, held="web", holder=Holder(7, "rollback web", BOB), started=True,
                         lease_lost=True, reference="abcd1234")
    text, _ = outcome_text(RUN, outcome)
    assert text.strip()
    as_stored = TypeAdapter(RunOutcome)  # how bot.store.actions_sql keeps `outcome_data`
    assert as_stored.validate_json(as_stored.dump_json(outcome)) == outcome


# --- the flows store the typed ending, and the message says it ------------------------------------------------------


async def test_a_run_refused_because_its_service_is_busy_stores_who_holds_it(deps: Deps) -> None:
    deps.workload("web").hang.add("restart")
    first = await requests.plan(deps, "web", ActionKind.RESTART, requested_by=BOB, channel_id=CHANNEL)
    second = await requests.plan(deps, "web", ActionKind.RESTART, requested_by=ALICE, channel_id=CHANNEL)
    await requests.request(deps, first.id or 0, BOB)
    await acting(deps.workload("web"))
    # Sent before the first started (a plan checks only when it is made): it is refused when it comes to run.
    await requests.request(deps, second.id or 0, ALICE)
    await settle_one(deps, second.id or 0)

    refused = await stored(deps, second.id or 0)
    ended(refused, ActionState.FAILED)
    assert refused.outcome_data == RunOutcome(Ending.BUSY, ("web",), held="web",
                                              holder=Holder(first.id or 0, "restart web", BOB))
    assert refused.outcome == (f"Not run: restart web #{first.id} (requested by <@UBOB>) is running on `web`. "
                               "Ask again when it is done.")
    assert refused.target_state == "untouched: nothing ran"
    assert refused.outcome in words(run_message(refused, []))
    assert [e.outcome.value for e in deps.store.audit if e.args == f"#{second.id} refused"] == ["rejected"]


async def settle_one(deps: Deps, run_id: int) -> None:
    """Until the run `run_id` has left approved (the other, hanging one keeps the tasks busy)."""
    for _ in range(100):
        if (await stored(deps, run_id)).state is not ActionState.APPROVED:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"run #{run_id} is still approved")


async def test_a_run_refused_because_the_lock_store_is_away_stores_why_and_is_audited_as_an_error(deps: Deps) -> None:
    class Unreachable:
        async def acquire(self, name: str, ttl: float) -> None:
            raise LockUnavailable("Redis")

    deps.locks = Unreachable()
    run = await run_action(deps, "web", ActionKind.RESTART)
    assert run.outcome_data is not None and run.outcome_data.ending is Ending.UNREACHABLE
    assert run.outcome == f"Not run: {run.outcome_data.why}" and "Redis" in run.outcome_data.why
    assert [e.outcome.value for e in deps.store.audit if e.args == f"#{run.id} refused"] == ["error"]


async def test_a_denial_stores_who_denied_and_why(deps: Deps) -> None:
    run = await requests.plan(deps, "api", ActionKind.ROLLBACK, requested_by=ALICE, channel_id=CHANNEL)
    await requests.request(deps, run.id or 0, ALICE)
    await requests.decide(deps, run.id or 0, BOB, Decision.DENY, "not during the <sale>")
    denied = await stored(deps, run.id or 0)
    assert denied.outcome_data == RunOutcome(Ending.DENIED, ("api",), denied_by=BOB, why="not during the <sale>")
    assert denied.outcome == "Denied by <@UBOB>: not during the &lt;sale&gt;"
    assert denied.outcome in words(deps.chat.updated[denied.message_ts or ""])


async def test_an_expired_request_and_an_unsent_plan_end_differently(deps: Deps) -> None:
    asked = await requests.plan(deps, "api", ActionKind.ROLLBACK, requested_by=ALICE, channel_id=CHANNEL)
    await requests.request(deps, asked.id or 0, ALICE)
    unsent = await requests.plan(deps, "web", ActionKind.RESTART, requested_by=ALICE, channel_id=CHANNEL)
    deps.clock.advance(deps.catalog.approvals.expire_after_minutes * 60)
    assert await requests.expire_due(deps) == 2
    expired, dropped = await stored(deps, asked.id or 0), await stored(deps, unsent.id or 0)
    assert (expired.state, expired.outcome_data) == (ActionState.EXPIRED, RunOutcome(Ending.EXPIRED, ("api",)))
    assert (dropped.state, dropped.outcome_data) == (ActionState.EXPIRED, RunOutcome(Ending.PLAN_EXPIRED, ("web",)))
    assert "nobody approved in time" in words(deps.chat.updated[expired.message_ts or ""])


async def test_a_plan_sent_too_late_expires_as_a_plan(deps: Deps) -> None:
    draft = await requests.plan(deps, "web", ActionKind.RESTART, requested_by=ALICE, channel_id=CHANNEL)
    deps.clock.advance(requests.DRAFT_MINUTES * 60)
    with pytest.raises(requests.NotPending):
        await requests.request(deps, draft.id or 0, ALICE)
    late = await stored(deps, draft.id or 0)
    assert late.state is ActionState.EXPIRED and late.outcome_data == RunOutcome(Ending.PLAN_EXPIRED, ("web",))


async def test_a_request_that_cannot_be_posted_is_withdrawn_and_a_dropped_plan_says_so(deps: Deps) -> None:
    async def down(channel: str, message: object, **_: object) -> str:
        raise ConnectionError("Slack is away")

    dropped = await requests.plan(deps, "web", ActionKind.RESTART, requested_by=ALICE, channel_id=CHANNEL)
    await requests.cancel(deps, dropped.id or 0, ALICE)
    run = await requests.plan(deps, "api", ActionKind.ROLLBACK, requested_by=ALICE, channel_id=CHANNEL)
    deps.chat.post = down  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await requests.request(deps, run.id or 0, ALICE)
    withdrawn = await stored(deps, run.id or 0)
    assert (withdrawn.state, withdrawn.outcome_data) == (ActionState.CANCELLED, RunOutcome(Ending.WITHDRAWN, ("api",)))
    assert withdrawn.outcome == "Withdrawn: it could not be posted in the channel."
    assert (await stored(deps, dropped.id or 0)).outcome_data == RunOutcome(Ending.DROPPED, ("web",))


async def test_recovery_stores_whether_the_silent_run_had_started(deps: Deps) -> None:
    approved = await requests.plan(deps, "quiet", ActionKind.RESTART, requested_by=ALICE, channel_id=CHANNEL)
    await deps.store.transition_action(approved.id or 0, ActionState.APPROVED, expect={ActionState.DRAFT},
                                       heartbeat_at=deps.clock.now())  # its replica died before it ran
    deps.clock.advance(deps.settings.lease_seconds + 1)
    assert await execution.recover(deps.replica("replica-b")) == 1
    recovered = await stored(deps, approved.id or 0)
    ended(recovered, ActionState.INTERRUPTED)
    assert recovered.outcome_data == RunOutcome(Ending.RECOVERED, ("quiet",), started=False)
    assert recovered.outcome == "Interrupted: approved, but opsbot stopped before it started."
    assert recovered.target_state == "unknown: check `/ops health quiet` before trying again"


async def test_a_run_approved_as_its_replica_stops_is_handed_over_before_it_started(deps: Deps) -> None:
    deps.handover.draining = True
    run = await requests.plan(deps, "web", ActionKind.RESTART, requested_by=ALICE, channel_id=CHANNEL)
    await requests.request(deps, run.id or 0, ALICE)
    await settle(deps)
    handed = await stored(deps, run.id or 0)
    ended(handed, ActionState.HANDED_OVER)
    assert handed.outcome_data == RunOutcome(Ending.HANDED_OVER, ("web",))
    assert f"*{handed.outcome}*" in words(deps.chat.updated[handed.message_ts or ""])
    assert deps.workload("web").calls == []
