"""Runbooks through signed Slack requests: plan first, approval, steps shown live, undo in reverse on failure, bad
parameters refused before any approval, the incident timeline. Cancel, a crash mid-run (interrupted → Resume / Roll
back), a step past its timeout and the services a running runbook holds are tested in milliseconds on the engine's and
the run flows' ports (tests/test_engine.py, tests/test_run_flows.py).

Real parts: directory backups on disk (restore ↔ restore the safety backup) and a small HTTP app with a
maintenance endpoint and a health endpoint (maintenance on ↔ off); Docker, Kubernetes and PostgreSQL runbooks
are in tests/test_runbooks_e2e.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.catalog_loading import CatalogInvalid, catalog_warnings, parse_catalog
from bot.runs.models import ActionState, StepState
from playground.payloads import sign, slash_command, view_submission
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings, start_bot
from tests.test_approvals import ALICE, BOB, CHANNEL, button, click, ops, text

DAVE = "U0DAVE"


@dataclass
class App:
    """The service the runbooks act on: maintenance mode through its own endpoint, health that can break."""

    maintenance: list[str] = field(default_factory=list)
    healthy: bool = True
    hooks: list[dict] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)  # /slow answers once it is set
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
async def app() -> AsyncIterator[App]:
    state = App()

    async def on(_: web.Request) -> web.Response:
        state.maintenance.append("on")
        return web.Response(text="maintenance on")

    async def off(_: web.Request) -> web.Response:
        state.maintenance.append("off")
        return web.Response(text="maintenance off")

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok") if state.healthy else web.Response(status=503, text="down")

    async def hook(request: web.Request) -> web.Response:
        state.hooks.append(await request.json())
        return web.Response(status=202)

    async def slow(_: web.Request) -> web.Response:
        await state.gate.wait()
        return web.Response(text="done")

    server = web.Application()
    server.router.add_post("/maintenance/on", on)
    server.router.add_post("/maintenance/off", off)
    server.router.add_get("/health", health)
    server.router.add_post("/hook", hook)
    server.router.add_post("/slow", slow)
    runner = web.AppRunner(server, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.port = runner.addresses[0][1]
    yield state
    state.gate.set()
    await runner.cleanup()


def catalog(tmp: Path, app: App) -> str:
    (tmp / "data").mkdir(parents=True, exist_ok=True)
    (tmp / "data" / "orders.csv").write_text("1,10.5\n2,99\n")
    return f"""
approvals:
  environments:
    production: {{default: {{approvals: 1, approvers: [S0LEADS]}}}}
services:
  shop:
    environment: production
    checks:
      - {{type: http, url: "{app.url('/health')}", timeout: 2}}
    backup: {{type: directory, paths: ["{tmp / 'data'}"], directory: "{tmp / 'backups'}"}}
    maintenance: {{type: http, on_url: "{app.url('/maintenance/on')}", off_url: "{app.url('/maintenance/off')}"}}
    runbooks: [restore-shop]
  front:
    environment: production
runbooks:
  announce:
    description: Look at the shop, then say so.
    services: [front, shop]
    approvals: {{approvals: 0}}
    steps:
      - {{kind: check, service: shop, attempts: 3, interval: 0.1, on_failure: continue}}
      - {{kind: notify, channel: {CHANNEL}, text: "shop checked & <fine>"}}
  restore-shop:
    description: Put the shop's files back from a backup, in maintenance mode.
    services: [shop]
    parameters:
      backup: {{type: backup, service: shop, description: which backup to put back}}
      ticket: {{type: string, pattern: "[A-Z]+-[0-9]+", default: "OPS-1"}}
    steps:
      - {{kind: maintenance, service: shop, mode: "on"}}
      - {{kind: restore, service: shop, backup: "{{{{ params.backup }}}}"}}
      - {{kind: check, service: shop, attempts: 2, interval: 0.1}}
      - {{kind: maintenance, service: shop, mode: "off"}}
      - {{kind: http, url: "{app.url('/hook')}", json: {{text: "shop restored for {{{{ params.ticket }}}}"}}}}
  slow-one:
    description: Two slow calls, for Cancel and crashes.
    services: [shop]
    approvals: {{approvals: 0}}
    steps:
      - {{kind: maintenance, service: shop, mode: "on"}}
      - {{kind: http, url: "{app.url('/slow')}", timeout: 30}}
      - {{kind: http, url: "{app.url('/hook')}", json: {{text: "after"}}}}
  impatient:
    services: [shop]
    approvals: {{approvals: 0}}
    steps:
      - {{kind: maintenance, service: shop, mode: "on"}}
      - {{kind: http, url: "{app.url('/slow')}", timeout: 0.3, retries: 1, on_failure: rollback}}
  scale-check:
    services: [shop]
    parameters:
      replicas: {{type: integer, min: 1, max: 5}}
      mode: {{type: choice, choices: [fast, safe]}}
    approvals: {{approvals: 0}}
    steps:
      - {{kind: wait, seconds: 0}}
"""


@pytest.fixture
async def bot(slack: FakeSlack, database_url: str, http: aiohttp.ClientSession, tmp_path: Path,
              app: App) -> AsyncIterator[RunningBot]:
    slack.groups = {"S0LEADS": [BOB, DAVE]}
    running, runner = await start_bot(make_settings(slack, database_url), catalog(tmp_path, app), slack, http)
    yield running
    app.gate.set()
    await runner.cleanup()


def message_of(bot: RunningBot, run_id: int) -> dict:
    [message] = [m for m in bot.slack.messages.values() if f"Runbook run #{run_id} " in text(m)][-1:]
    return message


async def take_backup(bot: RunningBot) -> int:
    plan = await ops(bot, "backup shop before the runbook", ALICE)
    run_id = button(plan, "action.request")["value"]
    await click(bot, "action.request", run_id, ALICE)
    await bot.ctx.store.transition_action(int(run_id), ActionState.APPROVED, expect={ActionState.PENDING})
    from bot.runs.execution import execute

    await execute(bot.ctx, int(run_id))
    [record] = await bot.ctx.store.backups("shop")
    return record.id or 0


async def request_runbook(bot: RunningBot, command: str, user: str = ALICE) -> int:
    plan = await ops(bot, command, user)
    assert "Nothing has been touched" in text(plan), text(plan)[:800]
    run_id = button(plan, "action.request")["value"]
    opened = len(bot.slack.of("views.open"))
    await click(bot, "action.request", run_id, user)
    if len(bot.slack.of("views.open")) > opened:
        view = bot.slack.of("views.open")[-1].args["view"]
        body, content_type = view_submission(view["callback_id"],
                                             {"reason": {"reason.input": {"type": "plain_text_input", "value": "tested"}}},
                                             user=user, private_metadata=view["private_metadata"])
        assert (await bot.post(body, content_type)).status == 200
        await bot.settle()
    return int(run_id)


async def test_the_plan_shows_every_step_resolved_with_its_undo_and_touches_nothing(bot: RunningBot, app: App,
                                                                                    tmp_path: Path) -> None:
    backup_id = await take_backup(bot)
    posted = len(bot.slack.of("chat.postMessage"))
    plan = await ops(bot, f"run restore-shop backup={backup_id}")
    shown = text(plan)
    assert "Plan: runbook restore-shop" in shown and f"backup={backup_id}" in shown
    assert "Turn maintenance mode on for shop" in shown and "undo: put maintenance mode back as it was" in shown
    assert f"Restore shop from backup {backup_id} of" in shown and "undo: restore the safety backup taken first" in shown
    assert "Check the health of shop, up to 2 tries" in shown and "if it fails: roll back" in shown
    assert "POST http://127.0.0.1" in shown and "if it fails: go on" in shown
    assert "1 approval from <!subteam^S0LEADS>" in shown
    assert app.maintenance == [] and len(bot.slack.of("chat.postMessage")) == posted


async def test_a_health_gate_failure_undoes_the_completed_steps_in_reverse(bot: RunningBot, app: App, tmp_path: Path) -> None:
    backup_id = await take_backup(bot)
    (tmp_path / "data" / "orders.csv").write_text("broken\n")
    app.healthy = False  # the restore "works", but the app stays down: the gate fails
    run_id = await request_runbook(bot, f"run restore-shop backup={backup_id}")
    await click(bot, "approval.approve", str(run_id), BOB)
    run = await bot.ctx.store.get_action(run_id)
    assert run is not None and run.state is ActionState.FAILED, run.outcome
    states = [step.state for step in run.steps]
    assert states[:5] == [StepState.UNDONE, StepState.UNDONE, StepState.FAILED, StepState.SKIPPED, StepState.SKIPPED]
    undo_titles = [step.title for step in run.steps[5:]]
    assert undo_titles[0].startswith("Undo “Restore shop") and undo_titles[1].startswith("Undo “Turn maintenance mode on")
    assert app.maintenance == ["on", "off"], "maintenance put back off by the undo"
    assert (tmp_path / "data" / "orders.csv").read_text() == "broken\n", "the safety backup was restored"
    shown = text(message_of(bot, run_id))
    assert "❌ Failed: runbook restore-shop" in shown and "Step 3 failed" in shown and "Rolled back" in shown
    assert "↩ Turn maintenance mode on" in shown and "⏭ Turn maintenance mode off" in shown
    assert "put back as before the run" in shown
    assert app.hooks == []


async def test_a_good_run_finishes_every_step(bot: RunningBot, app: App, tmp_path: Path) -> None:
    backup_id = await take_backup(bot)
    (tmp_path / "data" / "orders.csv").write_text("lost\n")
    run_id = await request_runbook(bot, "run restore-shop backup=latest ticket=INC-7")
    await click(bot, "approval.approve", str(run_id), DAVE)
    run = await bot.ctx.store.get_action(run_id)
    assert run is not None and run.state is ActionState.SUCCEEDED, run.outcome
    assert run.params["values"] == {"backup": backup_id, "ticket": "INC-7"}
    assert (tmp_path / "data" / "orders.csv").read_text() == "1,10.5\n2,99\n"
    assert app.maintenance == ["on", "off"] and app.hooks == [{"text": "shop restored for INC-7"}]
    assert "✅ Done: runbook restore-shop" in text(message_of(bot, run_id))


@pytest.mark.parametrize(("command", "expected"), [
    ("run", "name a runbook. Runbooks: `announce`, `impatient`, `restore-shop`, `scale-check`, `slow-one`"),
    ("run restore-shp", "Did you mean `restore-shop`?"),
    ("run restore-shop backup=999", "`shop` has no backup `999`, nor any other yet"),
    ("run restore-shop backup=latest ticket=bad", "does not match") ,
    ("run scale-check replicas=9 mode=fast", "is not a whole number from 1 to 5"),
    ("run scale-check replicas=2 mode=slow", "is not one of `fast`, `safe`"),
    ("run scale-check replicas=2 mode=fast colour=red", "has no parameter `colour`"),
])
async def test_bad_parameters_are_refused_before_any_plan_or_approval(bot: RunningBot, command: str, expected: str) -> None:
    answer = await ops(bot, command)
    opened = bot.slack.of("views.open")
    shown = text(answer) + (text(opened[-1].args["view"]) if opened else "")
    assert expected.replace("does not match", "is not text matching") in shown or expected in shown, shown[:1500]
    assert bot.slack.of("chat.postMessage") == []
    assert await bot.ctx.store.actions(limit=5) == []


async def test_missing_values_open_a_modal_with_typed_inputs_and_its_errors_come_back_inline(bot: RunningBot) -> None:
    await ops(bot, "run scale-check")
    [opened] = bot.slack.of("views.open")
    view = opened.args["view"]
    kinds = {b["block_id"]: b["element"]["type"] for b in view["blocks"] if b["type"] == "input"}
    assert kinds == {"param.replicas": "number_input", "param.mode": "static_select"}
    values = {"param.replicas": {"value": {"type": "number_input", "value": "7"}},
              "param.mode": {"value": {"type": "static_select", "selected_option": {"value": "fast"}}}}
    body, content_type = view_submission(view["callback_id"], values, user=ALICE, private_metadata=view["private_metadata"])
    response = await bot.post(body, content_type)
    answer = await response.json()
    assert answer["response_action"] == "errors" and "1 to 5" in answer["errors"]["param.replicas"]
    values["param.replicas"]["value"]["value"] = "3"
    body, content_type = view_submission(view["callback_id"], values, user=ALICE, private_metadata=view["private_metadata"])
    assert (await bot.post(body, content_type)).status == 200
    await bot.settle()
    [run] = await bot.ctx.store.actions(limit=5)
    assert run.params["values"] == {"replicas": 3, "mode": "fast"} and run.state is ActionState.DRAFT


async def until(bot: RunningBot, run_id: int, done: object) -> object:
    for _ in range(300):
        run = await bot.ctx.store.get_action(run_id)
        if run is not None and done(run):  # type: ignore[operator]
            return run
        await asyncio.sleep(0.02)
    raise AssertionError(f"run {run_id} never got there: {run}")


def test_catalog_refuses_what_cannot_run_with_paths_and_lines() -> None:
    yaml = """
services:
  api: {environment: production, target: {type: docker, container: api}}
  db: {environment: production}
runbooks:
  deploy:
    services: [api, dbb]
    parameters: {version: {type: image_tag}}
    steps:
      - {kind: deploy, service: api, image: "{{ params.versoin }}"}
      - {kind: backup, service: api}
      - {kind: sql, service: api, statement: "VACUUM {{ params.version }}"}
      - {kind: chek, service: api}
"""
    with pytest.raises(CatalogInvalid) as raised:
        parse_catalog(yaml)
    found = str(raised.value)
    assert "steps[4]: unknown kind 'chek'; did you mean `check`?" in found
    assert "steps[3].statement: parameters never reach SQL" in found


def test_catalog_cross_checks_services_parameters_and_targets() -> None:
    yaml = """
services:
  api: {environment: production, target: {type: docker, container: api}}
  db: {environment: production}
runbooks:
  deploy:
    services: [api, dbb]
    parameters: {version: {type: image_tag}}
    steps:
      - {kind: deploy, service: api, image: "{{ params.versoin }}"}
      - {kind: backup, service: api}
      - {kind: restart, service: db}
      - {kind: maintenance, service: api, mode: on}
"""
    with pytest.raises(CatalogInvalid) as raised:
        parse_catalog(yaml)
    found = str(raised.value)
    assert "<catalog>:7: runbooks.deploy.services[1]: unknown service 'dbb'; did you mean `db`?" in found
    assert "runbooks.deploy.steps[1].image: uses parameter 'versoin', which is not declared" in found
    assert "runbooks.deploy.steps[2].kind: `backup` needs a `backup:`" in found
    assert "runbooks.deploy.steps[3].service: db is not among this runbook's services" in found
    assert "runbooks.deploy.steps[3].kind: `restart` needs a `target:`" in found
    assert "runbooks.deploy.steps[4].kind: `maintenance` needs a `maintenance:`" in found


def test_a_redis_restore_step_is_refused_when_the_catalog_loads() -> None:
    yaml = """
services:
  cache: {environment: production, backup: {type: redis, url_env: REDIS_URL, directory: /tmp/x}}
runbooks:
  restore-cache:
    services: [cache]
    steps:
      - {kind: restore, service: cache, backup: latest}
"""
    with pytest.raises(CatalogInvalid) as raised:
        parse_catalog(yaml)
    assert ("runbooks.restore-cache.steps[1].kind: services.cache backs up Redis, which opsbot cannot restore "
            "(Redis reads an RDB file only as it starts); restore it by hand") in str(raised.value)


def test_an_undo_less_change_before_a_rolling_back_step_is_a_warning() -> None:
    yaml = """
services:
  db:
    environment: production
    backup: {type: postgres, dsn_env: DB_DSN, directory: /tmp/x}
    checks: [{type: tcp, host: 127.0.0.1, port: 5432}]
runbooks:
  vacuum:
    services: [db]
    steps:
      - {kind: sql, service: db, statement: VACUUM ANALYZE}
      - {kind: check, service: db}
"""
    catalog = parse_catalog(yaml)
    [warning] = catalog_warnings(catalog)
    assert warning.startswith("runbooks.vacuum.steps[1]: `sql` has no undo: if step 2")


async def test_a_failing_health_line_offers_the_services_runbooks_and_asks_for_values(bot: RunningBot, app: App) -> None:
    backup_id = await take_backup(bot)
    app.healthy = False
    report = await ops(bot, "health shop")
    [offer] = [b["accessory"] for b in report["blocks"] if b.get("accessory", {}).get("action_id") == "runbook.offer"]
    assert offer["value"] == "restore-shop" and offer["text"]["text"] == "Run restore-shop…"
    await click(bot, "runbook.offer", "restore-shop", ALICE)
    view = bot.slack.of("views.open")[-1].args["view"]
    [backup] = [b for b in view["blocks"] if b.get("block_id") == "param.backup"]
    values = [o["value"] for o in backup["element"]["options"]]
    assert values == ["latest", str(backup_id)]
    [ticket] = [b for b in view["blocks"] if b.get("block_id") == "param.ticket"]
    assert ticket["element"]["initial_value"] == "OPS-1"


async def test_a_runbook_started_in_an_incident_channel_tells_its_story_on_the_timeline(bot: RunningBot, app: App,
                                                                                       tmp_path: Path) -> None:
    from tests.test_incidents import incident_cmd

    backup_id = await take_backup(bot)
    await incident_cmd(bot, "declare")
    view = bot.slack.of("views.open")[-1].args["view"]
    values = {"title": {"title.input": {"type": "plain_text_input", "value": "Orders look wrong"}},
              "severity": {"severity.input": {"type": "static_select", "selected_option": {"value": "P2"}}},
              "services": {"services.input": {"type": "multi_static_select", "selected_options": [{"value": "shop"}]}}}
    body, content_type = view_submission(view["callback_id"], values, user=ALICE, private_metadata=view["private_metadata"])
    assert (await bot.post(body, content_type)).status == 200
    await bot.settle()
    [incident] = await bot.ctx.store.incidents()
    channel = incident.channel_id or ""
    header = text(bot.slack.messages[(channel, incident.header_ts)])
    assert '"action_id": "runbook.offer"' in header and '"value": "restore-shop"' in header

    app.healthy = False
    url = bot.slack.response_url()
    plan_body, content_type = slash_command("/ops", f"run restore-shop backup={backup_id}", user=ALICE, channel=channel,
                                            response_url=url)
    async with bot.http.post(f"{bot.url}/slack/events", data=plan_body,
                             headers={"Content-Type": content_type, **sign(plan_body)}):
        pass
    await bot.settle()
    [plan] = [c.args for c in bot.slack.of("response_url") if url.endswith(c.path)][-1:]
    run_id = button(plan, "action.request")["value"]
    await click(bot, "action.request", run_id, ALICE)
    view = bot.slack.of("views.open")[-1].args["view"]
    body, content_type = view_submission(view["callback_id"],
                                         {"reason": {"reason.input": {"type": "plain_text_input", "value": "bad data"}}},
                                         user=ALICE, private_metadata=view["private_metadata"])
    assert (await bot.post(body, content_type)).status == 200
    await bot.settle()
    await click(bot, "approval.approve", run_id, BOB)
    entries = [e.text for e in await bot.ctx.store.entries(incident.id or 0)]
    story = "\n".join(entries)
    assert f"Action #{run_id} runbook restore-shop (backup={backup_id} ticket=OPS-1): running" in story
    assert f"Runbook run #{run_id} (restore-shop): step 3 (Check the health of shop, up to 2 tries 0.1 s apart) failed" in story
    assert f"Runbook run #{run_id} (restore-shop): undid step 2" in story and "undid step 1" in story
    assert f"Action #{run_id} runbook restore-shop" in story and ": failed" in story


def test_a_runbook_is_no_back_door_and_its_services_approvers_must_agree() -> None:
    yaml = """
approvals:
  environments:
    production: {runbook: {approvals: 1, approvers: [S0LEADS]}}
    payments: {runbook: {approvals: 2, approvers: [S0PAY], requesters: [S0SRE]}}
services:
  api: {environment: production, target: {type: docker, container: api}}
  pay: {environment: payments, target: {type: docker, container: pay}}
runbooks:
  both:
    services: [api, pay]
    steps: [{kind: restart, service: api}, {kind: restart, service: pay}]
"""
    with pytest.raises(CatalogInvalid) as raised:
        parse_catalog(yaml)
    assert "runbooks.both: its services' approval policies name different approvers" in str(raised.value)
    assert "give the runbook its own `approvals:`" in str(raised.value)
    with pytest.raises(CatalogInvalid) as raised:
        parse_catalog(yaml.replace("steps: [", 'steps: [{kind: http, url: "https://status/{{ params.x }}"}, '))
    assert "parameters never reach a URL" in str(raised.value)


async def test_every_services_requesters_must_allow_a_runbook(slack: FakeSlack, database_url: str,
                                                              http: aiohttp.ClientSession, tmp_path: Path) -> None:
    yaml = """
approvals:
  environments:
    payments: {runbook: {approvals: 1, requesters: [S0SRE]}}
services:
  api: {environment: production, target: {type: docker, container: api}}
  pay: {environment: payments, target: {type: docker, container: pay}}
runbooks:
  both:
    services: [api, pay]
    steps: [{kind: wait, seconds: 0}]
"""
    slack.groups = {"S0SRE": [BOB]}
    running, runner = await start_bot(make_settings(slack, database_url), yaml, slack, http)
    try:
        assert "You may not run `both`. Who may: <!subteam^S0SRE>" in text(await ops(running, "run both", ALICE))
        assert "Plan: runbook both" in text(await ops(running, "run both", BOB))
    finally:
        await runner.cleanup()


async def test_a_notify_step_links_its_channel_and_a_health_gate_shows_each_try(bot: RunningBot, app: App) -> None:
    app.healthy = False
    plan = await ops(bot, "run announce")
    assert "Post to <#C0OPS>: shop checked &amp; &lt;fine&gt;" in text(plan)  # the view's link; the catalog's text escaped
    run_id = int(button(plan, "action.request")["value"])
    await click(bot, "action.request", str(run_id), ALICE)
    run = await until(bot, run_id, lambda r: r.state.final)
    shown = [text(c.args) for c in bot.slack.of("chat.update")]
    # The gate's later looks are shown while it waits, not only its end.
    assert any("try 2 of 3 in 0.1 s (last: " in m for m in shown) and any("try 3 of 3" in m for m in shown)
    final = text(message_of(bot, run_id))
    assert "posted to <#C0OPS>" in final and "&lt;#C0OPS&gt;" not in final
    assert run.steps[1].detail == "posted to #C0OPS"  # plain text in the store: the view adds the link


async def test_history_of_a_service_includes_runbook_runs_that_touched_it(bot: RunningBot, app: App) -> None:
    plan = await ops(bot, "run announce")
    run_id = int(button(plan, "action.request")["value"])
    await click(bot, "action.request", str(run_id), ALICE)
    await until(bot, run_id, lambda r: r.state.final)
    assert f"#{run_id} *runbook announce*" in text(await ops(bot, "history shop"))  # its row names `front` first
    assert f"#{run_id} *runbook announce*" in text(await ops(bot, "history front"))
