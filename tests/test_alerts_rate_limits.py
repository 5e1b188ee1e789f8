"""Slack's rate limits during an alert storm: the fake Slack answers chat.postMessage and chat.update with 429 and
Retry-After; the group's message writer waits that long and tries again (slack_sdk's retry handler in the chat port,
while it holds the group's lease), deliveries arriving meanwhile are coalesced, nothing is posted twice, and the
message ends showing the group as stored. When Slack keeps refusing past the retries, the delivery is answered 503
and the sender's retry of it (a duplicate) brings the message up to date."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings, start_bot
from tests.test_alerts import CATALOG, TOKEN, am_alert, am_payload

CHANNEL = "C0APITEAM"


@pytest.fixture
async def bot(slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path) -> AsyncIterator[RunningBot]:
    settings = make_settings(slack, f"sqlite:///{tmp_path / 'opsbot.db'}", opsbot_alerts_token=TOKEN)
    running, runner = await start_bot(settings, CATALOG, slack, http)
    yield running
    await running.settle()
    await runner.cleanup()


async def _deliver(bot: RunningBot, payload: dict[str, Any]) -> int:
    async with bot.http.post(f"{bot.url}/alerts/alertmanager", data=json.dumps(payload).encode(),
                             headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}) as r:
        return r.status


def _storm(count: int) -> list[dict[str, Any]]:
    """`count` deliveries of one group, each adding an alert (as Alertmanager sends the group's alerts so far)."""
    alerts = [am_alert(f"fp{n}", instance=f"web-{n}") for n in range(count)]
    return [am_payload(*alerts[: n + 1]) for n in range(count)]


def _shown(slack: FakeSlack, ts: str) -> str:
    return str(slack.messages[(CHANNEL, ts)]["text"])


async def test_a_storm_under_rate_limits_waits_retries_and_loses_nothing(bot: RunningBot) -> None:
    slack = bot.slack
    slack.fail_next("chat.postMessage", status=429, retry_after=0)
    slack.fail_next("chat.update", status=429, retry_after=1)  # the first update is rate limited, mid-storm
    first, *rest = _storm(12)
    assert await _deliver(bot, first) == 200  # posted once the 429's Retry-After passed
    statuses = await asyncio.gather(*(_deliver(bot, payload) for payload in rest))
    await bot.settle()
    assert set(statuses) == {200}

    [refused_post] = slack.of("chat.postMessage!failed")
    [post] = slack.of("chat.postMessage")  # once: the 429 was retried, not posted again
    assert post.at > refused_post.at
    [refused_update] = slack.of("chat.update!failed")
    after = [u for u in slack.of("chat.update") if u.at > refused_update.at]
    assert after and after[0].at - refused_update.at >= 1.0  # its Retry-After (1 s) was waited out
    # Eleven deliveries, while the writer waited: coalesced into a few updates, the last showing every alert.
    assert len(slack.of("chat.update")) <= 4
    group = await bot.ctx.store.alert_group(1)
    assert group is not None and group.message_ts == post.args.get("ts", group.message_ts)
    assert group.message_ts is not None and _shown(slack, group.message_ts) == "FIRING: ApiDown (12 of 12 firing)"
    assert group.shown_version == group.version


async def test_past_the_retries_the_delivery_fails_and_its_retry_catches_the_message_up(bot: RunningBot) -> None:
    slack = bot.slack
    storm = _storm(3)
    assert await _deliver(bot, storm[0]) == 200
    group = await bot.ctx.store.alert_group(1)
    assert group is not None and group.message_ts is not None
    # Four 429s in a row: the chat port's three retries are spent, the write fails.
    slack.fail_next("chat.update", status=429, retry_after=0, times=4)
    assert await _deliver(bot, storm[1]) == 503  # Alertmanager will send it again
    behind = await bot.ctx.store.alert_group(1)
    assert behind is not None and behind.shown_version < behind.version
    assert _shown(slack, group.message_ts) == "FIRING: ApiDown (1 of 1 firing)"
    assert await _deliver(bot, storm[1]) == 200  # the retry: a duplicate, yet it writes the message it missed
    await bot.settle()
    assert _shown(slack, group.message_ts) == "FIRING: ApiDown (2 of 2 firing)"
    assert len(slack.of("chat.update!failed")) == 4 and len(slack.of("chat.postMessage")) == 1
    updates = len(slack.of("chat.update"))
    assert await _deliver(bot, storm[1]) == 200  # caught up: a further repeat writes nothing
    await bot.settle()
    assert len(slack.of("chat.update")) == updates
