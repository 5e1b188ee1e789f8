"""What the runbook engine does with a failed step, by its typed effect on the target (`bot/runs/effects.py`):
an untouched step is retried and never undone, a changed one is retried and undone, an unknown one is neither
retried nor undone — the run stops for people, who Resume, Roll back, or mark the step done after checking it by
hand. First the rules alone, then the run flows following them (on their in-memory ports, tests/run_harness.py)
through real `maintenance` and `http` steps against a small HTTP app whose answers decide each step's effect.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from bot.catalog_loading import parse_catalog
from bot.executors.base import Effect, ExecutorError
from bot.runbooks.definitions import TRAITS
from bot.runs import follow_ups, requests, runbook_plans
from bot.runs.effects import AFTER_FAILURE, combined, needs_undo
from bot.runs.models import ActionRun, ActionState, ActionStep, StepState
from bot.views.effects import effect_text
from bot.views.runs import MARK_DONE_ACTION, RESUME_ACTION, ROLL_BACK_ACTION, run_buttons, run_message
from tests.run_harness import ALICE, CHANNEL, Deps, settle, stored, words
from tests.targets import serve

# --- the rules ------------------------------------------------------------------------------------------------


def test_an_untouched_failure_may_be_retried_and_its_own_undo_never_runs() -> None:
    after = AFTER_FAILURE[Effect.UNTOUCHED]
    assert (after.retry, after.undo_own, after.automatic) == (True, False, True)


def test_a_changed_failure_may_be_retried_and_is_undone() -> None:
    after = AFTER_FAILURE[Effect.CHANGED]
    assert (after.retry, after.undo_own, after.automatic) == (True, True, True)


def test_an_unknown_failure_is_neither_retried_nor_undone_and_leaves_it_to_people() -> None:
    after = AFTER_FAILURE[Effect.UNKNOWN]
    assert (after.retry, after.undo_own, after.automatic) == (False, False, False)


@pytest.mark.parametrize(("tries", "effect"), [
    ([], Effect.UNTOUCHED),
    ([Effect.UNTOUCHED, Effect.UNTOUCHED], Effect.UNTOUCHED),
    ([Effect.CHANGED, Effect.UNTOUCHED], Effect.CHANGED),  # a later refusal does not take back the first try
    ([Effect.UNTOUCHED, Effect.CHANGED], Effect.CHANGED),
    ([Effect.CHANGED, Effect.UNKNOWN], Effect.UNKNOWN),
])
def test_the_tries_of_one_step_add_up_to_the_least_known_effect(tries: list[Effect], effect: Effect) -> None:
    assert combined(tries) is effect


@pytest.mark.parametrize(("state", "effect", "by_engine", "by_people"), [
    (StepState.SUCCEEDED, None, True, True),
    (StepState.FAILED, Effect.CHANGED, True, True),
    (StepState.FAILED, Effect.UNTOUCHED, False, False),  # even a person's Roll back must not undo others' writes
    (StepState.FAILED, Effect.UNKNOWN, False, True),
    (StepState.FAILED, None, False, True),  # failed before effects were recorded: unknown
    (StepState.RUNNING, None, False, True),  # cut short by a crash
    (StepState.SKIPPED, None, False, False),
    (StepState.WAITING, None, False, False),
    (StepState.UNDONE, None, False, False),
])
def test_which_steps_a_roll_back_puts_back(state: StepState, effect: Effect | None, by_engine: bool,
                                            by_people: bool) -> None:
    row = ActionStep(0, "a step", state=state, effect=effect)
    assert needs_undo(row, chosen_by_people=False) is by_engine
    assert needs_undo(row, chosen_by_people=True) is by_people


def test_a_step_cut_short_is_untouched_only_for_kinds_that_do_not_act() -> None:
    acting = {kind for kind, traits in TRAITS.items() if traits.cut_short is Effect.UNKNOWN}
    assert acting == {kind for kind, traits in TRAITS.items() if traits.changes} | {"http"}
    assert {kind for kind in TRAITS if kind not in acting} == {"check", "backup", "retention", "collect-logs", "notify", "wait",
                                                                 "query"}


def test_an_executor_error_cannot_be_raised_without_saying_its_effect() -> None:
    with pytest.raises(TypeError):
        ExecutorError("failed", state="somewhere")  # type: ignore[call-arg]
    assert ExecutorError("failed", state="as it was", effect=Effect.UNTOUCHED).effect is Effect.UNTOUCHED


def test_every_effect_has_words() -> None:
    assert {effect_text(effect) for effect in Effect} and len({effect_text(e) for e in Effect}) == len(Effect)


# --- the engine following them --------------------------------------------------------------------------------


@dataclass
class App:
    """Maintenance on/off that works, and /answer/<status> that answers with that status; every hit counted."""

    maintenance: list[str] = field(default_factory=list)
    hits: Counter[str] = field(default_factory=Counter)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
async def app() -> AsyncIterator[App]:
    state = App()

    async def maintenance(request: web.Request) -> web.Response:
        state.maintenance.append(request.match_info["mode"])
        return web.Response(text="ok")

    async def answer(request: web.Request) -> web.Response:
        state.hits[request.path] += 1
        return web.Response(status=int(request.match_info["status"]), text="as asked")

    server = web.Application()
    server.router.add_post("/maintenance/{mode}", maintenance)
    server.router.add_post("/answer/{status}", answer)
    runner, state.port = await serve(server)
    yield state
    await runner.cleanup()


@pytest.fixture
async def deps(http: aiohttp.ClientSession, app: App) -> AsyncIterator[Deps]:
    catalog = f"""
approvals:
  environments:
    staging: {{default: {{approvals: 0}}}}
services:
  shop:
    environment: staging
    maintenance: {{type: http, on_url: "{app.url('/maintenance/on')}", off_url: "{app.url('/maintenance/off')}"}}
  legacy:  # refuses to go into maintenance
    environment: staging
    maintenance: {{type: http, on_url: "{app.url('/answer/403')}", off_url: "{app.url('/maintenance/off')}"}}
  flaky:  # fails going into maintenance, and nobody knows whether it went
    environment: staging
    maintenance: {{type: http, on_url: "{app.url('/answer/503')}", off_url: "{app.url('/maintenance/off')}"}}
runbooks:
  unknown-answer:
    services: [shop]
    steps:
      - {{kind: maintenance, service: shop, mode: "on"}}
      - {{kind: http, url: "{app.url('/answer/503')}", retries: 2, on_failure: rollback}}
      - {{kind: http, url: "{app.url('/answer/200')}"}}
  refused-answer:
    services: [shop]
    steps:
      - {{kind: maintenance, service: shop, mode: "on"}}
      - {{kind: http, url: "{app.url('/answer/400')}", retries: 1, on_failure: rollback}}
  refused-maintenance:
    services: [legacy]
    steps:
      - {{kind: maintenance, service: legacy, mode: "on"}}
  unknown-then-rollback:
    services: [flaky]
    steps:
      - {{kind: maintenance, service: flaky, mode: "on", on_failure: continue}}
      - {{kind: http, url: "{app.url('/answer/400')}", on_failure: rollback}}
"""
    deps = Deps(catalog=parse_catalog(catalog), session=http)
    yield deps
    await deps.tasks.drain(timeout=0)


async def run(deps: Deps, name: str) -> ActionRun:
    """Plan the runbook and press Run now (no approval in staging); returns it failed, as every one here ends."""
    draft = await runbook_plans.plan(deps, name, {}, requested_by=ALICE, channel_id=CHANNEL)
    await requests.request(deps, draft.id or 0, ALICE)
    await settle(deps)
    finished = await stored(deps, draft.id or 0)
    assert finished.state is ActionState.FAILED, finished.outcome
    return finished


def shown(run: ActionRun) -> str:
    return words(run_message(run, []))


def buttons(run: ActionRun) -> set[str]:
    return {button.action_id for button in run_buttons(run) if button.action_id}


async def test_an_unknown_step_is_not_retried_and_nothing_is_undone(deps: Deps, app: App) -> None:
    failed = await run(deps, "unknown-answer")
    assert app.hits["/answer/503"] == 1, "`retries: 2`, but a step whose effect is unknown is not tried again"
    assert app.maintenance == ["on"], "`on_failure: rollback`, but nothing is undone before a person looks"
    assert [(s.state, s.effect) for s in failed.steps] == [(StepState.SUCCEEDED, None),
                                                           (StepState.FAILED, Effect.UNKNOWN), (StepState.SKIPPED, None)]
    assert app.hits["/answer/200"] == 0
    assert "What it did is unknown" in failed.outcome and "Look at `shop`" in failed.target_state
    assert "Still changed, not undone: step 1 (Turn maintenance mode on for shop" in failed.target_state
    assert effect_text(Effect.UNKNOWN) in shown(failed)


async def test_an_untouched_step_is_retried_and_the_steps_before_it_are_undone(deps: Deps, app: App) -> None:
    failed = await run(deps, "refused-answer")
    assert app.hits["/answer/400"] == 2, "tried again: a refused request changed nothing"
    assert app.maintenance == ["on", "off"]
    assert [(s.state, s.effect) for s in failed.steps[:2]] == [(StepState.UNDONE, None),
                                                               (StepState.FAILED, Effect.UNTOUCHED)]
    assert effect_text(Effect.UNTOUCHED) in shown(failed)


async def test_a_step_that_changed_nothing_is_not_undone(deps: Deps, app: App) -> None:
    failed = await run(deps, "refused-maintenance")
    assert app.hits["/answer/403"] == 1
    assert app.maintenance == [], "its undo (maintenance off) would act on a service the step never changed"
    [step] = failed.steps
    assert (step.state, step.effect) == (StepState.FAILED, Effect.UNTOUCHED)


async def test_a_step_of_unknown_effect_passed_over_is_not_undone_by_a_later_roll_back(deps: Deps, app: App) -> None:
    failed = await run(deps, "unknown-then-rollback")
    assert app.hits["/answer/503"] == 1 and app.hits["/answer/400"] == 1
    assert app.maintenance == [], "a step whose effect is unknown is put back only by a person's Roll back"
    assert [(s.state, s.effect) for s in failed.steps] == [(StepState.FAILED, Effect.UNKNOWN),
                                                           (StepState.FAILED, Effect.UNTOUCHED)]


async def follow_up(deps: Deps, mode: str, of: ActionRun) -> ActionRun:
    """A follow-up of the stopped run (its button's plan), run now; returns it ended."""
    draft = await follow_ups.follow_up(deps, of.id or 0, ALICE, mode)
    await requests.request(deps, draft.id or 0, ALICE)
    await settle(deps)
    return await stored(deps, draft.id or 0)


async def test_a_step_of_unknown_effect_checked_by_hand_is_marked_done_and_not_run_again(deps: Deps, app: App) -> None:
    stopped = await run(deps, "unknown-answer")
    assert {RESUME_ACTION, ROLL_BACK_ACTION, MARK_DONE_ACTION} <= buttons(stopped)
    assert "Mark done: step 2 was checked by hand" in shown(stopped)

    done = await follow_up(deps, "done", stopped)

    assert done.state is ActionState.SUCCEEDED, done.outcome
    assert done.params["mode"] == "done" and done.params["checked"] == 1
    assert [s.state for s in done.steps] == [StepState.SUCCEEDED] * 3
    assert done.steps[1].detail == f"checked by hand by <@{ALICE}> and marked done"
    assert app.hits["/answer/503"] == 1 and app.maintenance == ["on"], "nothing before it ran again"
    assert app.hits["/answer/200"] == 1, "the run went on after it"


async def test_a_step_of_unknown_effect_is_rolled_back_when_people_choose_it(deps: Deps, app: App) -> None:
    stopped = await run(deps, "unknown-answer")

    rolled = await follow_up(deps, "rollback", stopped)

    assert rolled.state is ActionState.SUCCEEDED, rolled.outcome
    assert app.maintenance == ["on", "off"] and app.hits["/answer/503"] == 1 and app.hits["/answer/200"] == 0


async def test_a_run_that_rolled_back_on_its_own_offers_no_follow_up(deps: Deps, app: App) -> None:
    rolled_back = await run(deps, "refused-answer")
    assert not buttons(rolled_back) & {RESUME_ACTION, MARK_DONE_ACTION}
    with pytest.raises(requests.NotPending, match="not interrupted or stopped on a step of unknown effect"):
        await follow_ups.follow_up(deps, rolled_back.id or 0, ALICE, "done")
