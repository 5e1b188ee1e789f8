"""Declaring an incident survives a store outage at any step: once the store answers again, the chores finish the
declaration (channel linked, people invited, header pinned, announcement posted, each once) or nothing is left
behind. Never an incident without its channel, nor a channel without its incident. Both backends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, cast

import aiohttp
import pytest

from bot.audit import Outcome
from bot.clock import ManualClock
from bot.errors import StoreUnavailable
from bot.incidents.models import DeclareStage, Incident
from bot.scheduling.scheduler import chores
from bot.store import Store
from playground.payloads import sign, slash_command
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings, start_bot
from tests.store_faults import FaultyStore

ALICE, CAROL = "U0ALICE", "U0CAROL"
OPS, INCIDENTS = "C0OPS", "C0INCIDENTS"
T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
CATALOG = f"""
incidents:
  announce_channel: {INCIDENTS}
  responders: [{CAROL}]
services:
  api:
    environment: production
"""
# The store's writes while `/incident declare` runs, when nothing fails: the request's audit entry, the row, the
# timeline, the lease, the channel's name, then one write per step, its renewals, the posts' intents and ts, the lease
# released, the outcome.
WRITES_OF_A_DECLARATION = 19


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
async def bot(slack: FakeSlack, database_url: str, http: aiohttp.ClientSession, clock: ManualClock) -> AsyncIterator[RunningBot]:
    running, runner = await start_bot(make_settings(slack, database_url), CATALOG, slack, http, clock=clock)
    yield running
    await runner.cleanup()


async def declare(bot: RunningBot, title: str) -> str:
    """`/incident declare P1 <title>` by Alice; everything she was told."""
    url = bot.slack.response_url()
    body, content_type = slash_command("/incident", f"declare P1 {title}", user=ALICE, channel=OPS, response_url=url)
    async with bot.http.post(f"{bot.url}/slack/events", data=body,
                             headers={"Content-Type": content_type, **sign(body)}) as response:
        assert response.status == 200
        told = json.dumps(await response.json(), ensure_ascii=False) if response.content_type == "application/json" else ""
    await bot.settle()
    answers = [json.dumps(c.args, ensure_ascii=False) for c in bot.slack.of("response_url") if url.endswith(c.path)]
    return "\n".join([told, *answers])


async def after_the_outage(bot: RunningBot, faulty: FaultyStore, clock: ManualClock) -> None:
    """The store answers again; a lease the cut-short request could not release lapses; the chores run."""
    faulty.recover()
    clock.advance(bot.ctx.settings.lease_seconds + 1)
    for _ in range(50):  # the scheduler's own chores may hold a declaration's lease for a moment
        await chores(bot.ctx)
        await bot.settle()
        if not await bot.ctx.store.unfinished_declarations():
            return
        await asyncio.sleep(0.05)


def made_channels(slack: FakeSlack) -> list[dict[str, Any]]:
    """The channels opsbot created that are not archived."""
    return [c for c in slack.channels.values() if c["id"] not in (OPS, INCIDENTS) and not c.get("archived")]


def posts_with_key(slack: FakeSlack, channel: str, key: str) -> int:
    return sum(1 for (where, _), message in slack.messages.items()
               if where == channel and ((message.get("metadata") or {}).get("event_payload") or {}).get("key") == key)


def whole(slack: FakeSlack, incident: Incident) -> None:
    """Everything a declaration makes, each once."""
    assert incident.declare_stage is DeclareStage.DECLARED
    [channel] = made_channels(slack)
    assert (incident.channel_id, incident.channel_name) == (channel["id"], channel["name"])
    assert {ALICE, CAROL} <= channel["members"]
    assert posts_with_key(slack, channel["id"], f"incident:{incident.id}:header") == 1
    assert incident.header_ts in slack.pins.get(channel["id"], [])
    assert posts_with_key(slack, INCIDENTS, f"incident:{incident.id}:announce") == 1
    assert incident.announce_ts is not None


async def test_a_declaration_without_faults_makes_this_many_writes(bot: RunningBot) -> None:
    faulty = FaultyStore(bot.ctx.store)
    bot.ctx.store = cast(Store, faulty)
    await declare(bot, "API is down")
    assert len(faulty.writes) == WRITES_OF_A_DECLARATION, faulty.writes
    [incident] = await bot.ctx.store.incidents()
    whole(bot.slack, incident)


@pytest.mark.parametrize("down_at", range(1, WRITES_OF_A_DECLARATION + 1))
async def test_a_store_outage_at_any_write_of_a_declaration_leaves_it_whole_or_absent(
    bot: RunningBot, clock: ManualClock, down_at: int
) -> None:
    real = bot.ctx.store
    faulty = FaultyStore(real, down_at=down_at)
    bot.ctx.store = cast(Store, faulty)
    told = await declare(bot, "API is down")
    assert "Something went wrong" not in told and "Reference" not in told, told
    refused_at = faulty.writes[down_at - 1]

    await after_the_outage(bot, faulty, clock)

    incidents = await real.incidents()
    if not incidents:  # the outage came before the incident's row: nothing was made, and Alice was told so
        assert refused_at in ("record_audit", "create_incident"), faulty.writes
        assert StoreUnavailable.user_text in told
        assert made_channels(bot.slack) == []
        return
    [incident] = incidents
    whole(bot.slack, incident)
    assert StoreUnavailable.user_text not in told  # the incident exists: she was told it was declared
    assert incident.key in told
    audited = [e for e in await real.audit_entries() if e.name == "/incident"]
    assert [e.outcome for e in audited] == [Outcome.OK], audited


async def test_a_declaration_cut_short_after_slack_made_the_channel_is_linked_to_that_channel(
    bot: RunningBot, clock: ManualClock
) -> None:
    """The issue's case: the channel exists, the write of its id fails. The chore finds it by its recorded name."""
    real = bot.ctx.store
    faulty = FaultyStore(real)
    bot.ctx.store = cast(Store, faulty)
    # The channel's name is recorded before it is made; the write after Slack's answer is the first to fail.
    faulty.down_at = len(["record_audit", "create_incident", "acquire_lease", "add_entry", "update_incident"]) + 1
    told = await declare(bot, "Checkout fails")
    [stored] = await real.incidents()
    assert stored.channel_id is None and stored.declare_stage is DeclareStage.CREATING
    [channel] = made_channels(bot.slack)
    assert stored.channel_name == channel["name"]
    assert "declared" in told and "no need to declare it again" in told

    await after_the_outage(bot, faulty, clock)
    [incident] = await real.incidents()
    assert incident.channel_id == channel["id"]  # the same channel, not a second one
    whole(bot.slack, incident)
    told_later = [c.args for c in bot.slack.of("chat.postMessage") if c.args.get("channel") == ALICE]
    assert any("is ready" in json.dumps(args) for args in told_later)


async def test_a_roll_back_cut_short_is_finished_by_the_chore(bot: RunningBot, clock: ManualClock) -> None:
    """A declaration whose channel Slack refused, cut short while rolling back: the channel an earlier attempt made
    under the recorded name is archived, the row deleted."""
    real = bot.ctx.store
    incident_id = await real.create_incident(Incident(title="Stray", severity="P1", declared_by=ALICE, declared_at=T0,
                                                      declare_stage=DeclareStage.ROLLING_BACK))
    await real.update_incident(incident_id, channel_name="inc-stray")
    stray = await bot.ctx.chat.create_channel("inc-stray", private=False)
    await after_the_outage(bot, FaultyStore(real), clock)
    assert await real.incidents() == []
    assert bot.slack.channels[stray].get("archived") and made_channels(bot.slack) == []


async def test_a_channel_slack_refuses_leaves_neither_incident_nor_channel(bot: RunningBot, clock: ManualClock) -> None:
    bot.slack.fail_next("conversations.create", error="restricted_action")
    told = await declare(bot, "API is down")
    assert "declared" not in told
    await after_the_outage(bot, FaultyStore(bot.ctx.store), clock)
    assert await bot.ctx.store.incidents() == [] and made_channels(bot.slack) == []
    [audited] = [e for e in await bot.ctx.store.audit_entries() if e.name == "/incident"]
    assert audited.outcome is Outcome.ERROR and "rolled back" in (audited.detail or "")
