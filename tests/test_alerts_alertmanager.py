"""Alerts end to end with a real Alertmanager: an alert fires → one message (though every notification arrives
twice, as from two clustered peers); Silence → the silence is in Alertmanager's API, Unsilence expires it; the alert
resolves → the same message says so. One Alertmanager for the module (tests/alertmanager.py)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import handlers
from bot.alerts.models import AlertGroup
from bot.app import build_bolt_app, build_context, build_web_app
from bot.catalog_loading import parse_catalog
from bot.views.alerts import UNSILENCE_ACTION
from playground.payloads import block_action
from playground.slack_api import FakeSlack
from tests.alertmanager import RunningAlertmanager, alertmanager, eventually
from tests.conftest import RunningBot, make_settings

__all__ = ["alertmanager"]

TOKEN = "alertmanager-bearer-0123456789"
CHANNEL = "C0ALERTS"


@pytest.fixture
async def bot(alertmanager: RunningAlertmanager, slack: FakeSlack, http: aiohttp.ClientSession,
              tmp_path: Path) -> AsyncIterator[RunningBot]:
    catalog = f"""
services:
  api: {{environment: production}}
alerts:
  channel: {CHANNEL}
  alertmanager_url: {alertmanager.url}
  routes:
    - {{match: {{service: api}}, service: api}}
"""
    settings = make_settings(slack, f"sqlite:///{tmp_path / 'opsbot.db'}", opsbot_alerts_token=TOKEN)
    ctx = build_context(settings, parse_catalog(catalog), environ={})
    runner = web.AppRunner(build_web_app(ctx, build_bolt_app(ctx, [handlers.register])))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", alertmanager.bot_port).start()
    port = runner.addresses[0][1]
    yield RunningBot(f"http://127.0.0.1:{port}", ctx, slack, http)
    await ctx.tasks.idle()
    await runner.cleanup()


def _alert(name: str, starts: datetime, *, ends: datetime | None = None) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "startsAt": starts.isoformat(),
        "labels": {"alertname": name, "service": "api", "instance": "web-1"},
        "annotations": {"summary": f"{name}: web-1 is down"},
        "generatorURL": "http://prometheus.example/graph",
    }
    if ends is not None:
        alert["endsAt"] = ends.isoformat()
    return alert


async def _with_message(bot: RunningBot, group_id: int) -> AlertGroup | None:
    group = await bot.ctx.store.alert_group(group_id)
    return group if group is not None and group.message_ts is not None else None


def _posts_of(slack: FakeSlack, name: str, method: str) -> list[Any]:
    return [call for call in slack.of(method) if name in call.args.get("text", "")]


async def test_an_alert_fires_is_silenced_and_resolves_in_one_message(alertmanager: RunningAlertmanager,
                                                                       bot: RunningBot) -> None:
    name, starts = f"ApiDown{uuid.uuid4().hex[:6]}", datetime.now(UTC) - timedelta(seconds=1)
    await asyncio.to_thread(alertmanager.api, "POST", "alerts", [_alert(name, starts)])
    [post] = await eventually(lambda: _posts_of(bot.slack, name, "chat.postMessage"), "the alert's message", 15.0, 0.05)
    assert post.args["channel"] == CHANNEL and "FIRING" in post.args["text"]
    # Its ts is stored on the group once the post returns: a moment after Slack saw it.
    group = await eventually(lambda: _with_message(bot, 1), "the message's ts on its group", 15.0, 0.05)
    assert group.service == "api"
    ts = group.message_ts

    # Silence 1 h: the silence is in Alertmanager, with the group's matchers and who asked.
    click, kind = block_action("alert.silence.1h", str(group.id), user="U0ONCALL", channel=CHANNEL,
                               response_url=bot.slack.response_url())
    await bot.post(click, kind)
    await bot.settle()
    silenced = await bot.ctx.store.alert_group(group.id)
    assert silenced is not None and silenced.silence_id is not None, bot.slack.of("response_url")
    found = await asyncio.to_thread(alertmanager.api, "GET", f"silence/{silenced.silence_id}")
    assert found["status"]["state"] == "active" and "U0ONCALL" in found["createdBy"]
    assert found["matchers"] == [{"name": "alertname", "value": name, "isRegex": False, "isEqual": True}]
    assert any("Silenced by <@U0ONCALL>" in json.dumps(u.args["blocks"]) for u in bot.slack.of("chat.update"))
    click, kind = block_action(UNSILENCE_ACTION, str(group.id), user="U0ONCALL", channel=CHANNEL,
                               response_url=bot.slack.response_url())
    await bot.post(click, kind)
    await bot.settle()
    found = await asyncio.to_thread(alertmanager.api, "GET", f"silence/{silenced.silence_id}")
    assert found["status"]["state"] == "expired"

    # Resolved (endsAt in the past): the same message is updated.
    ended = datetime.now(UTC) - timedelta(milliseconds=100)
    await asyncio.to_thread(alertmanager.api, "POST", "alerts", [_alert(name, starts, ends=ended)])
    [resolved, *_] = await eventually(lambda: [u for u in _posts_of(bot.slack, name, "chat.update")
                                              if u.args["text"].startswith("RESOLVED")],
                                      "the resolved update", 15.0, 0.05)
    assert resolved.args["ts"] == ts and "lasted" in json.dumps(resolved.args["blocks"])
    await bot.settle()
    assert len(_posts_of(bot.slack, name, "chat.postMessage")) == 1  # every notification came twice: one message


async def test_unsilencing_a_silence_alertmanager_no_longer_has_counts_as_done(alertmanager: RunningAlertmanager,
                                                                             http: aiohttp.ClientSession) -> None:
    # Deleted in its UI, or lost with its storage: this Alertmanager answers the DELETE with 500, not 404.
    from bot.alerts import silences

    await silences.expire(http, alertmanager.url, str(uuid.uuid4()))
    now = datetime.now(UTC)
    made = await silences.create(http, alertmanager.url, {"alertname": f"gone-{uuid.uuid4().hex[:6]}"}, starts=now,
                                 ends=now + timedelta(hours=1), created_by="U0ALICE", comment="test")
    await silences.expire(http, alertmanager.url, made)
    await silences.expire(http, alertmanager.url, made)  # already expired: done as well
    with pytest.raises(silences.SilenceFailed, match="could not be reached"):
        await silences.expire(http, "http://127.0.0.1:9", made)
