"""Built-in actions are plans the one engine runs (`bot/runs/builtin.py`): a backup is [backup, retention]; a
restart or a roll back is followed by a health check that stops the run when it fails; and a plain action gets what
runbooks have — Resume and Roll back after an interruption or a failed check, through signed Slack requests against
a demo app and a health endpoint whose answer each test sets.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import handlers
from bot.app import build_bolt_app, build_context, build_web_app
from bot.catalog_loading import parse_catalog
from bot.clock import SystemClock
from bot.executors.base import Effect
from bot.runs import service as actions
from bot.runs.effects import awaits_people, stopped_step, unknown_step
from bot.runs.models import ActionKind, ActionRun, ActionState, ActionStep, PlannedStep, StepState
from bot.views import Message
from bot.views.runs import CANCEL_RUN_ACTION, MARK_DONE_ACTION, RESUME_ACTION, ROLL_BACK_ACTION, run_message
from playground.demo_apps import DemoSwitches
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings
from tests.targets import serve
from tests.test_approvals import ALICE, CHANNEL, button, click, ops, text
from tests.test_runbooks import _follow_up


class QuickClock(SystemClock):
    """The system's time, but a pause between health tries (or a demo app's start) lasts a blink."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(min(seconds, 0.01))


@dataclass
class Health:
    healthy: bool = True
    hits: int = 0
    port: int = 0


@pytest.fixture
async def health() -> AsyncIterator[Health]:
    state = Health()

    async def answer(request: web.Request) -> web.Response:
        state.hits += 1
        return web.Response(status=200 if state.healthy else 503, text="ok" if state.healthy else "down")

    server = web.Application()
    server.router.add_get("/health", answer)
    runner, state.port = await serve(server)
    yield state
    await runner.cleanup()


@dataclass
class Bot:
    running: RunningBot
    demo: DemoSwitches


@pytest.fixture
async def bot(slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path, health: Health) -> AsyncIterator[Bot]:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "config.yml").write_text("files: 1\n")
    catalog = parse_catalog(f"""
approvals:
  environments:
    staging: {{default: {{approvals: 0}}}}
services:
  web:
    environment: staging
    target: {{type: demo, app: web, image: "web:1.0"}}
    checks:
      - {{type: http, url: "http://127.0.0.1:{health.port}/health", timeout: 2}}
  files:
    environment: staging
    backup: {{type: directory, paths: ["{tmp_path / 'data'}"], directory: "{tmp_path / 'backups'}",
              retention_days: 7, keep_min: 1}}
""")
    clock = QuickClock()
    demo = DemoSwitches([], clock, start_seconds=0)
    demo.add_apps(catalog)
    ctx = build_context(make_settings(slack, f"sqlite:///{tmp_path / 'o.db'}"), catalog, clock=clock,
                        demo_workloads=demo)
    runner = web.AppRunner(build_web_app(ctx, build_bolt_app(ctx, [handlers.register])))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield Bot(RunningBot(f"http://127.0.0.1:{runner.addresses[0][1]}", ctx, slack, http), demo)
    await runner.cleanup()


async def run_now(bot: RunningBot, plan: dict) -> int:
    """Press Run now on a plan (approvals: none in staging); returns the run's id once it has finished."""
    run_id = int(button(plan, "action.request")["value"])
    await click(bot, "action.request", str(run_id), ALICE)
    return run_id


def as_posted(message: Message) -> dict[str, Any]:
    return {"text": message.text, "blocks": message.blocks}


async def stored(bot: RunningBot, run_id: int) -> ActionRun:
    run = await bot.ctx.store.get_action(run_id)
    assert run is not None
    return run


async def test_a_plain_backup_is_the_plan_backup_then_retention(bot: Bot) -> None:
    plan = await ops(bot.running, "backup files before the upgrade")
    assert "Back up files" in text(plan) and "Apply retention (7 days, keep at least 1)" in text(plan)
    run_id = await run_now(bot.running, plan)

    run = await stored(bot.running, run_id)
    assert [step["kind"] for step in run.params["plan"]] == ["backup", "retention"]
    assert run.state is ActionState.SUCCEEDED, run.outcome
    assert [(s.title.split(" (")[0], s.state) for s in run.steps] == [("Back up files", StepState.SUCCEEDED),
                                                                     ("Apply retention", StepState.SUCCEEDED)]
    [record] = await bot.running.ctx.store.backups("files")
    assert record.run_id == run_id and f"backup {record.id} written and verified" in run.outcome


async def test_a_restart_is_the_plan_restart_then_a_health_check_of_three_tries(bot: Bot, health: Health) -> None:
    plan = await ops(bot.running, "restart web")
    run_id = await run_now(bot.running, plan)

    run = await stored(bot.running, run_id)
    assert [(s["kind"], s["args"]) for s in run.params["plan"]] == [("restart", {}),
                                                                    ("check", {"attempts": 3, "interval": 2.0})]
    assert run.state is ActionState.SUCCEEDED, run.outcome
    assert health.hits == 1 and "restart: started web:1.0" in bot.demo.apps["web"].log[-1][1]


async def interrupted_mid_restart(bot: RunningBot) -> int:
    """A plain restart as a replica that died while restarting left it, then declared interrupted by recovery."""
    ctx = bot.ctx
    run = await actions.plan(ctx, "web", ActionKind.RESTART, requested_by=ALICE, channel_id=CHANNEL)
    run_id = run.id or 0
    long_ago = ctx.clock.now() - timedelta(hours=1)
    await ctx.store.transition_action(run_id, ActionState.APPROVED, expect={ActionState.DRAFT}, heartbeat_at=long_ago)
    await ctx.store.transition_action(run_id, ActionState.RUNNING, expect={ActionState.APPROVED}, started_at=long_ago,
                                      lease_owner="a-replica-that-died", heartbeat_at=long_ago)
    await ctx.store.save_step(run_id, replace(run.steps[0], state=StepState.RUNNING, started_at=long_ago))
    assert await actions.recover(ctx) == 1
    return run_id


async def test_an_interrupted_plain_restart_offers_resume_and_roll_back_and_resume_runs_it_to_success(
        bot: Bot, health: Health) -> None:
    run_id = await interrupted_mid_restart(bot.running)
    interrupted = await stored(bot.running, run_id)
    assert interrupted.state is ActionState.INTERRUPTED
    shown = as_posted(run_message(interrupted, []))
    # What the restart did before opsbot stopped is unknown: people choose, as for a runbook.
    for action_id in (RESUME_ACTION, ROLL_BACK_ACTION, MARK_DONE_ACTION):
        assert button(shown, action_id)["value"] == str(run_id)
    assert CANCEL_RUN_ACTION not in text(shown)

    plan = await _follow_up(bot.running, RESUME_ACTION, run_id, ALICE)
    assert f"resume restart web from run #{run_id}" in text(plan)
    resumed_id = await run_now(bot.running, plan)

    resumed = await stored(bot.running, resumed_id)
    assert resumed.state is ActionState.SUCCEEDED, resumed.outcome
    assert resumed.kind is ActionKind.RESTART and resumed.params["mode"] == "resume"
    assert [s.state for s in resumed.steps] == [StepState.SUCCEEDED, StepState.SUCCEEDED]
    assert health.hits == 1 and "restart: started web:1.0" in bot.demo.apps["web"].log[-1][1]
    assert (await stored(bot.running, run_id)).followed_by == resumed_id


async def test_roll_back_of_a_plain_rollback_whose_health_check_failed_deploys_the_image_before(
        bot: Bot, health: Health) -> None:
    app = bot.demo.apps["web"]
    app.activate("web:2.0", bot.running.ctx.clock.now())  # 2.0 runs now; 1.0 ran before it
    health.healthy = False  # whatever runs: the check fails, three times

    run_id = await run_now(bot.running, await ops(bot.running, "rollback web"))

    failed = await stored(bot.running, run_id)
    assert failed.state is ActionState.FAILED and app.image == "web:1.0"
    assert [s.state for s in failed.steps] == [StepState.SUCCEEDED, StepState.FAILED], "stopped; nothing undone"
    assert health.hits == 3 and "is not healthy after 3 tries" in failed.outcome
    assert "after step 1 (Roll web back" in failed.target_state
    shown = as_posted(run_message(failed, []))
    assert button(shown, ROLL_BACK_ACTION) and button(shown, RESUME_ACTION)
    assert MARK_DONE_ACTION not in text(shown), "no step's effect is unknown"

    plan = await _follow_up(bot.running, ROLL_BACK_ACTION, run_id, ALICE)
    assert "deploy web:2.0 again" in text(plan)
    health.healthy = True
    rolled_id = await run_now(bot.running, plan)

    rolled = await stored(bot.running, rolled_id)
    assert rolled.state is ActionState.SUCCEEDED, rolled.outcome
    assert app.image == "web:2.0", "the image that ran before the roll back runs again"
    assert rolled.steps[0].state is StepState.UNDONE


async def test_a_failed_restart_check_stops_the_run_and_says_the_service_was_restarted(bot: Bot,
                                                                                        health: Health) -> None:
    health.healthy = False
    run_id = await run_now(bot.running, await ops(bot.running, "restart web"))

    failed = await stored(bot.running, run_id)
    assert failed.state is ActionState.FAILED and health.hits == 3
    assert "web fails its health checks" in failed.target_state and "after step 1 (Restart web" in failed.target_state
    # A restart has no undo: nothing for people to put back, so no Resume / Roll back offered.
    assert ROLL_BACK_ACTION not in text(as_posted(run_message(failed, [])))


async def test_a_restart_asked_for_before_actions_were_plans_runs_its_built_in_plan(bot: Bot, health: Health) -> None:
    ctx = bot.running.ctx
    now = ctx.clock.now()
    # As such a run was stored: no plan in its params, a row per thing the executor said it would do.
    old_rows = ("Stop demo app web", "Start it and wait until it runs", "Check the health of web")
    run_id = await ctx.store.create_action(ActionRun(
        service="web", kind=ActionKind.RESTART, environment="staging", target="demo app web", requested_by=ALICE,
        created_at=now, expires_at=now + timedelta(hours=1), state=ActionState.APPROVED, channel_id=CHANNEL,
        steps=tuple(ActionStep(i, title) for i, title in enumerate(old_rows))))

    await actions.execute(ctx, run_id)

    run = await stored(bot.running, run_id)
    assert run.state is ActionState.SUCCEEDED, run.outcome
    assert health.hits == 1 and "restart: started web:1.0" in bot.demo.apps["web"].log[-1][1]
    assert [(s.title.split(" (")[0].split(",")[0], s.state) for s in run.steps] == [
        ("Restart web", StepState.SUCCEEDED), ("Check the health of web", StepState.SUCCEEDED),
        ("Check the health of web", StepState.SKIPPED)]


# --- which stopped runs wait for people (milliseconds) ------------------------------------------------------------


def stopped_run(rows: tuple[ActionStep, ...], plan: list[dict[str, Any]]) -> ActionRun:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    return ActionRun(service="web", kind=ActionKind.ROLLBACK, environment="staging", target="x", requested_by=ALICE,
                     created_at=now, expires_at=now, state=ActionState.FAILED, params={"plan": plan, "mode": "run"},
                     steps=rows)


def planned(kind: str, on_failure: str) -> dict[str, Any]:
    return PlannedStep(kind=kind, service="web", args={}, title=kind, undo=None, on_failure=on_failure, timeout=60,
                       retries=0).to_json()


ROLLBACK_THEN_CHECK = [planned("rollback", "stop"), planned("check", "stop")]


def test_a_run_stopped_by_its_check_after_an_undoable_change_waits_for_people() -> None:
    run = stopped_run((ActionStep(0, "Roll web back", StepState.SUCCEEDED, undo={"image": "web:2.0"}),
                       ActionStep(1, "Check", StepState.FAILED, effect=Effect.UNTOUCHED)), ROLLBACK_THEN_CHECK)
    assert stopped_step(run) == 1 and awaits_people(run) and unknown_step(run) is None


def test_a_run_whose_first_step_failed_untouched_is_simply_failed() -> None:
    run = stopped_run((ActionStep(0, "Roll web back", StepState.FAILED, effect=Effect.UNTOUCHED),
                       ActionStep(1, "Check", StepState.SKIPPED)), ROLLBACK_THEN_CHECK)
    assert stopped_step(run) is None and not awaits_people(run)


def test_a_run_that_rolled_back_on_its_own_does_not_wait_for_people() -> None:
    plan = [planned("rollback", "rollback"), planned("check", "rollback")]
    run = stopped_run((ActionStep(0, "Roll web back", StepState.UNDONE, undo={"image": "web:2.0"}),
                       ActionStep(1, "Check", StepState.FAILED, effect=Effect.UNTOUCHED),
                       ActionStep(2, "Undo", StepState.SUCCEEDED)), plan)
    assert stopped_step(run) is None and not awaits_people(run)
