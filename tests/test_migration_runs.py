"""Migration 0010 (`bot/store/migrations/*/0010_runs.sql`) on each backend: runs stored by the code before it — plans
as JSON in `params`, or no plan at all — read back as typed plans in step rows, and go on working.

A database is built at migration 0009 and given rows as that code wrote them (a pending plain restart, rollback and
backup, and a restart of a service with no checks; an interrupted restart cut short in its restart, and one cut short
in its health check; a runbook run awaiting approval with its plan in params; a finished backup); then the bot
starts on it (which migrates), and the pending restart is approved from the Approve button of its old message,
through a signed request, and runs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import handlers
from bot.app import build_bolt_app, build_context, build_web_app
from bot.catalog_loading import parse_catalog
from bot.clock import SystemClock
from bot.runs import builtin
from bot.runs.effects import awaits_people, unknown_step
from bot.runs.models import ActionKind, ActionRun, ActionState, PlannedStep, StepState
from bot.runs.outcomes import Ending
from bot.runs.steps import REGISTRY
from bot.store import create_store
from bot.store.base import Store
from bot.views.runs import APPROVE_ACTION, MARK_DONE_ACTION, RESUME_ACTION, ROLL_BACK_ACTION, run_buttons
from playground.demo_apps import DemoSwitches
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings
from tests.targets import serve
from tests.test_approvals import ALICE, BOB, CHANNEL, button, click

NOW = datetime.now(UTC).replace(microsecond=0)
OLD_MESSAGE_TS = "1700000000.000100"
RUNBOOK_PLAN = [
    PlannedStep(kind="restart", service="web", args={}, title="Restart web (web)", undo=None, on_failure="rollback",
                timeout=600.0, retries=0),
    PlannedStep(kind="check", service="web", args={"attempts": 2, "interval": 5.0}, title="Check the health of web, up "
                "to 2 tries 5 s apart", undo=None, on_failure="rollback", timeout=600.0, retries=1, probe="looked"),
]


class QuickClock(SystemClock):
    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(min(seconds, 0.01))


@dataclass
class Health:
    hits: int = 0
    port: int = 0


@pytest.fixture
async def health() -> AsyncIterator[Health]:
    state = Health()

    async def answer(request: web.Request) -> web.Response:
        state.hits += 1
        return web.Response(text="ok")

    server = web.Application()
    server.router.add_get("/health", answer)
    runner, state.port = await serve(server)
    yield state
    await runner.cleanup()


async def _old_run(store: Store, kind: str, state: str, params: dict[str, Any], rows: list[tuple[str, str, str]], *,
                   service: str = "web", approvals: int = 1, started: bool = False, finished: bool = False) -> int:
    """A run as the code before migration 0010 wrote it (`action_runs`, `action_steps`); rows: (title, state, detail)."""
    sql: Any = store  # the backends' own statement runner, with their `?` placeholders and time encoding
    columns = {
        "service": service, "kind": kind, "state": state, "environment": "staging", "target": f"demo app {service}",
        "params": json.dumps(params), "requested_by": ALICE, "reason": "before the upgrade", "approvals_needed": approvals,
        "approvers": "[]", "channel_id": CHANNEL, "message_ts": OLD_MESSAGE_TS, "created_at": sql._enc(NOW),
        "expires_at": sql._enc(NOW + timedelta(hours=1)), "started_at": sql._enc(NOW) if started else None,
        "finished_at": sql._enc(NOW) if finished else None, "outcome": "backup 1 written" if finished else "",
    }
    run_id = int(await sql._insert("action_runs", columns))
    for position, (title, step_state, detail) in enumerate(rows):
        await sql._execute("INSERT INTO action_steps (run_id, position, title, state, detail, started_at) "
                           "VALUES (?, ?, ?, ?, ?, ?)",
                           [run_id, position, title, step_state, detail,
                            sql._enc(NOW) if step_state != "waiting" else None])
    return run_id


OLD_RESTART_ROWS = ("Stop demo app web", "Start it and wait until it runs", "Check the health of web")


@dataclass
class Old:
    pending_restart: int
    pending_rollback: int
    pending_backup: int
    cut_in_restart: int
    cut_in_check: int
    runbook: int
    finished_backup: int
    no_checks: int  # a restart of a service with no health checks: its rows had no "Check the health of …"


async def _database_at_0009(url: str) -> Old:
    store = create_store(url)
    await store.open()
    try:
        assert await store.migrate(upto=9) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
        waiting = [(title, "waiting", "") for title in OLD_RESTART_ROWS]
        backup_rows = [("Copy the files", "waiting", ""), ("Verify the archive", "waiting", ""),
                       ("Apply retention (7 days, keep at least 1)", "waiting", "")]
        return Old(
            pending_restart=await _old_run(store, "restart", "pending", {}, waiting),
            pending_rollback=await _old_run(store, "rollback", "pending", {"to": "web:0.9"},
                                            [("Roll back to web:0.9", "waiting", ""), *waiting[2:]]),
            pending_backup=await _old_run(store, "backup", "pending", {}, backup_rows, service="files"),
            cut_in_restart=await _old_run(store, "restart", "interrupted", {}, [
                (OLD_RESTART_ROWS[0], "succeeded", "stopped"), (OLD_RESTART_ROWS[1], "running", ""),
                (OLD_RESTART_ROWS[2], "waiting", "")], started=True),
            cut_in_check=await _old_run(store, "restart", "interrupted", {}, [
                (OLD_RESTART_ROWS[0], "succeeded", ""), (OLD_RESTART_ROWS[1], "succeeded", "running"),
                (OLD_RESTART_ROWS[2], "running", "try 2 of 3")], started=True),
            runbook=await _old_run(store, "runbook", "pending", {
                "runbook": "bounce", "values": {}, "services": ["web"], "mode": "run",
                "plan": [asdict(step) for step in RUNBOOK_PLAN]}, [(step.title, "waiting", "") for step in RUNBOOK_PLAN]),
            finished_backup=await _old_run(store, "backup", "succeeded", {}, [
                ("Copy the files", "succeeded", "12 kB"), ("Apply retention (7 days, keep at least 1)", "succeeded", "")],
                service="files", approvals=0, started=True, finished=True),
            no_checks=await _old_run(store, "restart", "pending", {}, [("Restart demo app quiet", "waiting", "")],
                                     service="quiet"),
        )
    finally:
        await store.close()


@dataclass
class Upgraded:
    bot: RunningBot
    old: Old


@pytest.fixture
async def upgraded(database_url: str, slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Any,
                   health: Health) -> AsyncIterator[Upgraded]:
    old = await _database_at_0009(database_url)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "config.yml").write_text("files: 1\n")
    catalog = parse_catalog(f"""
approvals:
  environments:
    staging: {{default: {{approvals: 1}}}}
services:
  web:
    environment: staging
    target: {{type: demo, app: web, image: "web:1.0"}}
    checks:
      - {{type: http, url: "http://127.0.0.1:{health.port}/health", timeout: 2}}
  quiet:
    environment: staging
    target: {{type: demo, app: quiet, image: "quiet:1.0"}}
  files:
    environment: staging
    backup: {{type: directory, paths: ["{tmp_path / 'data'}"], directory: "{tmp_path / 'backups'}",
              retention_days: 7, keep_min: 1}}
""")
    clock = QuickClock()
    demo = DemoSwitches([], clock, start_seconds=0)
    demo.add_apps(catalog)
    ctx = build_context(make_settings(slack, database_url), catalog, clock=clock, demo_workloads=demo)
    runner = web.AppRunner(build_web_app(ctx, build_bolt_app(ctx, [handlers.register])))
    await runner.setup()  # starts the context: the store migrates to the latest version here
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield Upgraded(RunningBot(f"http://127.0.0.1:{runner.addresses[0][1]}", ctx, slack, http), old)
    await runner.cleanup()


async def _run(bot: RunningBot, run_id: int) -> ActionRun:
    run = await bot.ctx.store.get_action(run_id)
    assert run is not None
    return run


def _shape(plan: tuple[PlannedStep, ...] | list[PlannedStep]) -> list[tuple[object, ...]]:
    """A plan without its words (titles and probes name the target, which the migration cannot read); an argument
    added to a kind since the migration was written counts at its default (a `check` step's `checks` and
    `warning_passes`, which its kind reads with the same defaults when a stored step lacks them)."""
    return [(s.kind, s.service, _with_defaults(s), s.undo, s.on_failure, s.timeout, s.retries) for s in plan]


def _with_defaults(step: PlannedStep) -> dict[str, object]:
    kind = REGISTRY[step.kind]
    fields = kind.args.model_fields
    defaults = {name: fields[name].get_default(call_default_factory=True) for name in kind.arg_names
                if not fields[name].is_required()}
    return {**defaults, **step.args}


def _states(run: ActionRun) -> list[StepState]:
    return [step.state for step in run.steps]


async def test_plain_actions_not_started_get_their_built_in_plans(upgraded: Upgraded) -> None:
    bot, old = upgraded.bot, upgraded.old
    for run_id, kind, params in ((old.pending_restart, ActionKind.RESTART, {}),
                                 (old.pending_rollback, ActionKind.ROLLBACK, {"to": "web:0.9"}),
                                 (old.pending_backup, ActionKind.BACKUP, {})):
        run = await _run(bot, run_id)
        _, built = await builtin.plan_of(bot.ctx, run.service, kind, dict(params))
        assert _shape(run.plan) == _shape(built), kind
        assert run.state is ActionState.PENDING and _states(run) == [StepState.WAITING] * 2
        assert [step.title for step in run.steps] == [step.title for step in run.plan]
        assert run.params == {**params, "mode": "run"}
    restart = await _run(bot, old.pending_restart)
    assert [step.title for step in restart.plan] == ["Restart web", "Check the health of web, up to 3 tries 2 s apart"]
    # The executor's own words for what it would do, once its rows, are kept as the step's "what it does".
    assert restart.plan[0].probe == "what it does: Stop demo app web; Start it and wait until it runs"
    rollback = await _run(bot, old.pending_rollback)
    assert rollback.plan[0].title == "Roll web back to web:0.9" and rollback.plan[0].args == {"to": "web:0.9"}


async def test_an_interrupted_plain_restart_is_a_plan_cut_short_and_offers_resume_and_roll_back(
        upgraded: Upgraded) -> None:
    bot, old = upgraded.bot, upgraded.old
    cut = await _run(bot, old.cut_in_restart)
    assert cut.state is ActionState.INTERRUPTED and [s.kind for s in cut.plan] == ["restart", "check"]
    assert _states(cut) == [StepState.RUNNING, StepState.WAITING]
    assert "Stop demo app web (succeeded: stopped)" in cut.steps[0].detail
    assert "Start it and wait until it runs (running)" in cut.steps[0].detail
    assert unknown_step(cut) == 0 and awaits_people(cut)
    assert [b.action_id for b in run_buttons(cut)] == [RESUME_ACTION, ROLL_BACK_ACTION, MARK_DONE_ACTION]

    in_check = await _run(bot, old.cut_in_check)
    assert _states(in_check) == [StepState.SUCCEEDED, StepState.RUNNING]
    assert in_check.steps[1].detail == "try 2 of 3" and unknown_step(in_check) == 1

    # Resume, pressed on the old message: a new plan with the same steps, the one cut short to run again.
    await click(bot, RESUME_ACTION, str(cut.id), ALICE)
    follow = await _run(bot, (await _run(bot, old.cut_in_restart)).followed_by or 0)
    assert follow.state is ActionState.DRAFT and follow.plan == cut.plan and follow.params["of"] == cut.id
    assert _states(follow) == [StepState.WAITING, StepState.WAITING]


async def test_a_runbook_runs_plan_moves_from_params_into_its_rows_and_a_finished_run_keeps_its_history(
        upgraded: Upgraded) -> None:
    bot, old = upgraded.bot, upgraded.old
    runbook = await _run(bot, old.runbook)
    assert runbook.state is ActionState.PENDING and runbook.plan == tuple(RUNBOOK_PLAN)
    assert runbook.params == {"runbook": "bounce", "values": {}, "services": ["web"], "mode": "run"}
    assert [step.title for step in runbook.steps] == [step.title for step in RUNBOOK_PLAN]

    finished = await _run(bot, old.finished_backup)
    assert finished.state is ActionState.SUCCEEDED and finished.plan == () and finished.outcome_data is None
    assert [(s.title, s.state, s.detail) for s in finished.steps] == [
        ("Copy the files", StepState.SUCCEEDED, "12 kB"),
        ("Apply retention (7 days, keep at least 1)", StepState.SUCCEEDED, "")]
    assert finished.params == {}


async def test_the_approve_button_of_a_message_posted_before_runs_the_migrated_plan(
        upgraded: Upgraded, health: Health) -> None:
    bot, old = upgraded.bot, upgraded.old
    # The old request message's Approve button, as the code before wrote it: its value is the run id alone.
    old_message = {"blocks": [{"type": "actions", "elements": [
        {"type": "button", "action_id": APPROVE_ACTION, "value": str(old.pending_restart), "style": "primary"},
        {"type": "button", "action_id": "approval.deny", "value": str(old.pending_restart), "style": "danger"}]}]}

    await click(bot, APPROVE_ACTION, button(old_message, APPROVE_ACTION)["value"], BOB)

    run = await _run(bot, old.pending_restart)
    assert run.state is ActionState.SUCCEEDED, run.outcome
    assert _states(run) == [StepState.SUCCEEDED, StepState.SUCCEEDED] and health.hits == 1
    assert run.outcome_data is not None and run.outcome_data.ending is Ending.FINISHED
    assert run.outcome_data.services == ("web",)


async def test_a_migrated_plan_checks_health_even_where_the_service_has_no_checks_and_that_check_passes(
        upgraded: Upgraded) -> None:
    # The migration cannot read the catalog, so every restart, rollback and restore gets its health check; where
    # the service has none, the check has nothing to fail on.
    bot, old = upgraded.bot, upgraded.old
    await click(bot, APPROVE_ACTION, str(old.no_checks), BOB)

    run = await _run(bot, old.no_checks)
    assert run.state is ActionState.SUCCEEDED, run.outcome
    assert [s.kind for s in run.plan] == ["restart", "check"] and run.steps[1].detail == "no health checks in the catalog"
