"""Malformed signed payloads (a bug, or Slack changing a field): every listener answers, none answers with a 5xx or
leaves a traceback. Real shapes the other tests send, mutated: keys dropped, wrong types, huge ids, values missing
a part. Seeded: the seed is printed, and OPSBOT_FUZZ_SEED / OPSBOT_FUZZ_ROUNDS replay or enlarge a run.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import random
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp
import pytest

from bot.views.backups import BACKUP_ACTION, RESTORE_ACTION
from bot.views.health import ERRORS_ACTION, MORE_ACTION, RERUN_ACTION, RESTART_ACTION
from bot.views.incidents import (
    ACK,
    COMMANDER,
    DECLARE_CALLBACK,
    ENTRY_CALLBACK,
    ENTRY_MENU,
    FOLLOW_UP_DONE,
    HEALTH,
    NOTE,
    NOTE_CALLBACK,
    PAGE_NEXT,
    POSTMORTEM,
    REOPEN,
    RESOLVE,
    RESOLVE_CALLBACK,
    ROLE,
    SEVERITY,
    STATUS,
)
from bot.views.modals import DENY_CALLBACK, REASON_BLOCK, REASON_INPUT, REQUEST_CALLBACK
from bot.views.runbooks import OFFER_ACTION, PARAMS_CALLBACK
from bot.views.runs import (
    APPROVE_ACTION,
    CANCEL_ACTION,
    CANCEL_RUN_ACTION,
    DENY_ACTION,
    REQUEST_ACTION,
    RESUME_ACTION,
    ROLL_BACK_ACTION,
    ROLLBACK_ACTION,
)
from playground.payloads import block_action, event_callback, sign, slash_command, view_submission
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings, start_bot

USER, CHANNEL = "U0ALICE", "C0OPS"
HUGE = str(2**63)


def catalog(directory: Path) -> str:
    return f"""
incidents:
  announce_channel: C0INCIDENTS
services:
  web:
    environment: production
    checks: [{{type: http, url: "http://127.0.0.1:9/"}}]
    backup: {{type: directory, paths: ["{directory / 'data'}"], directory: "{directory / 'backups'}"}}
runbooks:
  tidy:
    description: Take a backup
    services: [web]
    parameters:
      note: {{type: string, default: "x"}}
    steps:
      - {{kind: backup, service: web}}
"""


@pytest.fixture
async def bot(slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path) -> AsyncIterator[RunningBot]:
    (tmp_path / "data").mkdir()
    running, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'opsbot.db'}"), catalog(tmp_path), slack, http)
    yield running
    await runner.cleanup()


CLICKS = [
    (RERUN_ACTION, "1"), (RESTART_ACTION, "web"), (MORE_ACTION, "restart:web"), (ERRORS_ACTION, "web:logs"),
    (REQUEST_ACTION, "1"), (CANCEL_ACTION, "1"), (APPROVE_ACTION, "1"), (DENY_ACTION, "1"), (BACKUP_ACTION, "web"),
    (RESTORE_ACTION, "1"), (ROLLBACK_ACTION, "web 3"), (OFFER_ACTION, "tidy"), (CANCEL_RUN_ACTION, "1"), (RESUME_ACTION, "1"),
    (ROLL_BACK_ACTION, "1"), (ACK, "1"), (COMMANDER, "1"), (NOTE, "1"), (RESOLVE, "1"), (HEALTH, "1"), (POSTMORTEM, "1"),
    (SEVERITY, "1:P1"), (STATUS, "1:monitoring"), (ROLE, "1:scribe"), (REOPEN, "1"), (PAGE_NEXT, "1:2"),
    (ENTRY_MENU, "delete:1"), (FOLLOW_UP_DONE, "1"),
]
FORMS: list[tuple[str, dict[str, dict[str, Any]], str]] = [
    (REQUEST_CALLBACK, {REASON_BLOCK: {REASON_INPUT: {"type": "plain_text_input", "value": "why"}}},
     json.dumps({"run_id": 1, "channel": CHANNEL, "response_url": "RESPONSE_URL"})),
    (DENY_CALLBACK, {REASON_BLOCK: {REASON_INPUT: {"type": "plain_text_input", "value": "no"}}},
     json.dumps({"run_id": 1, "channel": CHANNEL})),
    (PARAMS_CALLBACK, {"param.note": {"value": {"type": "plain_text_input", "value": "x"}}},
     json.dumps({"runbook": "tidy", "channel": CHANNEL, "reason": "", "response_url": "RESPONSE_URL"})),
    (DECLARE_CALLBACK, {"title": {"t": {"type": "plain_text_input", "value": "down"}},
                        "severity": {"s": {"type": "static_select", "selected_option": {"value": "P1"}}}}, CHANNEL),
    (NOTE_CALLBACK, {"text": {"t": {"type": "plain_text_input", "value": "a note"}}}, "1"),
    (RESOLVE_CALLBACK, {"text": {"t": {"type": "plain_text_input", "value": "fixed"}}}, "1"),
    (ENTRY_CALLBACK, {"text": {"t": {"type": "plain_text_input", "value": "x"}}, "at": {"a": {"type": "plain_text_input",
                                                                                               "value": "2026-11-23 03:00"}}},
     "1"),
]
COMMANDS = [("/ops", "restore web ²"), ("/ops", "restore web ①"), ("/ops", "restore web " + "9" * 5000),
            ("/ops", "restore web " + HUGE),
            ("/ops", "backups web"), ("/ops", "help"), ("/incident", "list"), ("/incident", "ack"), ("/ops", "run tidy note=y")]
EVENTS: list[dict[str, Any]] = [{"type": "app_mention", "user": USER, "text": "<@UBOT0001> hi", "ts": "1.2", "channel": CHANNEL},
          {"type": "reaction_added", "user": USER, "reaction": "pushpin",
           "item": {"type": "message", "channel": CHANNEL, "ts": "1.2"}}]

WRONG = [None, 5, -1, 2**64, 1.5, True, [], {}, [1, "x"], {"id": 5}, "", "x" * 300, HUGE, "²", "1:", ":", "1:" + HUGE]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into a JSON value."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += paths(inner, (*prefix, index))
    return found


def mutate(payload: Any, rng: random.Random) -> Any:
    """One to three mutations: drop a key, put a value of another type, a huge id, or a value missing its part."""
    out = copy.deepcopy(payload)
    for _ in range(rng.randint(1, 3)):
        where = paths(out)
        if not where:
            return copy.deepcopy(rng.choice(WRONG))
        path = rng.choice(where)
        parent = out
        for step in path[:-1]:
            parent = parent[step]
        key = path[-1]
        if isinstance(parent, dict) and rng.random() < 0.35:
            del parent[key]
        elif isinstance(parent[key], str) and ":" in parent[key] and rng.random() < 0.5:
            parent[key] = parent[key].split(":")[0] + rng.choice([":", "", ":" + HUGE, "::"])
        else:
            parent[key] = copy.deepcopy(rng.choice(WRONG))
    return out


def faults(records: list[logging.LogRecord]) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in records if r.exc_info or r.levelno >= logging.ERROR]


class Fuzzer:
    def __init__(self, bot: RunningBot, rng: random.Random) -> None:
        self.bot, self.rng = bot, rng

    async def send(self, body: str, content_type: str) -> int:
        async with self.bot.http.post(f"{self.bot.url}/slack/events", data=body.encode(),
                                      headers={"Content-Type": content_type, **sign(body)}) as response:
            await response.read()
            return response.status

    async def interactive(self, body: str, content_type: str) -> int:
        payload = json.loads(dict(parse_qsl(body))["payload"])
        return await self.send(urlencode({"payload": json.dumps(mutate(payload, self.rng))}), content_type)

    async def command(self, body: str, content_type: str) -> int:
        fields = dict(parse_qsl(body, keep_blank_values=True))
        for _ in range(self.rng.randint(1, 3)):
            key = self.rng.choice(sorted(fields))
            if self.rng.random() < 0.5:
                del fields[key]
            else:
                fields[key] = str(self.rng.choice(WRONG))
            if not fields:
                break
        return await self.send(urlencode(fields), content_type)

    async def event(self, body: str, content_type: str) -> int:
        return await self.send(json.dumps(mutate(json.loads(body), self.rng)), content_type)


def shapes(bot: RunningBot) -> list[tuple[str, Callable[[], tuple[str, str]]]]:
    """Each shape with a fresh response_url each time it is made."""
    url = bot.slack.response_url

    def click(action_id: str, value: str) -> tuple[str, str]:
        return block_action(action_id, value, user=USER, channel=CHANNEL, response_url=url())

    def form(callback: str, values: dict[str, dict[str, Any]], metadata: str) -> tuple[str, str]:
        return view_submission(callback, values, user=USER, private_metadata=metadata.replace("RESPONSE_URL", url()))

    def command(name: str, text: str) -> tuple[str, str]:
        return slash_command(name, text, user=USER, channel=CHANNEL, response_url=url())

    made: list[tuple[str, Callable[[], tuple[str, str]]]] = []
    made += [("interactive", partial(click, action_id, value)) for action_id, value in CLICKS]
    made += [("interactive", partial(form, callback, values, metadata)) for callback, values, metadata in FORMS]
    made += [("command", partial(command, name, text)) for name, text in COMMANDS]
    made += [("event", partial(event_callback, event)) for event in EVENTS]
    return made


async def test_typed_numbers_that_are_not_ascii_ids_are_refused_with_the_usage(bot: RunningBot) -> None:
    for text in ["restore web ²", "restore web ①", "restore web " + "9" * 5000, "restore web 99999999999999999999"]:
        url = bot.slack.response_url()
        body, content_type = slash_command("/ops", text, user=USER, channel=CHANNEL, response_url=url)
        async with bot.http.post(f"{bot.url}/slack/events", data=body, headers={"Content-Type": content_type, **sign(body)}) as r:
            assert r.status == 200
            told = await r.text()
        await bot.settle()
        told += "".join(json.dumps(c.args) for c in bot.slack.of("response_url") if url.endswith(c.path))
        assert "Usage" in told and "backup id" in told, (text[:30], told)
        assert "Something went wrong" not in told


async def test_every_real_shape_as_sent_is_answered_without_a_traceback(bot: RunningBot,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    fuzz = Fuzzer(bot, random.Random(0))
    for _, make in shapes(bot):
        assert await fuzz.send(*make()) < 500
    await bot.settle()
    assert faults(caplog.records) == []


async def test_mutated_payloads_are_never_a_5xx_nor_a_traceback(bot: RunningBot, caplog: pytest.LogCaptureFixture) -> None:
    seed = int(os.environ.get("OPSBOT_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
    rounds = int(os.environ.get("OPSBOT_FUZZ_ROUNDS") or 4)
    print(f"fuzz seed {seed} (OPSBOT_FUZZ_SEED={seed} replays it)")
    caplog.set_level(logging.INFO)
    rng = random.Random(seed)
    fuzz = Fuzzer(bot, rng)
    statuses: dict[int, int] = {}
    for _ in range(rounds):
        for kind, make in shapes(bot):
            status = await getattr(fuzz, kind)(*make())
            statuses[status] = statuses.get(status, 0) + 1
            assert status < 500, f"seed {seed}: {kind} answered {status}"
        await bot.settle()
        assert faults(caplog.records) == [], f"seed {seed}"
    print(f"statuses {statuses}")


async def send_signed(bot: RunningBot, body: str, content_type: str) -> int:
    async with bot.http.post(f"{bot.url}/slack/events", data=body, headers={"Content-Type": content_type, **sign(body)}) as r:
        await r.read()
        return r.status


async def test_a_form_for_an_incident_that_does_not_exist_is_answered_by_a_direct_message(
    bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    body, content_type = view_submission(NOTE_CALLBACK, {"text": {"t": {"type": "plain_text_input", "value": "a note"}}},
                                         user=USER, private_metadata="4242")
    assert await send_signed(bot, body, content_type) == 200
    await bot.settle()
    [told] = [c for c in bot.slack.of("chat.postMessage") if c.args.get("channel") == USER]
    assert "no longer has" in json.dumps(told.args) and "nothing was done" in json.dumps(told.args)
    assert faults(caplog.records) == []


@pytest.mark.parametrize("value", [HUGE, "99999999999999999999", "²", "1:", ":monitoring", "1"])
async def test_a_button_with_an_impossible_id_or_a_missing_part_says_it_is_out_of_date(
    bot: RunningBot, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = bot.slack.response_url()
    body, content_type = block_action(STATUS, value, user=USER, channel=CHANNEL, response_url=url)
    assert await send_signed(bot, body, content_type) == 200
    await bot.settle()
    told = " ".join(json.dumps(c.args, ensure_ascii=False) for c in bot.slack.of("response_url") if url.endswith(c.path))
    assert "out of date" in told or "no incident" in told.lower(), told
    assert faults(caplog.records) == []


async def test_a_click_missing_its_parts_is_answered_plainly(bot: RunningBot, caplog: pytest.LogCaptureFixture) -> None:
    url = bot.slack.response_url()
    body, content_type = block_action(APPROVE_ACTION, "1", user=USER, channel=CHANNEL, response_url=url)
    payload = json.loads(dict(parse_qsl(body))["payload"])
    del payload["user"]
    assert await send_signed(bot, urlencode({"payload": json.dumps(payload)}), content_type) == 200
    await bot.settle()
    told = " ".join(json.dumps(c.args, ensure_ascii=False) for c in bot.slack.of("response_url") if url.endswith(c.path))
    assert "could not read this button" in told and "(user)" in told
    assert faults(caplog.records) == []
