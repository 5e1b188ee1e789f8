"""Socket Mode for real: slack_sdk connects to the WebSocket URL the fake's apps.connections.open returns,
and the fake pushes envelopes the way Slack does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

import aiohttp
import pytest

from playground.payloads import event_callback, slash_command
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings, start_bot
from tests.targets import Targets


@pytest.fixture
async def bot(slack: FakeSlack, targets: Targets, http: aiohttp.ClientSession, tmp_path) -> AsyncIterator[RunningBot]:
    settings = make_settings(slack, f"sqlite:///{tmp_path / 'opsbot.db'}", slack_app_token="xapp-1-A0001-test")
    catalog = (f"services:\n  web:\n    environment: production\n    checks:\n"
               f"      - {{type: http, url: '{targets.url('/ok')}'}}\n")
    running, runner = await start_bot(settings, catalog, slack, http)
    yield running
    await runner.cleanup()


async def test_socket_mode_connects_with_the_app_token_and_serves_only_healthz(bot: RunningBot) -> None:
    await bot.slack.wait_for_socket()
    [opened] = bot.slack.of("apps.connections.open")
    assert opened.headers["Authorization"] == "Bearer xapp-1-A0001-test"
    async with bot.http.get(f"{bot.url}/healthz") as response:
        assert response.status == 200
    async with bot.http.post(f"{bot.url}/slack/events", data="x") as response:
        assert response.status in (404, 405)


async def test_slash_command_over_socket_mode_is_acked_and_answered(bot: RunningBot) -> None:
    await bot.slack.wait_for_socket()
    body, _ = slash_command("/ops", "help", user="U1", channel="C1", response_url=bot.slack.response_url())
    ack = await bot.slack.push("slash_commands", dict(parse_qsl(body)))
    assert "/ops health [service …|all]" in str(ack["payload"]["blocks"])

    body, _ = slash_command("/ops", "health web", user="U1", channel="C1", response_url=bot.slack.response_url())
    ack = await bot.slack.push("slash_commands", dict(parse_qsl(body)))
    assert "Running 1 check on 1 service" in ack["payload"]["text"]
    placeholder, report = await bot.slack.wait_for("response_url", count=2)  # the ⏳ note goes, the report comes
    assert placeholder.args == {"delete_original": True}
    assert report.args["response_type"] == "in_channel" and "✅ All 1 service healthy" in report.args["blocks"][0]["text"]["text"]


async def test_an_event_redelivered_over_the_socket_is_processed_once(bot: RunningBot) -> None:
    await bot.slack.wait_for_socket()
    event = {"type": "app_mention", "user": "U1", "text": "<@UBOT0001>", "ts": "1.1", "channel": "C1"}
    import json

    payload = json.loads(event_callback(event, event_id="Ev0SOCKET")[0])
    await bot.slack.push("events_api", payload)
    await bot.slack.push("events_api", payload)
    await bot.slack.wait_for("chat.postMessage")
    await bot.settle()
    assert len(bot.slack.of("chat.postMessage")) == 1
