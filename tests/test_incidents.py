"""Incidents end to end through signed Slack requests: declare, the channel and its header, updates,
roles, the timeline with 📌 pins, reminders on a controllable clock, several incidents at once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from bot import cli
from bot.clock import ManualClock
from bot.incidents import reminders
from bot.incidents.models import EntryKind, IncidentStatus, TimelineEntry
from playground.payloads import block_action, event_callback, sign, slash_command, view_submission
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings, start_bot
from tests.targets import Targets

ALICE, BOB, CAROL, DAVE = "U0ALICE", "U0BOB", "U0CAROL", "U0DAVE"
OPS, INCIDENTS = "C0OPS", "C0INCIDENTS"
T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def catalog(targets: Targets) -> str:
    return f"""
incidents:
  announce_channel: {INCIDENTS}
  responders: [{CAROL}]
  escalation: [S0ONCALL]
services:
  api:
    environment: production
    owners: [{BOB}]
    checks: [{{type: http, url: "{targets.url('/ok')}"}}]
  search:
    environment: staging
"""


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
async def bot(slack: FakeSlack, database_url: str, http: aiohttp.ClientSession, targets: Targets,
              clock: ManualClock) -> AsyncIterator[RunningBot]:
    slack.groups = {"S0ONCALL": [DAVE]}
    running, runner = await start_bot(make_settings(slack, database_url), catalog(targets), slack, http, clock=clock)
    yield running
    await runner.cleanup()


async def incident_cmd(bot: RunningBot, text: str, *, user: str = ALICE, channel: str = OPS) -> str:
    """`/incident …`; returns everything the user was told (ack body and response_url answers)."""
    url = bot.slack.response_url()
    body, content_type = slash_command("/incident", text, user=user, channel=channel, response_url=url)
    async with bot.http.post(f"{bot.url}/slack/events", data=body,
                             headers={"Content-Type": content_type, **sign(body)}) as response:
        assert response.status == 200
        acked = await response.text()
    await bot.settle()
    answers = [json.dumps(c.args, ensure_ascii=False) for c in bot.slack.of("response_url") if url.endswith(c.path)]
    return "\n".join([acked, *answers])


async def declared(bot: RunningBot, text: str = "P1 API is down", user: str = ALICE) -> tuple[str, object]:
    await incident_cmd(bot, f"declare {text}", user=user)
    [incident] = [i for i in await bot.ctx.store.incidents() if i.title == text.split(" ", 1)[1]]
    assert incident.channel_id
    return incident.channel_id, incident


async def press(bot: RunningBot, action_id: str, value: str, user: str, channel: str, *, selected: bool = False) -> None:
    chosen = {"selected_option": {"value": value, "text": {"type": "plain_text", "text": value}}} if selected else None
    body, content_type = block_action(action_id, value, user=user, channel=channel, response_url=bot.slack.response_url(),
                                      message_ts="1.1", element_type="static_select" if selected else "button", chosen=chosen)
    assert (await bot.post(body, content_type)).status == 200
    await bot.settle()


async def test_declaring_a_p1_opens_a_channel_invites_pins_and_announces(bot: RunningBot) -> None:
    channel, incident = await declared(bot)
    created = bot.slack.channels[channel]
    assert created["name"] == "inc-20261123-api-is-down"
    assert {ALICE, CAROL} <= created["members"]
    assert created["topic"] == f"{incident.key} · P1 · Investigating · Commander: <@{ALICE}>"
    [pinned] = bot.slack.pins[channel]
    pinned_header = json.dumps(bot.slack.messages[(channel, pinned)], ensure_ascii=False)
    assert f"🔴 {incident.key} · P1 Critical · Investigating: API is down" in pinned_header
    header = json.dumps(bot.slack.messages[(channel, pinned)])
    for action in ("incident.ack", "incident.commander", "incident.note", "incident.health", "incident.resolve",
                   "incident.postmortem", "incident.severity", "incident.status"):
        assert action in header
    [announced] = [m for (c, _), m in bot.slack.messages.items() if c == INCIDENTS]
    assert f"<#{channel}>" in json.dumps(announced)
    entries = await bot.ctx.store.entries(incident.id)
    assert [e.kind for e in entries] == [EntryKind.DECLARED]


async def test_the_declare_form_invites_the_affected_services_owners(bot: RunningBot) -> None:
    said = await incident_cmd(bot, "declare")
    [opened] = bot.slack.of("views.open")
    view = opened.args["view"]
    values = {"title": {"title.input": {"type": "plain_text_input", "value": "Checkout is slow"}},
              "severity": {"severity.input": {"type": "static_select", "selected_option": {"value": "P2"}}},
              "services": {"services.input": {"type": "multi_static_select", "selected_options": [{"value": "api"}]}},
              "description": {"description.input": {"type": "plain_text_input", "value": "p95 at 4 s"}}}
    body, content_type = view_submission(view["callback_id"], values, user=ALICE, private_metadata=view["private_metadata"])
    assert (await bot.post(body, content_type)).status == 200
    await bot.settle()
    [incident] = await bot.ctx.store.incidents()
    assert (incident.severity, incident.services, incident.description) == ("P2", ("api",), "p95 at 4 s")
    assert BOB in bot.slack.channels[incident.channel_id or ""]["members"]
    dm = [c.args for c in bot.slack.of("chat.postMessage") if c.args.get("channel") == ALICE]
    assert dm and f"{incident.key} declared: <#{incident.channel_id}>" in json.dumps(dm[-1])
    assert "⏳" not in said


async def test_updates_land_in_the_channel_the_announcement_thread_the_topic_and_the_timeline(bot: RunningBot,
                                                                                              clock: ManualClock) -> None:
    channel, incident = await declared(bot)
    clock.advance(4 * 60)
    assert "Acknowledged." in await incident_cmd(bot, "ack", user=BOB, channel=channel)
    assert "Already acknowledged by <@U0BOB>" in await incident_cmd(bot, "ack", user=DAVE, channel=channel)
    await incident_cmd(bot, "status identified bad deploy of v42", user=BOB, channel=channel)
    await incident_cmd(bot, "severity P2", user=BOB, channel=channel)
    await incident_cmd(bot, "role <@U0BOB|bob> commander", channel=channel)
    await incident_cmd(bot, "note rolled back to v41", user=BOB, channel=channel)
    clock.advance(10 * 60)
    await incident_cmd(bot, "status monitoring error rate back to normal", user=BOB, channel=channel)
    await incident_cmd(bot, "resolve rolled back; fix in v43", user=BOB, channel=channel)

    stored = await bot.ctx.store.get_incident(incident.id)
    assert stored is not None and stored.status is IncidentStatus.RESOLVED and stored.severity == "P2" and stored.commander == BOB
    assert stored.acknowledged_at == T0 + timedelta(minutes=4) and stored.mitigated_at == T0 + timedelta(minutes=14)
    assert bot.slack.channels[channel]["topic"].endswith(f"P2 · Resolved · Commander: <@{BOB}>")
    kinds = [e.kind for e in await bot.ctx.store.entries(incident.id)]
    assert kinds == [EntryKind.DECLARED, EntryKind.ACKNOWLEDGED, EntryKind.STATUS, EntryKind.SEVERITY, EntryKind.ROLE,
                     EntryKind.NOTE, EntryKind.STATUS, EntryKind.RESOLVED]
    mirrored = [c.args for c in bot.slack.of("chat.postMessage") if c.args.get("channel") == INCIDENTS
                and c.args.get("thread_ts")]
    assert any("Identified" in json.dumps(m) for m in mirrored) and any("Resolved" in json.dumps(m) for m in mirrored)
    timeline = await incident_cmd(bot, "timeline", user=ALICE, channel=channel)
    assert "rolled back to v41" in timeline and "2026-11-23 03:04 UTC (04:04 Europe/Paris)" in timeline


async def test_a_pinned_message_joins_the_timeline_and_leaves_when_unpinned(bot: RunningBot) -> None:
    channel, incident = await declared(bot)
    ts = bot.slack.said(channel, BOB, "cache hit ratio dropped to 12%")
    for event_type in ("reaction_added", "reaction_added"):  # a duplicate event adds it once
        body, content_type = event_callback({"type": event_type, "user": BOB, "reaction": "pushpin",
                                             "item": {"type": "message", "channel": channel, "ts": ts}, "event_ts": "9.9"})
        await bot.post(body, content_type)
    await bot.settle()
    [pin] = [e for e in await bot.ctx.store.entries(incident.id) if e.kind is EntryKind.PIN]
    assert (pin.text, pin.author, pin.source_ts) == ("cache hit ratio dropped to 12%", BOB, ts) and pin.permalink
    # The 📌 is answered where it was made: opsbot's ✅ says the message is on the timeline (once).
    assert bot.slack.reactions[(channel, ts)]["white_check_mark"] == {"UBOT0001"}
    other = event_callback({"type": "reaction_added", "user": BOB, "reaction": "thumbsup",
                            "item": {"type": "message", "channel": channel, "ts": ts}, "event_ts": "9.9"})
    await bot.post(*other)
    body, content_type = event_callback({"type": "reaction_removed", "user": BOB, "reaction": "pushpin",
                                         "item": {"type": "message", "channel": channel, "ts": ts}, "event_ts": "9.9"})
    await bot.post(body, content_type)
    await bot.settle()
    assert [e.kind for e in await bot.ctx.store.entries(incident.id)] == [EntryKind.DECLARED]
    assert bot.slack.reactions[(channel, ts)]["white_check_mark"] == set(), "off the timeline: the ✅ goes too"


async def test_buttons_acknowledge_take_command_change_severity_and_status(bot: RunningBot) -> None:
    channel, incident = await declared(bot)
    value = str(incident.id)
    await press(bot, "incident.ack", value, DAVE, channel)
    await press(bot, "incident.commander", value, DAVE, channel)
    await press(bot, "incident.severity", f"{value}:P3", DAVE, channel, selected=True)
    await press(bot, "incident.status", f"{value}:identified", DAVE, channel, selected=True)
    stored = await bot.ctx.store.get_incident(incident.id)
    assert stored is not None and (stored.acknowledged_by, stored.commander, stored.severity, stored.status) == (DAVE, DAVE, "P3",
                                                                                                                 IncidentStatus.IDENTIFIED)
    header = json.dumps(bot.slack.messages[(channel, stored.header_ts)])
    assert "Identified" in header and "P3 Medium" in header and "<@U0DAVE>" in header


async def test_health_checks_from_the_incident_channel_go_on_the_timeline(bot: RunningBot) -> None:
    channel, incident = await declared(bot)
    await press(bot, "incident.health", str(incident.id), BOB, channel)
    url = bot.slack.response_url()
    body, content_type = slash_command("/ops", "health api", user=BOB, channel=channel, response_url=url)
    await bot.post(body, content_type)
    await bot.settle()
    health = [e for e in await bot.ctx.store.entries(incident.id) if e.kind is EntryKind.HEALTH]
    assert [e.text for e in health] == ["Health check: 2 of 2 healthy", "Health check: 1 of 1 healthy"]


async def test_two_incidents_at_once_each_channel_applies_to_its_own(bot: RunningBot) -> None:
    _first, one = await declared(bot, "P1 API is down")
    second, two = await declared(bot, "P3 Search is slow")
    await incident_cmd(bot, "note only for search", channel=second)
    assert [e.text for e in await bot.ctx.store.entries(two.id) if e.kind is EntryKind.NOTE] == ["only for search"]
    assert [e for e in await bot.ctx.store.entries(one.id) if e.kind is EntryKind.NOTE] == []
    listing = await incident_cmd(bot, "list")
    assert one.key in listing and two.key in listing


async def test_a_taken_channel_name_gets_a_suffix(bot: RunningBot) -> None:
    from playground.workspace import new_channel

    bot.slack.channels["C0TAKEN"] = new_channel("C0TAKEN", "inc-20261123-api-is-down", {"U0CAROL"})
    channel, _ = await declared(bot)
    assert bot.slack.channels[channel]["name"] == "inc-20261123-api-is-down-2"


@pytest.mark.parametrize(("text", "expected"), [
    ("declare P9 something", "`P9` is not a severity. Valid: `P1` (Critical)"),
    ("declare p5 oops", "`p5` is not a severity"),
    ("status identified", "This works in an incident's channel"),
    ("resovle", "Did you mean `resolve`?"),
])
async def test_bad_input_gets_a_clear_answer(bot: RunningBot, text: str, expected: str) -> None:
    assert expected in await incident_cmd(bot, text)
    assert bot.slack.of("conversations.create") == []


async def test_bad_input_inside_an_incident_channel(bot: RunningBot) -> None:
    channel, _ = await declared(bot)
    assert "is not a status" in await incident_cmd(bot, "status fixed", channel=channel)
    assert "Usage: `/incident role @user" in await incident_cmd(bot, "role commander", channel=channel)
    assert "Put the follow-up in quotes" in await incident_cmd(bot, 'action "unclosed', channel=channel)


async def test_unacknowledged_incidents_escalate_and_quiet_ones_nudge_the_commander(bot: RunningBot, clock: ManualClock) -> None:
    import asyncio

    channel, _incident = await declared(bot)

    async def reminders_after(minutes: float) -> list[str]:
        # The scheduler's chores wake when the clock moves and may send them itself; either way, once.
        clock.advance(minutes * 60)
        await reminders.remind_due(bot.ctx)
        await asyncio.sleep(0.2)
        return [json.dumps(c.args, ensure_ascii=False) for c in bot.slack.of("chat.postMessage") if "⏰"
                in json.dumps(c.args, ensure_ascii=False)]

    assert await reminders_after(14) == []
    [escalation] = await reminders_after(2)
    assert channel in escalation and "not acknowledged after 15 min" in escalation and "<!subteam^S0ONCALL>" in escalation
    assert len(await reminders_after(1)) == 1, "once only"
    sent = await reminders_after(14)  # 31 minutes without a status update on a P1
    assert len(sent) == 2 and "no status update for 31 min" in sent[1] and f"<@{ALICE}>" in sent[1]
    await incident_cmd(bot, "resolve done", channel=channel)
    assert len(await reminders_after(60)) == 2, "reminders stop when resolved"


async def test_follow_up_items_are_tracked(bot: RunningBot) -> None:
    channel, incident = await declared(bot)
    said = await incident_cmd(bot, 'action "Alert on 5xx rate" <@U0BOB|bob> 2026-12-01', channel=channel)
    assert "Tracked follow-up" in said
    [item] = await bot.ctx.store.action_items(incident.id)
    assert (item.text, item.owner, item.due.isoformat()) == ("Alert on 5xx rate", BOB, "2026-12-01")


async def test_the_post_mortem_matches_the_timeline_and_metrics(bot: RunningBot, clock: ManualClock) -> None:
    channel, incident = await declared(bot, "P2 checkout is slow")
    clock.advance(7 * 60)
    await incident_cmd(bot, "ack", user=BOB, channel=channel)
    ts = bot.slack.said(channel, BOB, "db pool exhausted at 03:05")
    body, content_type = event_callback({"type": "reaction_added", "user": BOB, "reaction": "pushpin",
                                         "item": {"type": "message", "channel": channel, "ts": ts}, "event_ts": "9.9"})
    await bot.post(body, content_type)
    clock.advance(20 * 60)
    await incident_cmd(bot, "resolve raised the pool size", user=BOB, channel=channel)
    await incident_cmd(bot, 'action "Alert on pool saturation" <@U0BOB|bob> 2026-12-01', channel=channel)
    await incident_cmd(bot, "postmortem", user=ALICE, channel=channel)

    document = bot.slack.file_text(channel=channel)
    assert f"# Post-mortem: {incident.key}" in document and "checkout is slow" in document
    assert "db pool exhausted at 03:05" in document
    assert "| Time to acknowledge | 7 min |" in document and "| Time to resolve | 27 min |" in document
    assert "@Bob Smith" in document, "people by name, not by Slack ID"
    assert "Alert on pool saturation" in document and "2026-12-01" in document
    assert "raised the pool size" in document and "To fill" in document


async def test_postmortem_command_prints_it_offline(bot: RunningBot, tmp_path: Path, database_url: str,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    # `opsbot postmortem` as `python -m bot` runs it (bot.cli.main), in a thread of this process: it runs its own
    # event loop, and an interpreter per call would only add seconds (tests/test_cli.py starts the real command).
    _channel, incident = await declared(bot, "P3 search is slow")
    config = tmp_path / "opsbot.yml"
    config.write_text("incidents: {announce_channel: C0INCIDENTS}\nservices: {}\n")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("OPSBOT_CONFIG", str(config))
    capsys.readouterr()
    assert await asyncio.to_thread(cli.main, ["postmortem", incident.key]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"# Post-mortem: {incident.key}" in out and "search is slow" in out
    assert await asyncio.to_thread(cli.main, ["postmortem", "INC-999"]) == 1
    assert "no incident INC-999" in capsys.readouterr().err


async def test_the_commander_corrects_the_timeline_and_the_audit_log_keeps_the_change(bot: RunningBot,
                                                                                      clock: ManualClock) -> None:
    channel, incident = await declared(bot)
    await incident_cmd(bot, "note restarted the wrong pod", user=BOB, channel=channel)
    await incident_cmd(bot, "note typo entry", user=BOB, channel=channel)
    note, typo = [e for e in await bot.ctx.store.entries(incident.id) if e.kind is EntryKind.NOTE]

    assert "Only the commander" in await press_and_tell(bot, "incident.entry", f"edit:{note.id}", BOB, channel)
    seen = await incident_cmd(bot, "timeline", user=ALICE, channel=channel)
    assert "incident.entry" in seen and "Time to acknowledge" in seen  # the commander's copy has the ⋯ menu
    assert "incident.entry" not in await incident_cmd(bot, "timeline", user=BOB, channel=channel)

    await press(bot, "incident.entry", f"edit:{note.id}", ALICE, channel, selected=True)
    view = bot.slack.of("views.open")[-1].args["view"]
    assert view["callback_id"] == "incident.entry.edit"
    values = {"text": {"text.input": {"type": "plain_text_input", "value": "restarted api-7d9 (the wrong pod)"}},
              "at": {"at.input": {"type": "plain_text_input", "value": "2026-11-23 02:55"}}}
    body, content_type = view_submission(view["callback_id"], values, user=ALICE, private_metadata=view["private_metadata"])
    await bot.post(body, content_type)
    await press(bot, "incident.entry", f"delete:{typo.id}", ALICE, channel, selected=True)
    await bot.settle()

    entries = await bot.ctx.store.entries(incident.id)
    [edited] = [e for e in entries if e.id == note.id]
    assert edited.text == "restarted api-7d9 (the wrong pod)" and edited.at == T0 - timedelta(minutes=5)
    assert typo.id not in [e.id for e in entries] and entries[0].id == note.id, "backdated: now first"
    corrections = [e.detail for e in await bot.ctx.store.audit_entries(limit=100) if e.args == "timeline correction"]
    assert any("restarted the wrong pod" in (d or "") for d in corrections)
    assert any("typo entry" in (d or "") for d in corrections)


async def press_and_tell(bot: RunningBot, action_id: str, value: str, user: str, channel: str) -> str:
    before = len(bot.slack.calls)
    await press(bot, action_id, value, user, channel, selected=True)
    return "\n".join(json.dumps(c.args, ensure_ascii=False) for c in bot.slack.calls[before:])


async def test_follow_ups_are_listed_and_marked_done(bot: RunningBot) -> None:
    channel, incident = await declared(bot)
    await incident_cmd(bot, 'action "Alert on 5xx" <@U0BOB|bob> tomorrow', channel=channel)
    listing = await incident_cmd(bot, "actions", channel=channel)
    assert "Alert on 5xx" in listing and "incident.followup.done" in listing and "due 2026-11-24" in listing
    [item] = await bot.ctx.store.action_items(incident.id)
    await press(bot, "incident.followup.done", str(item.id), BOB, channel)
    [item] = await bot.ctx.store.action_items(incident.id)
    assert item.done_at is not None
    assert "✅ #" in await incident_cmd(bot, "actions", channel=channel)


async def test_an_action_requested_in_the_incident_channel_is_on_its_timeline(slack: FakeSlack, database_url: str,
                                                                              http: aiohttp.ClientSession, tmp_path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x").write_text("1")
    yaml = f"""
approvals: {{environments: {{staging: {{default: {{approvals: 0}}}}}}}}
services:
  files:
    environment: staging
    backup: {{type: directory, paths: ["{tmp_path / 'data'}"], directory: "{tmp_path / 'backups'}"}}
"""
    bot, runner = await start_bot(make_settings(slack, database_url), yaml, slack, http)
    try:
        channel, incident = await declared(bot, "P2 files are corrupt")
        url = bot.slack.response_url()
        body, content_type = slash_command("/ops", "backup files before repair", user=ALICE, channel=channel, response_url=url)
        await bot.post(body, content_type)
        await bot.settle()
        [plan] = [c.args for c in bot.slack.of("response_url") if url.endswith(c.path)]
        run_id = next(e["value"] for b in plan["blocks"] if b["type"] == "actions" for e in b["elements"]
                      if e["action_id"] == "action.request")
        await press(bot, "action.request", run_id, ALICE, channel)
        actions_on_timeline = [e.text for e in await bot.ctx.store.entries(incident.id) if e.kind is EntryKind.ACTION]
        assert any(f"Action #{run_id} backup files: approved" in t for t in actions_on_timeline)
        assert any(f"Action #{run_id} backup files: succeeded" in t for t in actions_on_timeline)
    finally:
        await runner.cleanup()



async def test_user_text_cannot_ping_everyone_and_is_escaped_once(bot: RunningBot) -> None:
    channel, incident = await declared(bot, "P2 payments & refunds fail")
    await incident_cmd(bot, "status identified <!channel> card processor &lt;down&gt;", channel=channel)
    posted = json.dumps([c.args for c in bot.slack.of("chat.postMessage")], ensure_ascii=False)
    assert "<!channel>" not in posted and "@channel card processor &lt;down&gt;" in posted
    assert "&amp;amp;" not in posted
    stored = await bot.ctx.store.get_incident(incident.id)
    assert stored is not None and stored.title == "payments & refunds fail"
    await incident_cmd(bot, "role <@U0BOB|bob> scribe", channel=channel)
    timeline = await incident_cmd(bot, "timeline", user=BOB, channel=channel)
    assert "<@U0BOB> is scribe" in timeline and "&lt;@U0BOB&gt;" not in timeline


async def test_a_channel_that_cannot_be_created_leaves_no_incident_behind(bot: RunningBot) -> None:
    bot.slack.fail_next("conversations.create", error="restricted_action")
    said = await incident_cmd(bot, "declare P1 API is down")
    assert "Reference" in said or "restricted_action" in said
    assert await bot.ctx.store.incidents() == []


async def test_a_failing_step_after_the_channel_is_reported_and_the_incident_still_works(bot: RunningBot) -> None:
    bot.slack.fail_next("pins.add", error="not_pinnable")
    said = await incident_cmd(bot, "declare P1 API is down")
    [incident] = await bot.ctx.store.incidents()
    assert f"{incident.key} declared" in said and "could not pin the header" in said
    assert "Acknowledged." in await incident_cmd(bot, "ack", user=BOB, channel=incident.channel_id or "")


async def test_roles_by_menu_and_reopen_by_button(bot: RunningBot) -> None:
    channel, incident = await declared(bot)
    await press(bot, "incident.role", f"{incident.id}:communications", BOB, channel, selected=True)
    await press(bot, "incident.role", f"{incident.id}:scribe", CAROL, channel, selected=True)
    stored = await bot.ctx.store.get_incident(incident.id)
    assert stored is not None and stored.roles == {"commander": ALICE, "communications": BOB, "scribe": CAROL}
    await incident_cmd(bot, "resolve fixed", channel=channel)
    header = json.dumps(bot.slack.messages[(channel, stored.header_ts)])
    assert "incident.reopen" in header and "incident.resolve" not in header
    await press(bot, "incident.reopen", str(incident.id), ALICE, channel)
    reopened = await bot.ctx.store.get_incident(incident.id)
    assert reopened is not None and reopened.status is IncidentStatus.INVESTIGATING


async def test_reminders_are_not_repeated_after_a_restart(slack: FakeSlack, database_url: str, http: aiohttp.ClientSession,
                                                          targets: Targets) -> None:
    slack.groups = {"S0ONCALL": [DAVE]}
    clock = ManualClock(T0)
    first, runner = await start_bot(make_settings(slack, database_url), catalog(targets), slack, http, clock=clock)
    channel, _incident = await declared(first)
    clock.advance(16 * 60)
    await reminders.remind_due(first.ctx)
    await runner.cleanup()
    again, runner = await start_bot(make_settings(slack, database_url), catalog(targets), slack, http,
                                    clock=ManualClock(T0 + timedelta(minutes=17)))
    try:
        assert await reminders.remind_due(again.ctx) == 0
        sent = [c for c in slack.of("chat.postMessage") if "not acknowledged" in json.dumps(c.args)]
        assert len(sent) == 1 and DAVE in slack.channels[channel]["members"], "the escalation group is brought in"
    finally:
        await runner.cleanup()


async def test_correcting_the_timeline_changes_the_metrics(bot: RunningBot, clock: ManualClock) -> None:
    channel, incident = await declared(bot)
    clock.advance(12 * 60)
    await incident_cmd(bot, "ack", user=BOB, channel=channel)
    assert "to acknowledge *12 min*" in await incident_cmd(bot, "timeline", channel=channel)
    [ack] = [e for e in await bot.ctx.store.entries(incident.id) if e.kind is EntryKind.ACKNOWLEDGED]
    from bot.incidents import service as incidents

    await incidents.correct_entry(bot.ctx, ack.id or 0, ALICE, at=T0 + timedelta(minutes=3))
    assert "to acknowledge *3 min*" in await incident_cmd(bot, "timeline", channel=channel)


async def test_a_long_timeline_is_paged_within_slacks_limits(bot: RunningBot) -> None:
    from bot.views.incidents import timeline_message

    _channel, incident = await declared(bot)
    for i in range(400):
        await bot.ctx.store.add_entry(TimelineEntry(incident.id or 0, T0 + timedelta(seconds=i), EntryKind.NOTE, f"step {i} "
                                                    + "x" * 400, BOB))
    entries = await bot.ctx.store.entries(incident.id)
    seen, page = "", 0
    while True:
        message = timeline_message(incident, entries, "UTC", page)
        assert len(message.blocks) <= 50 and all(len(b.get("text", {}).get("text", "")) <= 3000 for b in message.blocks)
        seen += json.dumps(message.blocks)
        if not any(b["type"] == "actions" for b in message.blocks):
            break
        page += 1
    assert page >= 1 and all(f"step {i} " in seen for i in range(400))


def posted_in(bot: RunningBot, channel: str) -> list[str]:
    return [json.dumps(c.args, ensure_ascii=False) for c in bot.slack.of("chat.postMessage") if c.args.get("channel") == channel]


async def test_declaring_without_a_title_only_warns(bot: RunningBot) -> None:
    said = await incident_cmd(bot, "declare P2")
    assert "An incident needs a title: `/incident declare P2 checkout is failing`" in said
    assert "⏳" not in said and "Declaring" not in said
    assert bot.slack.of("conversations.create") == [] and await bot.ctx.store.incidents() == []


async def test_acknowledging_and_a_new_commander_are_announced_in_the_channel(bot: RunningBot) -> None:
    channel, incident = await declared(bot)
    await press(bot, "incident.ack", str(incident.id), BOB, channel)
    assert any(f"<@{BOB}> acknowledged {incident.key}" in m for m in posted_in(bot, channel))
    await press(bot, "incident.commander", str(incident.id), DAVE, channel)
    assert any(f"<@{DAVE}> is now commander of {incident.key}, taking over from <@{ALICE}>" in m for m in posted_in(bot, channel))
    await incident_cmd(bot, "role <@U0CAROL|carol> scribe", user=DAVE, channel=channel)
    assert any(f"<@{CAROL}> is now scribe of {incident.key} (by <@{DAVE}>)" in m for m in posted_in(bot, channel))
    assert "already commander" in await press_and_tell(bot, "incident.commander", str(incident.id), DAVE, channel)


async def test_a_note_of_only_spaces_is_refused_in_the_form(bot: RunningBot) -> None:
    channel, incident = await declared(bot)
    await press(bot, "incident.note", str(incident.id), BOB, channel)
    view = bot.slack.of("views.open")[-1].args["view"]
    values = {"text": {"text.input": {"type": "plain_text_input", "value": "   "}}}
    body, content_type = view_submission(view["callback_id"], values, user=BOB, private_metadata=view["private_metadata"])
    response = await bot.post(body, content_type)
    answer = await response.json()
    assert answer["response_action"] == "errors" and "Write what happened" in answer["errors"]["text"]
    await bot.settle()
    assert [e.kind for e in await bot.ctx.store.entries(incident.id)] == [EntryKind.DECLARED]
    values = {"text": {"text.input": {"type": "plain_text_input", "value": "pool raised to 50"}}}
    body, content_type = view_submission(view["callback_id"], values, user=BOB, private_metadata=view["private_metadata"])
    await bot.post(body, content_type)
    await bot.settle()
    [told] = [c.args for c in bot.slack.of("chat.postEphemeral") if c.args.get("user") == BOB]
    assert f"Added to the timeline of {incident.key}" in json.dumps(told)


async def test_incident_help_lists_the_statuses_and_escapes_its_placeholders(bot: RunningBot) -> None:
    said = json.dumps(json.loads((await incident_cmd(bot, "help")).split("\n")[0]), ensure_ascii=False)
    assert "`investigating` → `identified` → `monitoring` → `resolved`" in said and "`P1` Critical" in said
    assert "&lt;title&gt;" in said and "<title>" not in said and "/incident reopen" in said


async def test_a_red_health_report_offers_a_prefilled_declare_form(bot: RunningBot) -> None:
    from bot.checks import Status
    from bot.health import CheckResult, HealthRun

    failing = CheckResult("search", "staging", "front", "http", Status.CRITICAL, "HTTP 500 (expected 200)", 8.0, T0)
    run_id = await bot.ctx.store.save_health_run(HealthRun(scope=("search",), services=("search",), started_at=T0,
                                                           finished_at=T0, results=(failing,), requested_by=BOB))
    await press(bot, "incident.declare.offer", f"health:{run_id}", BOB, OPS)
    view = bot.slack.of("views.open")[-1].args["view"]
    assert view["callback_id"] == "incident.declare"
    blocks = {b["block_id"]: b["element"] for b in view["blocks"]}
    assert blocks["title"]["initial_value"] == "search failing: front HTTP 500 (expected 200)"
    assert blocks["severity"]["initial_option"]["value"] == "P3"  # staging: the third severity; production: P2
    assert [o["value"] for o in blocks["services"]["initial_options"]] == ["search"]
    assert "search · front: HTTP 500" in blocks["description"]["initial_value"]
    # Inside an incident's channel there is one already: said, and no second form.
    channel, incident = await declared(bot)
    opened = len(bot.slack.of("views.open"))
    told = await press_and_tell(bot, "incident.declare.offer", f"health:{run_id}", BOB, channel)
    assert f"the channel of {incident.key} already" in told
    assert len(bot.slack.of("views.open")) == opened
