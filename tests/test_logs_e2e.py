"""Logs as an operator reads them: a bot at DEBUG in JSON mode, driven through health, an approval, a runbook, an
incident, a failing check and a scheduled job, with distinctive secrets everywhere: no secret in any line, and
each line says which request, retry, person, run, incident or job it belongs to (HTTP and Socket Mode)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import handlers
from bot.app import build_bolt_app, build_context, build_web_app
from bot.catalog_loading import parse_catalog
from bot.clock import ManualClock
from bot.context import Context
from bot.logs import configure_logging, log_secrets
from bot.runs.models import ActionState
from bot.scheduling.jobs import catalog_jobs
from bot.scheduling.scheduler import Scheduler
from bot.settings import Settings
from playground.payloads import block_action, event_callback, sign, slash_command
from playground.slack_api import FakeSlack
from tests.conftest import pg_dsn
from tests.targets import Targets

ALICE, BOB = "U0ALICE", "U0BOB"
CHANNEL = "C0OPS"
BOT_TOKEN = "xoxb-4242-LOGTEST-bot-token-7d1e9a"
SIGNING = "signing-LOGTEST-5c0b7f3e91"
STORE_PASSWORD = "Store-LOGTEST-Pw-31f6"
CHECK_PASSWORD = "Check-LOGTEST-Pw-8a2d"
BACKUP_PASSWORD = "Backup-LOGTEST-Pw-44c0"
RUNBOOK_PASSWORD = "Runbook-LOGTEST-Pw-9e7b"
HEADER_SECRET = "Bearer s3cret-token"  # what the targets' /auth wants


def with_password(dsn: str, password: str) -> str:
    # The local PostgreSQL trusts 127.0.0.1, so any password connects: the DSNs work and still carry a secret.
    return dsn.replace("postgresql://postgres@", f"postgresql://postgres:{password}@")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The root logger at DEBUG in JSON mode into a buffer, as `opsbot serve` sets it up; restored after."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    access = logging.getLogger("aiohttp.access").level
    yield io.StringIO()
    root.handlers[:] = saved
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(access)


def button(message: dict[str, Any], action_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [element for block in message["blocks"] if block["type"] == "actions"
                                   for element in block["elements"] if element["action_id"] == action_id]
    return found[0]


class Bot:
    def __init__(self, url: str, http: aiohttp.ClientSession, slack: FakeSlack, ctx: Context) -> None:
        self.url, self.http, self.slack, self.ctx = url, http, slack, ctx

    async def settle(self) -> None:
        await self.ctx.tasks.idle()

    async def post(self, body: str, content_type: str, headers: dict[str, str] | None = None) -> None:
        all_headers = {"Content-Type": content_type, **sign(body, secret=SIGNING), **(headers or {})}
        async with self.http.post(f"{self.url}/slack/events", data=body.encode(), headers=all_headers) as response:
            assert response.status == 200, await response.text()
        await self.settle()

    async def command(self, command: str, text: str, user: str = ALICE) -> str:
        url = self.slack.response_url()
        await self.post(*slash_command(command, text, user=user, channel=CHANNEL, response_url=url))
        return json.dumps([c.args for c in self.slack.of("response_url") if url.endswith(c.path)], ensure_ascii=False)

    async def click(self, action_id: str, value: str, user: str) -> str:
        url = self.slack.response_url()
        await self.post(*block_action(action_id, value, user=user, channel=CHANNEL, response_url=url))
        return json.dumps([c.args for c in self.slack.of("response_url") if url.endswith(c.path)], ensure_ascii=False)


@pytest.fixture
async def world(captured: io.StringIO, slack: FakeSlack, targets: Targets, http: aiohttp.ClientSession,
                pg_database: str, tmp_path: Path) -> AsyncIterator[tuple[Bot, list[str]]]:
    slack.groups = {"S0LEADS": [BOB]}
    environ = {
        "CHECK_AUTH": HEADER_SECRET,
        # A database that does not exist: the check fails, and its error is about this DSN.
        "BROKEN_DSN": with_password(pg_dsn("opsbot_no_such_database"), CHECK_PASSWORD),
        "BACKUP_DSN": with_password(pg_database, BACKUP_PASSWORD),
        "RUNBOOK_DSN": with_password(pg_database, RUNBOOK_PASSWORD),
    }
    catalog = parse_catalog(f"""
approvals:
  environments:
    production: {{default: {{approvals: 1, approvers: [S0LEADS]}}}}
incidents: {{announce_channel: C0INCIDENTS}}
services:
  api:
    environment: production
    checks:
      - {{type: http, url: "{targets.url('/auth')}", headers_env: {{Authorization: CHECK_AUTH}}}}
  orders-db:
    environment: production
    checks:
      - {{type: postgres, dsn_env: BROKEN_DSN}}
    backup: {{type: postgres, dsn_env: BACKUP_DSN, directory: "{tmp_path / 'dumps'}"}}
runbooks:
  tidy:
    description: Tidy the orders database.
    services: [orders-db]
    approvals: {{approvals: 0}}
    steps:
      - {{kind: sql, service: orders-db, dsn_env: RUNBOOK_DSN, statement: VACUUM ANALYZE}}
""")
    settings = Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING, slack_api_url=slack.api_url,
                        database_url=with_password(pg_database, STORE_PASSWORD), log_level="DEBUG", log_format="json")
    secrets = log_secrets(settings, catalog, environ)
    configure_logging(settings.log_level, secrets, fmt=settings.log_format, stream=captured)
    ctx = build_context(settings, catalog, environ=environ)
    app = build_web_app(ctx, build_bolt_app(ctx, [handlers.register]))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield Bot(url, http, slack, ctx), [BOT_TOKEN, SIGNING, STORE_PASSWORD, CHECK_PASSWORD, BACKUP_PASSWORD,
                                           RUNBOOK_PASSWORD, HEADER_SECRET]
    finally:
        await runner.cleanup()


async def test_no_secret_reaches_a_json_log_line_across_the_flows_and_each_line_says_what_it_is_about(
        world: tuple[Bot, list[str]], captured: io.StringIO) -> None:
    bot, secrets = world
    async with bot.http.get(f"{bot.url}/healthz") as response:
        assert response.status == 200

    bot.slack.fail_next("response_url", status=404)  # the placeholder cannot be taken away: logged with its traceback
    health = await bot.command("/ops", "health")
    assert "1 of 2 services failing (orders-db)" in health, health  # the http check with its header passed

    plan = await bot.command("/ops", "backup orders-db before the upgrade")
    run_id = button(json.loads(plan)[-1], "action.request")["value"]
    await bot.click("action.request", run_id, ALICE)
    assert "runs now" in await bot.click("approval.approve", run_id, BOB)

    runbook = await bot.command("/ops", "run tidy")
    runbook_id = button(json.loads(runbook)[-1], "action.request")["value"]
    await bot.click("action.request", runbook_id, ALICE)

    for run in (run_id, runbook_id):
        stored = await bot.ctx.store.get_action(int(run))
        assert stored is not None and stored.state is ActionState.SUCCEEDED, stored
    # Someone pastes a secret into Slack: Slack shows it, but the log lines that carry the text must not.
    assert "INC-1 declared" in await bot.command("/incident", f"declare P1 checkout fails since {BACKUP_PASSWORD} leaked")
    body, content_type = event_callback({"type": "app_mention", "user": ALICE, "channel": CHANNEL,
                                         "text": "<@UBOT0001> help", "ts": "1700000000.000200"}, event_id="EvLOGTEST1")
    await bot.post(body, content_type, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})

    output = captured.getvalue()
    lines = [json.loads(line) for line in output.splitlines()]  # every line is one JSON object
    assert len(lines) > 50
    for secret in secrets:
        assert secret not in output, f"a log line holds {secret}"
    for line in lines:
        assert line["time"].endswith("Z") and line["level"] and line["logger"] and "event" in line

    def about(**fields: object) -> list[dict[str, Any]]:
        return [line for line in lines if all(line.get(k) == v for k, v in fields.items())]

    [failed] = [line for line in lines if "exception" in line]
    assert "ChatError: Slack refused the reply (404" in failed["exception"] and failed["request_id"] and failed["user"] == ALICE
    assert about(user=BOB, run_id=int(run_id)), "the approval's lines name the approver and the run"
    assert about(run_id=int(runbook_id)) and about(run_id=int(run_id), logger="slack_sdk.web.async_base_client")
    assert all(line["request_id"] for line in about(user=BOB))
    assert about(incident="INC-1", user=ALICE)
    assert about(request_id="EvLOGTEST1", retry=1, user=ALICE)
    assert len({line["request_id"] for line in lines if "request_id" in line}) >= 8  # one per request


async def test_over_socket_mode_a_requests_lines_carry_its_envelope_id_retry_number_and_user(
        captured: io.StringIO, slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    settings = Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING, slack_api_url=slack.api_url,
                        slack_app_token="xapp-1-A0001-LOGTEST-app-token", database_url=f"sqlite:///{tmp_path / 'o.db'}",
                        log_level="DEBUG", log_format="json")
    catalog = parse_catalog("services: {}\n")
    configure_logging(settings.log_level, log_secrets(settings, catalog, {}), fmt="json", stream=captured)
    ctx = build_context(settings, catalog, environ={})
    runner = web.AppRunner(build_web_app(ctx, build_bolt_app(ctx, [handlers.register])))
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        await slack.wait_for_socket()
        body, _ = event_callback({"type": "app_mention", "user": ALICE, "text": "<@UBOT0001> help", "ts": "1.2",
                                  "channel": CHANNEL}, event_id="EvLOGSOCKET")
        ack = await slack.push("events_api", json.loads(body), retry_attempt=2)
        await slack.wait_for("chat.postMessage")
        await ctx.tasks.idle()
    finally:
        await runner.cleanup()
    output = captured.getvalue()
    lines = [json.loads(line) for line in output.splitlines()]
    answered = [line for line in lines if line["logger"].startswith("slack_sdk.web") and "chat.postMessage" in line["event"]]
    assert answered and all(line.get("request_id") == ack["envelope_id"] for line in answered)
    assert all(line.get("retry") == 2 and line.get("user") == ALICE for line in answered)
    assert "LOGTEST-app-token" not in output and BOT_TOKEN not in output


async def test_a_scheduled_jobs_lines_name_the_occurrence_and_the_run_it_started(
        captured: io.StringIO, slack: FakeSlack, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "orders.csv").write_text("id\n1\n")
    (tmp_path / "backups").write_text("a file where the backup directory should be")  # the backup fails
    catalog = parse_catalog(f"""
schedules: {{channel: {CHANNEL}}}
services:
  files:
    environment: production
    backup: {{type: directory, paths: ["{tmp_path / 'data'}"], directory: "{tmp_path / 'backups'}", schedule: "0 2 * * *"}}
""")
    settings = Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING, slack_api_url=slack.api_url,
                        database_url=f"sqlite:///{tmp_path / 'o.db'}", log_level="DEBUG", log_format="json")
    configure_logging(settings.log_level, log_secrets(settings, catalog, {}), fmt="json", stream=captured)
    clock = ManualClock(datetime(2026, 11, 23, 1, 59, 50, tzinfo=UTC))
    ctx = build_context(settings, catalog, clock=clock, environ={})
    await ctx.start()
    try:
        scheduler = Scheduler(ctx, catalog_jobs(ctx.catalog))
        await scheduler.one_pass()
        clock.advance(15)
        await scheduler.one_pass()
        await ctx.tasks.idle()
    finally:
        await ctx.stop()
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    job = "backup:files@2026-11-23T02:00:00Z"
    runs = {line["run_id"] for line in lines if line.get("job") == job and "run_id" in line}
    assert len(runs) == 1, "the run's lines name both the occurrence and the run"
    assert any(line["level"] == "error" and line.get("job") == job and "failed" in line["event"] for line in lines)
    assert not any("job" in line for line in lines if line["logger"] == "bot.context"), "start-up is no job's"
