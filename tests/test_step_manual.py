"""The `manual` step kind in milliseconds (tests/run_harness.py): a runbook that restarts, waits for a person's
Done / Skip / Failed, then restarts again; the reminder, Cancel while waiting, a crash while waiting and Resume, the
audit log and the incident's timeline. The same through signed Slack requests is at the end of this file.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import aiohttp
import pytest

from bot.catalog_loading import catalog_warnings, parse_catalog
from bot.errors import StaleButton
from bot.executors.base import Effect
from bot.incidents.models import Incident
from bot.runs import follow_ups, manual_answers, requests, runbook_plans
from bot.runs.effects import awaits_people
from bot.runs.models import ActionRun, ActionState, Answer, StepState
from bot.runs.outcomes import Ending
from bot.runs.policy import NotAllowed
from bot.runs.steps import REGISTRY, traits
from bot.views import Message
from bot.views.manual_steps import DONE_ACTION, FAILED_ACTION, SKIP_ACTION
from bot.views.runs import CANCEL_RUN_ACTION, MARK_DONE_ACTION, RESUME_ACTION, ROLL_BACK_ACTION, run_message
from playground.payloads import block_action
from playground.slack_api import FakeSlack
from tests import test_approvals as e2e
from tests.conftest import RunningBot, make_settings, start_bot
from tests.run_harness import ALICE, BOB, CATALOG, CHANNEL, START, Chat, Deps, ended, settle, stored, words

CHECKLIST = CATALOG + """
  checklist:
    services: [web]
    approvals: {approvals: 0}
    steps:
      - {kind: restart, service: web}
      - kind: manual
        name: Check the dashboard
        instructions: "Open *the checkout dashboard* and confirm the error rate is below 1%."
      - {kind: restart, service: web, name: Restart web again}
  looked:
    services: [web]
    approvals: {approvals: 0}
    steps:
      - {kind: restart, service: web}
      - {kind: manual, instructions: "Open the shop and buy something.", read_only: true}
      - {kind: restart, service: web, name: Restart web again}
  quick:
    services: [web]
    approvals: {approvals: 0}
    steps:
      - {kind: manual, instructions: "Look at it", timeout: 0.05}
"""


@dataclass
class ThreadChat(Chat):
    """The harness's chat, keeping the thread each post went to."""

    threads: list[str | None] = field(default_factory=list)

    async def post(self, channel: str, message: Message, *, thread_ts: str | None = None,
                   key: str | None = None) -> str:
        self.threads.append(thread_ts)
        return await super().post(channel, message, thread_ts=thread_ts, key=key)


@pytest.fixture
async def deps() -> AsyncIterator[Deps]:
    deps = Deps(catalog=parse_catalog(CHECKLIST), chat=ThreadChat())
    yield deps
    await deps.tasks.drain(timeout=0)


async def started(deps: Deps, runbook: str = "checklist") -> int:
    draft = await runbook_plans.plan(deps, runbook, {}, requested_by=ALICE, channel_id=CHANNEL)
    await requests.request(deps, draft.id or 0, ALICE)
    return draft.id or 0


async def waiting(deps: Deps, run_id: int, position: int = 1) -> ActionRun:
    """Until step `position` of the run waits for a person."""
    for _ in range(10_000):
        run = await stored(deps, run_id)
        if run.state is ActionState.RUNNING and run.steps[position].state is StepState.RUNNING:
            return run
        await asyncio.sleep(0)
    raise AssertionError("the manual step never started waiting")


def buttons(run: ActionRun) -> dict[str, str]:
    """Every button of the run's message: action id → value."""
    found: dict[str, str] = {}
    for block in run_message(run, []).blocks:
        for element in block.get("elements", []) if isinstance(block, dict) else []:
            if isinstance(element, dict) and "action_id" in element:
                found[element["action_id"]] = element.get("value", "")
    return found


def test_a_manual_step_changes_things_cannot_be_undone_and_is_unknown_when_cut_short() -> None:
    assert "manual" in REGISTRY
    kind = traits("manual")
    assert kind.changes and kind.undo is None and kind.cut_short is Effect.UNKNOWN


async def test_the_run_waits_shows_the_instructions_and_done_goes_on_audited(deps: Deps) -> None:
    run_id = await started(deps)
    run = await waiting(deps, run_id)

    shown = words(run_message(run, []))
    assert "Open *the checkout dashboard* and confirm the error rate is below 1%." in shown  # mrkdwn kept
    pressable = buttons(run)
    assert pressable[DONE_ACTION] == pressable[SKIP_ACTION] == pressable[FAILED_ACTION] == f"{run_id}:1"
    assert CANCEL_RUN_ACTION in pressable  # Cancel works while it waits
    assert deps.workload("web").calls == ["restart"]  # the step after it waits too

    told = await manual_answers.answer(deps, run_id, 1, Answer.DONE, BOB)
    assert "Step 2 marked done" in told
    with pytest.raises(StaleButton):  # the first press wins; a second is out of date
        await manual_answers.answer(deps, run_id, 1, Answer.FAILED, ALICE)
    await settle(deps)

    done = await stored(deps, run_id)
    ended(done, ActionState.SUCCEEDED)
    assert [row.state for row in done.steps] == [StepState.SUCCEEDED] * 3
    assert deps.workload("web").calls == ["restart", "restart"]
    answer = done.steps[1].answer
    assert answer is not None and (answer.answer, answer.by) == (Answer.DONE, BOB)
    assert f"marked done by <@{BOB}>" in words(run_message(done, []))
    assert DONE_ACTION not in buttons(done)
    audited = [(entry.actor_id, entry.args) for entry in deps.store.audit]
    assert (BOB, f"#{run_id} step 2 done") in audited


async def test_skip_marks_the_step_skipped_and_the_run_goes_on(deps: Deps) -> None:
    run_id = await started(deps)
    await waiting(deps, run_id)
    await manual_answers.answer(deps, run_id, 1, Answer.SKIPPED, BOB)
    await settle(deps)

    done = await stored(deps, run_id)
    ended(done, ActionState.SUCCEEDED)
    assert [row.state for row in done.steps] == [StepState.SUCCEEDED, StepState.SKIPPED, StepState.SUCCEEDED]


async def failed_by_bob(deps: Deps, runbook: str = "checklist") -> ActionRun:
    """The run of `runbook` once Bob has answered its manual step (the second) Failed and the run has settled."""
    run_id = await started(deps, runbook)
    await waiting(deps, run_id)
    await manual_answers.answer(deps, run_id, 1, Answer.FAILED, BOB)
    await settle(deps)
    return await stored(deps, run_id)


async def test_failed_stops_the_run_with_an_unknown_effect_for_people_to_decide(deps: Deps) -> None:
    stopped = await failed_by_bob(deps)
    assert stopped.outcome_data is not None and stopped.outcome_data.ending is Ending.UNKNOWN
    assert [row.state for row in stopped.steps] == [StepState.SUCCEEDED, StepState.FAILED, StepState.SKIPPED]
    assert stopped.steps[1].effect is Effect.UNKNOWN
    assert deps.workload("web").calls == ["restart"]  # neither retried nor undone: people decide
    assert awaits_people(stopped)
    assert {RESUME_ACTION, ROLL_BACK_ACTION, MARK_DONE_ACTION} <= set(buttons(stopped))


async def test_a_step_a_person_only_looks_at_changes_nothing_and_failed_stops_the_run_untouched(deps: Deps) -> None:
    looks = REGISTRY["manual"].traits_for({"read_only": True})
    assert not looks.changes and looks.cut_short is Effect.UNTOUCHED and looks.on_failure == "stop"
    stopped = await failed_by_bob(deps, "looked")
    assert stopped.outcome_data is not None and stopped.outcome_data.ending is Ending.STOPPED
    assert [row.state for row in stopped.steps] == [StepState.SUCCEEDED, StepState.FAILED, StepState.SKIPPED]
    assert stopped.steps[1].effect is Effect.UNTOUCHED
    assert deps.workload("web").calls == ["restart"]  # stopped there, nothing undone: Resume or Roll back
    warnings = " ".join(catalog_warnings(parse_catalog(CHECKLIST)))
    # A look changes nothing: only the restart is said to have no undo, where the checklist's manual step is too.
    assert "runbooks.looked.steps[1]: `restart` has no undo" in warnings
    assert "runbooks.checklist.steps: 2 steps have no undo: 1 (`restart`), 2 (`manual`)" in warnings


async def test_one_reminder_in_the_runs_thread_after_the_set_time(deps: Deps) -> None:
    run_id = await started(deps)
    await waiting(deps, run_id)
    for _ in range(100_000):  # the waiting step's polls move the clock on
        if deps.clock.now() >= START + timedelta(minutes=40):
            break
        await asyncio.sleep(0)
    run = await stored(deps, run_id)
    chat = deps.chat
    assert isinstance(chat, ThreadChat)
    reminders = [(thread, message) for thread, (_, message) in zip(chat.threads, chat.posted, strict=True)
                 if "still waiting for a person" in words(message)]
    assert len(reminders) == 1  # once, not every 15 minutes
    assert reminders[0][0] == run.message_ts is not None  # in the run's thread
    await manual_answers.answer(deps, run_id, 1, Answer.DONE, BOB)
    await settle(deps)


async def test_cancel_while_waiting_ends_the_run_cancelled(deps: Deps) -> None:
    run_id = await started(deps)
    await waiting(deps, run_id)
    await follow_ups.cancel_run(deps, run_id, ALICE)
    await settle(deps)

    cancelled = await stored(deps, run_id)
    ended(cancelled, ActionState.CANCELLED)
    assert [row.state for row in cancelled.steps] == [StepState.SUCCEEDED, StepState.FAILED, StepState.SKIPPED]
    assert cancelled.steps[1].effect is Effect.UNTOUCHED and "cancelled while waiting" in cancelled.steps[1].detail
    with pytest.raises(StaleButton):
        await manual_answers.answer(deps, run_id, 1, Answer.DONE, BOB)


async def test_a_crash_while_waiting_interrupts_the_run_and_resume_asks_again(deps: Deps) -> None:
    run_id = await started(deps)
    await waiting(deps, run_id)
    await deps.tasks.drain(timeout=0)  # opsbot stops while the person is still at it

    cut = await stored(deps, run_id)
    ended(cut, ActionState.INTERRUPTED)
    assert DONE_ACTION not in buttons(cut) and RESUME_ACTION in buttons(cut)

    draft = await follow_ups.follow_up(deps, run_id, ALICE, "resume")
    await requests.request(deps, draft.id or 0, ALICE)
    resumed = await waiting(deps, draft.id or 0)
    assert resumed.steps[1].answer is None and buttons(resumed)[DONE_ACTION] == f"{draft.id}:1"  # asked again
    await manual_answers.answer(deps, draft.id or 0, 1, Answer.DONE, BOB)
    await settle(deps)
    ended(await stored(deps, draft.id or 0), ActionState.SUCCEEDED)
    assert deps.workload("web").calls == ["restart", "restart"]  # the first restart was not run again


async def test_in_an_incident_channel_the_answer_goes_on_the_timeline(deps: Deps) -> None:
    deps.store.incidents[CHANNEL] = Incident("checkout down", "sev1", ALICE, START, channel_id=CHANNEL, id=7)
    run_id = await started(deps)
    await waiting(deps, run_id)
    await manual_answers.answer(deps, run_id, 1, Answer.SKIPPED, BOB)
    await settle(deps)

    story = [(entry.text, entry.author) for entry in deps.store.entries]
    assert any("step 2 (Check the dashboard) marked skipped" in text and author == BOB for text, author in story)


async def test_only_a_person_answers_and_only_a_step_that_waits(deps: Deps) -> None:
    run_id = await started(deps)
    await waiting(deps, run_id)
    with pytest.raises(NotAllowed):
        await manual_answers.answer(deps, run_id, 1, Answer.DONE, "B0BOTUSER")
    with pytest.raises(StaleButton):  # the restart before it is not a step a person answers
        await manual_answers.answer(deps, run_id, 0, Answer.DONE, BOB)
    await manual_answers.answer(deps, run_id, 1, Answer.DONE, BOB)
    await settle(deps)


async def test_nobody_answering_in_time_leaves_the_step_unknown(deps: Deps) -> None:
    run_id = await started(deps, "quick")
    for _ in range(200):
        if (await stored(deps, run_id)).state.final:
            break
        await asyncio.sleep(0.01)
    stopped = await stored(deps, run_id)
    assert stopped.outcome_data is not None and stopped.outcome_data.ending is Ending.UNKNOWN
    assert stopped.steps[0].effect is Effect.UNKNOWN




# --- end to end: signed Slack requests, both SQL stores ---------------------------------------------------------------

E2E_CATALOG = """
services:
  shop:
    environment: staging
runbooks:
  shop-check:
    services: [shop]
    approvals: {approvals: 0}
    steps:
      - kind: manual
        instructions: "Confirm *the last order* reached the warehouse."
      - {kind: notify, text: "shop checked"}
"""


@pytest.fixture
async def bot(slack: FakeSlack, database_url: str, http: aiohttp.ClientSession) -> AsyncIterator[RunningBot]:
    running, runner = await start_bot(make_settings(slack, database_url), E2E_CATALOG, slack, http)
    yield running
    await runner.cleanup()


async def test_a_person_presses_done_through_slack_and_the_run_goes_on(bot: RunningBot) -> None:
    plan = await e2e.ops(bot, "run shop-check")
    run_id = e2e.button(plan, "action.request")["value"]
    body, content_type = block_action("action.request", run_id, user=e2e.ALICE, channel=e2e.CHANNEL,
                                      response_url=bot.slack.response_url())
    assert (await bot.post(body, content_type)).status == 200  # not settled: the run now waits for a person

    for _ in range(200):
        messages = [m for m in bot.slack.messages.values() if f"Runbook run #{run_id} " in e2e.text(m)]
        if messages and DONE_ACTION in e2e.text(messages[-1]):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the run's message never showed the manual step's buttons")
    waiting_message = messages[-1]
    assert "Confirm *the last order* reached the warehouse." in e2e.text(waiting_message)
    assert e2e.button(waiting_message, DONE_ACTION)["value"] == f"{run_id}:0"

    assert "Step 1 marked done" in await e2e.click(bot, DONE_ACTION, f"{run_id}:0", e2e.BOB)
    assert "out of date" in await e2e.click(bot, SKIP_ACTION, f"{run_id}:0", e2e.ALICE)  # the first press won

    run = await bot.ctx.store.get_action(int(run_id))
    assert run is not None and run.state is ActionState.SUCCEEDED, run
    answer = run.steps[0].answer
    assert answer is not None and (answer.answer, answer.by) == (Answer.DONE, e2e.BOB)
    final = [m for m in bot.slack.messages.values() if f"Runbook run #{run_id} " in e2e.text(m)][-1]
    assert f"marked done by <@{e2e.BOB}>" in e2e.text(final) and DONE_ACTION not in e2e.text(final)


async def test_an_answer_taken_on_this_replica_wakes_the_waiting_step_at_once() -> None:
    from bot.clock import SystemClock
    from bot.runs.wakeups import Wakeups

    wakeups, clock = Wakeups(), SystemClock()
    started = asyncio.get_running_loop().time()
    waiting = asyncio.create_task(wakeups.wait(7, clock, 30))
    await asyncio.sleep(0.01)
    wakeups.wake(8)  # another run's answer: still waiting
    await asyncio.sleep(0.01)
    assert not waiting.done()
    wakeups.wake(7)
    await asyncio.wait_for(waiting, 1)
    assert asyncio.get_running_loop().time() - started < 1
    await asyncio.wait_for(wakeups.wait(7, clock, 0.01), 1)  # nobody wakes it: the poll's time still ends it
