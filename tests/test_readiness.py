"""`/readyz`: the store, the lock store, the scheduler's heartbeat and, in Socket Mode, the connection to Slack: one
down longer than SOCKET_DOWN_SECONDS turns it 503, logged and counted once per outage; shorter drops (Slack
refreshes connections) leave the replica ready."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from bot.clock import ManualClock
from bot.metrics import Metrics
from bot.socket_link import SocketLink
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, free_port, make_settings, start_bot


class Link:
    """The boundary SocketLink reads: a client that says whether its connection is up."""

    def __init__(self) -> None:
        self.up = True

    async def is_connected(self) -> bool:
        return self.up


def outages(metrics: Metrics) -> float:
    return metrics.registry.get_sample_value("opsbot_socket_mode_outages_total") or 0.0


async def test_a_socket_down_past_the_limit_is_unready_logged_and_counted_once_per_outage(
        caplog: pytest.LogCaptureFixture) -> None:
    clock, metrics, connection = ManualClock(datetime(2026, 12, 3, 10, 0, tzinfo=UTC)), Metrics(), Link()
    link = SocketLink(clock, 30.0, metrics.socket_outages)
    assert not (await link.observe()).up, "down until it follows a client (start-up connects before serving)"
    link.follow(connection)
    caplog.set_level(logging.INFO, logger="bot.socket_link")
    assert (await link.observe()).reason() == "ok"

    connection.up = False
    await link.observe()
    clock.advance(20)
    state = await link.observe()
    assert state.ready and state.reason() == "reconnecting: down for 20 s (SOCKET_DOWN_SECONDS is 30 s)"
    clock.advance(11)
    state = await link.observe()
    assert not state.ready and state.reason().startswith("Socket Mode connection down for 31 s")
    clock.advance(30)
    assert not (await link.observe()).ready
    assert outages(metrics) == 1
    assert [r.levelname for r in caplog.records] == ["WARNING", "ERROR"]

    connection.up = True
    assert (await link.observe()).ready
    assert caplog.records[-1].getMessage() == "the Socket Mode connection is back after 61 s; /readyz answers 200 again"
    connection.up = False
    await link.observe()
    clock.advance(5)
    await link.observe()
    connection.up = True
    await link.observe()  # a short drop: neither counted nor reported as back
    connection.up = False
    await link.observe()
    clock.advance(31)
    await link.observe()
    assert outages(metrics) == 2


@pytest.fixture
async def socket_bot(slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path) -> AsyncIterator[RunningBot]:
    settings = make_settings(slack, f"sqlite:///{tmp_path / 'opsbot.db'}", slack_app_token="xapp-1-A0001-test",
                             socket_down_seconds=0.3)
    running, runner = await start_bot(settings, "services: {}\n", slack, http)
    yield running
    await runner.cleanup()


async def readyz(bot: RunningBot) -> tuple[int, dict[str, str]]:
    async with bot.http.get(f"{bot.url}/readyz") as response:
        return response.status, json.loads(await response.text())


async def test_readyz_turns_503_when_the_socket_stays_down_and_says_why(socket_bot: RunningBot,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    bot = socket_bot
    await bot.slack.wait_for_socket()
    assert await readyz(bot) == (200, {"status": "ok", "store": "ok", "scheduler": "ok", "socket_mode": "ok"})

    caplog.set_level(logging.WARNING, logger="bot.socket_link")
    bot.slack.fail_next("apps.connections.open", error="internal_error", times=100)  # Slack keeps refusing
    await bot.slack.sockets[-1].close()
    deadline = asyncio.get_running_loop().time() + 5
    while (answer := await readyz(bot))[0] == 200:
        assert asyncio.get_running_loop().time() < deadline, answer
        await asyncio.sleep(0.05)
    status, body = answer
    assert status == 503 and body["status"] == "unavailable" and body["store"] == "ok"
    assert body["socket_mode"].startswith("Socket Mode connection down for ")
    assert "(SOCKET_DOWN_SECONDS is 0.3 s); Slack cannot reach this replica" in body["socket_mode"]
    assert any(r.levelname == "ERROR" and "/readyz answers 503" in r.getMessage() for r in caplog.records)
    async with bot.http.get(f"{bot.url}/metrics") as response:
        scrape = await response.text()
    assert "opsbot_socket_mode_outages_total 1.0" in scrape and "opsbot_socket_mode_connected 0.0" in scrape
    async with bot.http.get(f"{bot.url}/livez") as response:
        assert response.status == 200, "the process still serves: only readiness fails"


async def test_http_mode_has_no_socket_in_its_readiness(slack: FakeSlack, http: aiohttp.ClientSession,
                                                        tmp_path: Path) -> None:
    bot, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'o.db'}"), "services: {}\n", slack, http)
    try:
        assert await readyz(bot) == (200, {"status": "ok", "store": "ok", "scheduler": "ok"})
    finally:
        await runner.cleanup()


async def test_readyz_turns_503_when_the_lock_store_cannot_be_reached(slack: FakeSlack, http: aiohttp.ClientSession,
                                                                     tmp_path: Path) -> None:
    settings = make_settings(slack, f"sqlite:///{tmp_path / 'o.db'}", redis_url=f"redis://127.0.0.1:{free_port()}/0")
    bot, runner = await start_bot(settings, "services: {}\n", slack, http)
    try:
        status, body = await readyz(bot)
        assert status == 503 and body["store"] == "ok" and body["redis"] == "unreachable: ConnectionError"
    finally:
        await runner.cleanup()


async def test_readyz_turns_503_when_the_scheduler_loop_has_stopped(slack: FakeSlack, http: aiohttp.ClientSession,
                                                                   tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 12, 3, 10, 0, tzinfo=UTC))
    bot, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'o.db'}"), "services: {}\n", slack, http,
                                  clock=clock)
    try:
        clock.advance(70)  # more than the limit: a live loop wakes and passes (every TICK_SECONDS), staying fresh
        deadline = asyncio.get_running_loop().time() + 5
        while (answer := await readyz(bot)) != (200, {"status": "ok", "store": "ok", "scheduler": "ok"}):
            assert asyncio.get_running_loop().time() < deadline, answer  # the woken loop's pass takes a moment
            await asyncio.sleep(0.02)
        [loop] = [task for task in asyncio.all_tasks() if task.get_name() == "scheduler"]
        loop.cancel()  # the loop dies, as it would on an error nothing catches
        await asyncio.gather(loop, return_exceptions=True)
        clock.advance(61)
        status, body = await readyz(bot)
        assert status == 503 and body["store"] == "ok"
        assert body["scheduler"] == "no pass for 61 s (one is due at least every 5.0 s): its loop stopped or is stuck"
    finally:
        await runner.cleanup()
