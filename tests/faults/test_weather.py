"""The fake Slack's switchable misbehaviour the fault suite relies on: a delivery sent twice, an event re-sent with
X-Slack-Retry-Num after an acknowledgement that came too late, a command never re-sent, a Web API call answered 429
with Retry-After. Each against a small server that records what reached it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from playground.slack_api import FakeSlack, Weather


@pytest.fixture
async def bot() -> AsyncIterator[tuple[str, list[dict[str, str]], list[float]]]:
    """A stand-in for the bot: records each request's headers; sleeps as long as `delays` says (then answers at once)."""
    seen: list[dict[str, str]] = []
    delays: list[float] = []

    async def events(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        if delays:
            await asyncio.sleep(delays.pop(0))
        return web.Response(text="")

    app = web.Application()
    app.router.add_post("/slack/events", events)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events", seen, delays
    await runner.cleanup()


async def test_calm_weather_delivers_once_signed(slack: FakeSlack, bot: tuple[str, list[dict[str, str]], list[float]]) -> None:
    url, seen, _ = bot
    delivery = await slack.deliver(url, "{}", "application/json", event=True)
    assert delivery.acks == 1 and len(seen) == 1
    assert seen[0]["X-Slack-Signature"].startswith("v0=") and "X-Slack-Retry-Num" not in seen[0]


async def test_a_duplicate_is_delivered_twice_at_once(slack: FakeSlack,
                                                     bot: tuple[str, list[dict[str, str]], list[float]]) -> None:
    url, seen, _ = bot
    slack.weather = Weather(duplicate=1.0, rng=random.Random(1))
    delivery = await slack.deliver(url, "payload=x", "application/x-www-form-urlencoded")
    assert delivery.acks == 2 and len(seen) == 2


async def test_an_event_acknowledged_too_late_is_retried_with_its_number(
        slack: FakeSlack, bot: tuple[str, list[dict[str, str]], list[float]]) -> None:
    url, seen, delays = bot
    slack.weather = Weather(ack_timeout=0.3, retries=3)
    delays += [1.0, 1.0]
    delivery = await slack.deliver(url, "{}", "application/json", event=True)
    assert [status for status, _ in delivery.attempts] == [0, 0, 200]
    assert [h.get("X-Slack-Retry-Num") for h in seen] == [None, "1", "2"]


async def test_a_command_acknowledged_too_late_is_not_retried(
        slack: FakeSlack, bot: tuple[str, list[dict[str, str]], list[float]]) -> None:
    url, seen, delays = bot
    slack.weather = Weather(ack_timeout=0.3, retries=3)
    delays.append(1.0)
    delivery = await slack.deliver(url, "command=/ops", "application/x-www-form-urlencoded")
    assert not delivery.acked and len(seen) == 1


async def test_the_web_api_answers_429_with_retry_after_when_rate_limiting(slack: FakeSlack) -> None:
    slack.weather = Weather(rate_limit=1.0, retry_after=2)
    async with aiohttp.ClientSession() as http, http.post(f"{slack.api_url}auth.test",
                                                          headers={"Authorization": "Bearer xoxb-1"}) as response:
        assert response.status == 429 and response.headers["Retry-After"] == "2"
    slack.weather = Weather()
    async with aiohttp.ClientSession() as http, http.post(f"{slack.api_url}auth.test",
                                                          headers={"Authorization": "Bearer xoxb-1"}) as response:
        assert response.status == 200
