"""Found by the fault suite (seed 2433465493 at OPSBOT_FAULTS_OPS=900 OPSBOT_FAULTS_EVERY=2): a declaration whose
channel step outlasts its lease (Slack answering 429 with Retry-After, a replica paused) is taken over by a chore on
another replica while it still runs. Both made a channel; the later write of the channel id won, and the other channel
was left belonging to no incident. Replayed here exactly: the chore runs while Slack holds the first create's answer.
And a declaration asked while the lock store (Redis) was down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.clock import ManualClock
from bot.incidents.declaring import finish_declarations
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings, start_bot
from tests.faults.cluster import PrivateRedis
from tests.test_declare_resume import CATALOG, T0, declare, made_channels, whole


@pytest.fixture
async def bot(slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path) -> AsyncIterator[tuple[RunningBot, ManualClock]]:
    clock = ManualClock(T0)
    running, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path}/o.db"), CATALOG, slack, http, clock=clock)
    yield running, clock
    await runner.cleanup()


async def test_a_declaration_taken_over_mid_channel_leaves_one_channel_linked_to_its_incident(
        bot: tuple[RunningBot, ManualClock]) -> None:
    running, clock = bot
    ctx = running.ctx

    async def lease_lapses_and_a_chore_takes_over() -> None:
        clock.advance(ctx.settings.lease_seconds + 1)
        await finish_declarations(ctx)

    running.slack.before_answering("conversations.create", lease_lapses_and_a_chore_takes_over)
    await declare(running, "API is down")
    await running.settle()
    clock.advance(ctx.settings.lease_seconds + 1)
    await finish_declarations(ctx)

    [incident] = await ctx.store.incidents()
    whole(running.slack, incident)  # exactly one live channel, the incident's
    assert made_channels(running.slack) == [running.slack.channels[incident.channel_id or ""]]



async def test_a_declaration_while_the_lock_store_is_down_is_not_called_nothing_done_and_is_finished_later(
        slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    """Found by the fault suite: the row was made, then the lease could not be taken (Redis down); Alice was told
    "nothing was run", and the chores declared the incident once Redis was back."""
    redis = PrivateRedis(tmp_path)  # its port chosen, nothing listening yet
    clock = ManualClock(T0)
    settings = make_settings(slack, f"sqlite:///{tmp_path}/o.db", redis_url=redis.url, redis_prefix="declare-test:")
    running, runner = await start_bot(settings, CATALOG, slack, http, clock=clock)
    try:
        told = await declare(running, "API is down")
        assert "nothing was run" not in told and "no need to declare it again" in told, told
        redis.start()
        clock.advance(settings.lease_seconds + 1)
        await finish_declarations(running.ctx)
        [incident] = await running.ctx.store.incidents()
        whole(running.slack, incident)
    finally:
        await runner.cleanup()
        redis.destroy()
