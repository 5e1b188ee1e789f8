"""Alerts, the second slice: a group linked to the incident declared from it (timeline, acknowledgement, "every alert
resolved" offer, the post-mortem's impact window), reopening within `alerts.reopen_within` with a flap count, a storm
against the fake Slack (posts and updates counted), the auto-declare rule, `/ops alerts` and the daily digest.
Fast: SQLite (and PostgreSQL for the store), a fake Slack, a manual clock. The real Alertmanager is
tests/test_alerts_alertmanager.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from bot import digests
from bot.alerts.auto_declare import declare_due
from bot.alerts.catalog_checks import alert_errors
from bot.alerts.payloads import AlertStatus
from bot.catalog_loading import CatalogInvalid, parse_catalog
from bot.clock import ManualClock
from bot.incidents.metrics import metrics
from bot.incidents.models import EntryKind
from bot.store import Store
from bot.views.alerts import ACK_ACTION, DECLARE_ACTION, alert_message
from bot.views.digests import daily_message
from bot.views.incidents import RESOLVE
from playground.payloads import block_action, sign, slash_command, view_submission
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings, start_bot
from tests.test_alerts import CATALOG, TOKEN, _alert, _new, am_alert, am_payload

START = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
ONCALL = "U0ONCALL"
AUTO = """
    - match: {team: db}
      service: api
      declare: {when: {severity: critical}, after_minutes: 5, severity: P1}
"""


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock(START + timedelta(minutes=2))


@pytest.fixture
async def bot(slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Any, clock: ManualClock) -> AsyncIterator[RunningBot]:
    settings = make_settings(slack, f"sqlite:///{tmp_path / 'opsbot.db'}", opsbot_alerts_token=TOKEN)
    running, runner = await start_bot(settings, CATALOG.rstrip() + AUTO, slack, http, clock=clock)
    yield running
    await running.settle()
    await runner.cleanup()


async def _deliver(bot: RunningBot, payload: dict[str, Any]) -> None:
    async with bot.http.post(f"{bot.url}/alerts/alertmanager", data=json.dumps(payload).encode(),
                             headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}) as r:
        assert r.status == 200, await r.text()


async def _click(bot: RunningBot, action: str, value: str, channel: str = "C0APITEAM") -> None:
    body, kind = block_action(action, value, user=ONCALL, channel=channel, response_url=bot.slack.response_url())
    await bot.post(body, kind)
    await bot.settle()


# --- incident linking ----------------------------------------------------------------------------------------------


async def test_an_incident_declared_from_an_alert_hears_of_its_group_and_is_offered_resolution(bot: RunningBot) -> None:
    await _deliver(bot, am_payload(am_alert(), am_alert("fp2", instance="web-2")))
    await _click(bot, DECLARE_ACTION, "1")
    [opened] = bot.slack.of("views.open")
    view = opened.args["view"]
    values = {"title": {"title.input": {"type": "plain_text_input", "value": "API down"}},
              "severity": {"severity.input": {"type": "static_select", "selected_option": {"value": "P2"}}}}
    body, kind = view_submission(view["callback_id"], values, user=ONCALL, private_metadata=view["private_metadata"])
    assert (await bot.post(body, kind)).status == 200
    await bot.settle()
    [incident] = await bot.ctx.store.incidents()
    assert incident.id is not None and incident.channel_id is not None
    group = await bot.ctx.store.alert_group(1)
    assert group is not None and group.incident_id == incident.id
    entries = await bot.ctx.store.entries(incident.id)
    [firing] = [e for e in entries if e.kind is EntryKind.ALERT]
    assert firing.at == START and "firing: ApiDown on web-1; ApiDown on web-2" in firing.text
    # The post-mortem's impact window starts when the alert started, before the declaration.
    assert metrics(incident, entries).impact_start == START < incident.declared_at
    update = bot.slack.of("chat.update")[-1]
    shown = json.dumps(update.args["blocks"])
    assert f"Incident INC-{incident.id} declared from this alert" in shown and DECLARE_ACTION not in shown

    await _click(bot, ACK_ACTION, "1")
    acked = [e for e in await bot.ctx.store.entries(incident.id) if "acknowledged by" in e.text]
    assert [(e.kind, e.author) for e in acked] == [(EntryKind.ALERT, ONCALL)]

    ended = START + timedelta(minutes=3)
    await _deliver(bot, am_payload(am_alert(status="resolved", ends=ended), status="resolved"))
    await bot.settle()
    texts = [e.text for e in await bot.ctx.store.entries(incident.id)]
    assert "Alert *ApiDown* resolved: ApiDown on web-1" in texts
    assert not any("Every alert" in t for t in texts)  # web-2 still fires: no offer yet
    await _deliver(bot, am_payload(am_alert("fp2", instance="web-2", status="resolved", ends=ended), status="resolved"))
    await _deliver(bot, am_payload(am_alert("fp2", instance="web-2", status="resolved", ends=ended), status="resolved"))
    await bot.settle()
    texts = [e.text for e in await bot.ctx.store.entries(incident.id)]
    assert texts.count("Every alert of *ApiDown* resolved") == 1  # the repeated delivery adds nothing
    offers = [c for c in bot.slack.of("chat.postMessage") if c.args["channel"] == incident.channel_id
              and "Resolve the incident?" in json.dumps(c.args.get("blocks"))]
    assert len(offers) == 1
    [button] = [e for b in offers[0].args["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert (button["action_id"], button["value"]) == (RESOLVE, str(incident.id))  # the incident's own Resolve form
    still = await bot.ctx.store.get_incident(incident.id)
    assert still is not None and still.open  # never resolved automatically


# --- reopening -----------------------------------------------------------------------------------------------------


async def test_a_group_firing_again_soon_reopens_and_later_opens_a_new_group(store: Store) -> None:
    hour = timedelta(hours=1)
    first = await store.record_delivery(_new(), [_alert()], START, reopen_within=hour)
    resolved = await store.record_delivery(_new(), [_alert(AlertStatus.RESOLVED)], START + timedelta(minutes=6),
                                           reopen_within=hour)
    assert resolved.turned is AlertStatus.RESOLVED and resolved.group.resolved_at == START + timedelta(minutes=6)
    again = START + timedelta(minutes=20)
    reopened = await store.record_delivery(_new(), [_alert(starts=again)], again, reopen_within=hour)
    assert (reopened.group.id, reopened.group.flaps, reopened.turned) == (first.group.id, 1, AlertStatus.FIRING)
    assert reopened.group.resolved_at is None
    assert "fired again 1 time after resolving" in json.dumps(alert_message(reopened.group,
                                                                            await store.group_alerts(first.group.id)).blocks)
    await store.record_delivery(_new(), [_alert(AlertStatus.RESOLVED, starts=again)], again + timedelta(minutes=5),
                                reopen_within=hour)
    # A late re-send of the old firing, hours later, does not open anything.
    late = START + timedelta(hours=3)
    stale = await store.record_delivery(_new(), [_alert(starts=again)], late, reopen_within=hour)
    assert (stale.group.id, stale.changes) == (first.group.id, 0)
    fresh = await store.record_delivery(_new(), [_alert(starts=late)], late, reopen_within=hour)
    assert fresh.created and fresh.group.id != first.group.id and fresh.group.flaps == 0
    old = await store.alert_group(first.group.id)
    assert old is not None and old.status is AlertStatus.RESOLVED and old.flaps == 1


async def test_reopen_within_and_the_declare_rule_are_read_and_checked() -> None:
    catalog = parse_catalog(CATALOG.replace("  channel: C0ALERTS\n", "  channel: C0ALERTS\n  reopen_within: 1h30m\n")
                            .rstrip() + AUTO)
    assert catalog.alerts is not None and catalog.alerts.reopen_within == timedelta(minutes=90)
    assert parse_catalog(CATALOG).alerts.reopen_within == timedelta(hours=1)  # type: ignore[union-attr]
    assert alert_errors(catalog) == []
    with pytest.raises(CatalogInvalid, match=r"alerts\.routes\[2\]\.declare\.severity: unknown severity 'P9'"):
        parse_catalog(CATALOG.rstrip() + AUTO.replace("severity: P1", "severity: P9"))


# --- a storm -------------------------------------------------------------------------------------------------------


async def test_a_storm_of_a_thousand_alerts_and_a_hundred_groups_posts_each_group_once(bot: RunningBot) -> None:
    big = [am_payload(*[am_alert(f"big-{part}-{n}", instance=f"web-{part}-{n}") for n in range(100)])
           for part in range(10)]
    small = [am_payload(am_alert(f"g{n}", name=f"Api{n}"), group=f"Api{n}") for n in range(100)]
    await asyncio.gather(*(_deliver(bot, payload) for payload in [*big, *small]))
    await bot.settle()
    posts, updates = bot.slack.of("chat.postMessage"), bot.slack.of("chat.update")
    assert len(posts) == 101  # one message per group, ever
    # Ten deliveries to the big group at once: one writer at a time and the latest state wins, so they cost a
    # couple of writes at most (without coalescing each delivery updates the message: 9 updates; per alert: 999).
    assert len(updates) <= 3
    group = await bot.ctx.store.alert_group(1)
    assert group is not None
    last = [c for c in [*posts, *updates] if c.args.get("ts", group.message_ts) == group.message_ts
            and c.args["channel"] == group.channel_id and "ApiDown" in c.args["text"]][-1]
    assert "1000 of 1000 firing" in last.args["text"]  # the latest state won


# --- auto-declare --------------------------------------------------------------------------------------------------


async def test_the_auto_declare_rule_declares_once_after_the_group_fired_long_enough(bot: RunningBot,
                                                                                   clock: ManualClock) -> None:
    critical = am_alert("db1", name="DbDown", starts=START)
    critical["labels"] |= {"team": "db", "severity": "critical"}
    warning = am_alert("db2", name="DbSlow", starts=START)
    warning["labels"] |= {"team": "db", "severity": "warning"}
    await _deliver(bot, am_payload(critical, group="DbDown"))
    await _deliver(bot, am_payload(warning, group="DbSlow"))
    assert await declare_due(bot.ctx) == 0  # fired 2 minutes so far
    clock.advance(4 * 60)
    declared = await asyncio.gather(declare_due(bot.ctx), declare_due(bot.ctx), declare_due(bot.ctx))
    await bot.settle()
    assert sum(declared) == 1  # three replicas' chores: one declaration
    [incident] = await bot.ctx.store.incidents()
    assert (incident.severity, incident.title) == ("P1", "DbDown on web-1")
    group = await bot.ctx.store.alert_group(1)
    assert group is not None and group.incident_id == incident.id
    assert await declare_due(bot.ctx) == 0


# --- /ops alerts and the digest ------------------------------------------------------------------------------------


async def test_ops_alerts_lists_firing_groups_and_the_digest_counts_them(bot: RunningBot, clock: ManualClock) -> None:
    await _deliver(bot, am_payload(am_alert()))
    await _deliver(bot, am_payload(am_alert("fp9", name="Other"), group="Other"))
    await _deliver(bot, am_payload(am_alert("fp9", name="Other", status="resolved", ends=START + timedelta(minutes=1)),
                                   group="Other", status="resolved"))
    clock.advance(6 * 60)
    await _click(bot, ACK_ACTION, "1")
    url = bot.slack.response_url()
    body, kind = slash_command("/ops", "alerts", user=ONCALL, channel="C0APITEAM", response_url=url)
    async with bot.http.post(f"{bot.url}/slack/events", data=body, headers={"Content-Type": kind, **sign(body)}) as r:
        answer = await r.text()
    await bot.settle()
    answer += json.dumps([c.args for c in bot.slack.of("response_url") if url.endswith(c.path)])
    group = await bot.ctx.store.alert_group(1)
    assert group is not None and group.message_ts is not None
    assert "1 alert group firing" in answer and f"p{group.message_ts.replace('.', '')}|ApiDown" in answer
    assert f"acknowledged by <@{ONCALL}>" in answer and "Other" not in answer

    digest = await digests.daily(bot.ctx)
    assert digest.alerts is not None
    assert (digest.alerts.groups, digest.alerts.top_services, digest.alerts.acknowledged) == (2, (("api", 1), ("unrouted", 1)), 1)
    assert digest.alerts.mean_acknowledge == timedelta(minutes=6)
    text = json.dumps(daily_message(digest, bot.ctx.catalog.incidents).blocks)
    assert "2 alert groups* received" in text or "2 alert groups received" in text
    assert "Acknowledged 1 of 2, in 6 min on average" in text
