"""The stand-in's person side against the real bot: what a user types or presses ends up where Slack would
show it (in the channel, only for them, or in place of the message they clicked)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from playground.payloads import SIGNING_SECRET
from playground.session import Session
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings, start_bot
from tests.targets import Targets

ALICE, BOB = "U0ALICE", "U0BOB"
OPS = "C0OPS"


@pytest.fixture
async def person(slack: FakeSlack, targets: Targets, http: aiohttp.ClientSession,
                 tmp_path) -> AsyncIterator[tuple[Session, RunningBot, Targets]]:
    catalog = f"services:\n  web:\n    environment: production\n    checks: [{{type: http, url: '{targets.url('/switch')}'}}]\n"
    bot, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'o.db'}"), catalog, slack, http)
    yield Session(slack, bot.url, SIGNING_SECRET, http), bot, targets
    await runner.cleanup()


def channel_texts(slack: FakeSlack, channel: str) -> list[str]:
    return [str(m.get("blocks") or m.get("text")) for (c, _), m in sorted(slack.messages.items(), key=lambda i: float(i[0][1]))
            if c == channel]


async def test_a_command_answers_in_the_channel_in_place_of_the_note_only_the_typist_saw(person) -> None:
    session, bot, _ = person
    await session.command(ALICE, OPS, "/ops health web")
    await bot.settle()
    assert any("All 1 service healthy" in text for text in channel_texts(session.slack, OPS))
    # The "⏳ Running 1 check…" note only Alice saw is gone once the report is there, as in Slack (delete_original).
    assert [m for m in session.slack.ephemeral if m["user"] == ALICE] == []


async def test_pressing_rerun_updates_the_message_in_place(person) -> None:
    session, bot, targets = person
    await session.command(ALICE, OPS, "/ops health web")
    await bot.settle()
    [(ts, report)] = [(t, m) for (c, t), m in session.slack.messages.items() if c == OPS]
    button = next(e for b in report["blocks"] if b["type"] == "actions" for e in b["elements"])
    targets.switch_healthy = False
    await session.press(BOB, OPS, ts, button)
    await bot.settle()
    assert len([1 for (c, _) in session.slack.messages if c == OPS]) == 1
    assert "1 of 1 service failing" in str(session.slack.messages[(OPS, ts)]["blocks"])


async def test_a_mistyped_command_is_answered_to_the_typist_only(person) -> None:
    session, bot, _ = person
    await session.command(ALICE, OPS, "/ops helth")
    await bot.settle()
    assert channel_texts(session.slack, OPS) == []
    [note] = session.slack.ephemeral
    assert note["user"] == ALICE and "Did you mean `health`?" in str(note["text"])


async def test_a_digest_preview_is_shown_only_to_the_typist(person) -> None:
    session, bot, targets = person
    targets.switch_healthy = False
    await session.command(ALICE, OPS, "/ops digest")
    await bot.settle()
    assert channel_texts(session.slack, OPS) == []
    shown = [str(m["blocks"]) for m in session.slack.ephemeral if m["user"] == ALICE and m.get("blocks")]
    assert any("Daily digest" in text and "1 of 1 services failing" in text for text in shown)


async def test_a_runbook_asks_for_its_values_in_a_form_then_runs_and_reports_in_the_channel(
        slack: FakeSlack, targets: Targets, http: aiohttp.ClientSession, tmp_path) -> None:
    catalog = f"""
services:
  web:
    environment: staging
    checks: [{{type: http, url: '{targets.url('/switch')}'}}]
approvals:
  environments: {{staging: {{default: {{approvals: 0}}}}}}
runbooks:
  gate:
    services: [web]
    parameters: {{tries: {{type: integer, min: 1, max: 3}}, mood: {{type: choice, choices: [calm, brisk]}}}}
    steps:
      - {{kind: check, service: web, attempts: "{{{{ params.tries }}}}", interval: 0.1}}
      - {{kind: notify, text: "web passed, {{{{ params.mood }}}}"}}
"""
    bot, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'o.db'}"), catalog, slack, http)
    session = Session(slack, bot.url, SIGNING_SECRET, http)
    try:
        await session.command(ALICE, OPS, "/ops run gate mood=calm")
        await bot.settle()
        [(view_id, _view)] = slack.views.items()
        assert slack.view_owner[view_id] == ALICE
        values = {"param.tries": {"value": {"type": "number_input", "value": "9"}},
                  "param.mood": {"value": {"type": "static_select", "selected_option": {"value": "calm"}}}}
        errors = await session.submit(ALICE, view_id, values)
        assert "from 1 to 3" in errors["param.tries"]
        values["param.tries"]["value"]["value"] = "2"
        assert await session.submit(ALICE, view_id, values) == {}
        await bot.settle()
        plan = [m for m in slack.ephemeral if m["user"] == ALICE and "Plan: runbook gate" in str(m.get("blocks"))][-1]
        run_now = next(e for b in plan["blocks"] if b["type"] == "actions" for e in b["elements"]
                       if e["action_id"] == "action.request")
        await session.press(ALICE, OPS, plan["ts"], run_now)
        await bot.settle()
        texts = channel_texts(slack, OPS)
        assert any("Done: runbook gate (tries=2 mood=calm)" in t for t in texts)
        assert any("web passed, calm" in t for t in texts)
    finally:
        await runner.cleanup()
