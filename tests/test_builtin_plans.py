"""Built-in actions are plans the one engine runs (`bot/runs/builtin.py`): a backup is [backup, retention], through
signed Slack requests against a real directory backup; then which stopped runs wait for people (milliseconds).

Restart and roll back with their health check, and the Resume / Roll back / mark done a plain action gets after an
interruption or a failed check, are tested in milliseconds on the run flows' ports: tests/test_run_flows.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

import handlers
from bot.app import build_bolt_app, build_context, build_web_app
from bot.catalog_loading import parse_catalog
from bot.clock import SystemClock
from bot.executors.base import Effect
from bot.runs.effects import awaits_people, stopped_step, unknown_step
from bot.runs.models import ActionKind, ActionRun, ActionState, ActionStep, PlannedStep, StepState
from playground.demo_apps import DemoSwitches
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings
from tests.targets import serve
from tests.test_approvals import ALICE, button, click, ops, text


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


async def stored(bot: RunningBot, run_id: int) -> ActionRun:
    run = await bot.ctx.store.get_action(run_id)
    assert run is not None
    return run


async def test_a_plain_backup_is_the_plan_backup_then_retention(bot: Bot) -> None:
    plan = await ops(bot.running, "backup files before the upgrade")
    assert "Back up files" in text(plan) and "Apply retention (7 days, keep at least 1)" in text(plan)
    run_id = await run_now(bot.running, plan)

    run = await stored(bot.running, run_id)
    assert [step.kind for step in run.plan] == ["backup", "retention"] and "plan" not in run.params
    assert run.state is ActionState.SUCCEEDED, run.outcome
    assert [(s.title.split(" (")[0], s.state) for s in run.steps] == [("Back up files", StepState.SUCCEEDED),
                                                                     ("Apply retention", StepState.SUCCEEDED)]
    [record] = await bot.running.ctx.store.backups("files")
    assert record.run_id == run_id and f"backup {record.id} written and verified" in run.outcome


# --- which stopped runs wait for people (milliseconds) ------------------------------------------------------------


def stopped_run(rows: tuple[ActionStep, ...], plan: list[PlannedStep]) -> ActionRun:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    return ActionRun(service="web", kind=ActionKind.ROLLBACK, environment="staging", target="x", requested_by=ALICE,
                     created_at=now, expires_at=now, state=ActionState.FAILED, params={"mode": "run"},
                     steps=rows, plan=tuple(plan))


def planned(kind: str, on_failure: str) -> PlannedStep:
    return PlannedStep(kind=kind, service="web", args={}, title=kind, undo=None, on_failure=on_failure, timeout=60,
                       retries=0)


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
