"""The fault suite's clients: people asking for approvals, runbooks, backups, incident declarations and mentions
through signed requests the fake Slack delivers to random replicas; and the HTTP target that records each effect a
runbook step has on it. Everything random is drawn from one seeded generator.

Not responsible for the faults (nemesis.py) nor for judging what happened (checker.py).
"""

from __future__ import annotations

import asyncio
import enum
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from playground.payloads import block_action, event_callback, slash_command
from playground.slack_api import Delivery, FakeSlack
from tests.faults.cluster import Replica

ALICE, BOB, CAROL, DAVE = "U0ALICE", "U0BOB", "U0CAROL", "U0DAVE"
OPS = "C0OPS"
LEADS = "S0LEADS"


class OpKind(enum.Enum):
    APPROVAL = "approval"  # a production runbook: requested, then approved by one or two leads (or self-approved: refused)
    RUNBOOK = "runbook"  # a staging runbook: no approval needed
    BACKUP = "backup"  # a staging directory backup
    DECLARE = "declare"  # /incident declare
    MENTION = "mention"  # an app_mention event: Slack retries it until acknowledged


WEIGHTS = {OpKind.APPROVAL: 3, OpKind.RUNBOOK: 2, OpKind.BACKUP: 2, OpKind.DECLARE: 2, OpKind.MENTION: 1}


@dataclass(frozen=True)
class Effect:
    runbook: str
    step: str
    token: str
    at: datetime


@dataclass
class EffectTarget:
    """A small HTTP service the runbooks' steps act on: it records every effect it receives, as a real target would
    count its restarts."""

    effects: list[Effect] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    def url(self, runbook: str, step: str) -> str:
        return f"http://127.0.0.1:{self.port}/effect/{runbook}/{step}"

    async def start(self) -> None:
        async def effect(request: web.Request) -> web.Response:
            body = await request.json()
            self.effects.append(Effect(request.match_info["runbook"], request.match_info["step"], str(body.get("token")),
                                       datetime.now(UTC)))
            return web.Response(text="done")

        app = web.Application()
        app.router.add_post("/effect/{runbook}/{step}", effect)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass(frozen=True)
class Sent:
    """One request as the workload sent it, the key its audit entry carries, and what became of it."""

    kind: str  # the audit entry's kind: command | action | event
    name: str  # /ops, /incident, an action_id, app_mention
    actor: str
    args: str  # the command's text, the button's value, the mention's text
    delivery: Delivery
    event_id: str = ""


@dataclass
class History:
    sent: list[Sent] = field(default_factory=list)
    ops: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    tokens: dict[str, OpKind] = field(default_factory=dict)  # each op's unique token, and its kind
    mentions: dict[str, str] = field(default_factory=dict)  # event ts -> event id

    @property
    def requests(self) -> int:
        return len(self.sent)


SERVICES = 6  # of each kind: a run holds its service, and a second request on a busy one is refused


def catalog(effects: EffectTarget, data: str, backups: str, incidents: str) -> str:
    """Production services web<i> (runbook poke<i>, one lead's approval), staging stage<i> (runbook nudge<i>, no
    approval) and files<i> (directory backups into `backups`/<i>, no approval)."""
    body = '{token: "{{ params.token }}"}'
    parameters = '{token: {type: string, pattern: "[a-z0-9]+"}}'

    def runbook(name: str, service: str) -> str:
        return f"""
  {name}:
    services: [{service}]
    parameters: {parameters}
    steps:
      - {{kind: http, url: "{effects.url(name, 'a')}", json: {body}, retries: 2}}
      - {{kind: wait, seconds: 0.5}}
      - {{kind: http, url: "{effects.url(name, 'b')}", json: {body}, retries: 2}}"""

    services = "".join(f"""
  web{i}: {{environment: production}}
  stage{i}: {{environment: staging}}
  files{i}:
    environment: staging
    backup: {{type: directory, paths: ["{data}"], directory: "{backups}/{i}"}}""" for i in range(SERVICES))
    runbooks = "".join(runbook(f"poke{i}", f"web{i}") + runbook(f"nudge{i}", f"stage{i}") for i in range(SERVICES))
    return f"""
approvals:
  expire_after_minutes: 30
  environments:
    production: {{default: {{approvals: 1, approvers: [{LEADS}]}}}}
    staging: {{default: {{approvals: 0}}}}
incidents:
  announce_channel: {incidents}
  responders: [{CAROL}]
services:{services}
runbooks:{runbooks}
"""


class Workload:
    def __init__(self, slack: FakeSlack, replicas: list[Replica], rng: random.Random, history: History,
                 answer_timeout: float = 6.0) -> None:
        self.slack, self.replicas, self.rng, self.history = slack, replicas, rng, history
        self.answer_timeout = answer_timeout
        self._serial = 0

    def _token(self, kind: OpKind) -> str:
        self._serial += 1
        token = f"{kind.value[:3]}{self._serial:04d}{self.rng.randrange(36**4):04x}"
        self.history.tokens[token] = kind
        return token

    async def _send(self, kind: str, name: str, actor: str, args: str, body: str, content_type: str, *,
                    event_id: str = "") -> Sent:
        # Behind a load balancer: each attempt (a duplicate, an event's retry) may reach another replica.
        delivery = await self.slack.deliver([replica.url for replica in self.replicas], body, content_type,
                                            event=bool(event_id))
        sent = Sent(kind, name, actor, args, delivery, event_id)
        self.history.sent.append(sent)
        self.history.outcomes["acknowledged" if delivery.acked else "not acknowledged"] += 1
        return sent

    async def command(self, command: str, text: str, actor: str = ALICE) -> dict[str, Any]:
        """A slash command; what the person sees (the ack's body, or what came to its response_url), {} if nothing."""
        key = f"{time.monotonic_ns()}-{self.rng.randrange(10**9)}"
        body, content_type = slash_command(command, text, user=actor, channel=OPS, response_url=self.slack.response_url(key))
        sent = await self._send("command", command, actor, text, body, content_type)
        return await self._answer(key, sent)

    async def click(self, action_id: str, value: str, actor: str) -> dict[str, Any]:
        key = f"{time.monotonic_ns()}-{self.rng.randrange(10**9)}"
        body, content_type = block_action(action_id, value, user=actor, channel=OPS, response_url=self.slack.response_url(key))
        sent = await self._send("action", action_id, actor, value, body, content_type)
        return await self._answer(key, sent)

    async def _answer(self, key: str, sent: Sent) -> dict[str, Any]:
        for answer in sent.delivery.answers:
            try:
                parsed = json.loads(answer)
            except ValueError:
                continue
            if isinstance(parsed, dict) and parsed.get("blocks"):
                return parsed
        if not sent.delivery.acked:
            return {}
        deadline = time.monotonic() + self.answer_timeout
        while time.monotonic() < deadline:
            found = [c.args for c in self.slack.of("response_url") if c.path == f"/respond/{key}"]
            if found:
                return found[0]
            await asyncio.sleep(0.1)
        return {}

    async def op(self) -> None:
        await asyncio.sleep(self.rng.uniform(0.2, 1.6))  # a person's pause: the workload spans the faults
        kind = self.rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        self.history.ops[kind.value] += 1
        token = self._token(kind)
        if kind is OpKind.DECLARE:
            await self.command("/incident", f"declare P3 fault {token}")
        elif kind is OpKind.MENTION:
            ts = f"{time.time():.6f}"
            event_id = f"Ev{token.upper()}"
            self.history.mentions[ts] = event_id
            text = f"<@UBOT0001> hello {token}"
            body, content_type = event_callback({"type": "app_mention", "user": ALICE, "channel": OPS, "text": text, "ts": ts},
                                                event_id=event_id)
            await self._send("event", "app_mention", ALICE, text, body, content_type, event_id=event_id)
        else:
            i = self.rng.randrange(SERVICES)
            command = {OpKind.APPROVAL: f"run poke{i} token={token} fault {token}",
                       OpKind.RUNBOOK: f"run nudge{i} token={token} fault {token}",
                       OpKind.BACKUP: f"backup files{i} fault {token}"}[kind]
            await self._request_and_approve(kind, command)

    async def _request_and_approve(self, kind: OpKind, command: str) -> None:
        plan = await self.command("/ops", command)
        run_id = _button_value(plan, "action.request")
        if run_id is None:
            busy = "under way" in json.dumps(plan)
            self.history.outcomes[f"{kind.value}: " + ("refused: its service is busy" if busy else "no plan came back")] += 1
            return
        await self.click("action.request", run_id, ALICE)
        if kind is not OpKind.APPROVAL:
            self.history.outcomes[f"{kind.value}: requested"] += 1
            return
        if self.rng.random() < 0.15:
            await self.click("approval.approve", run_id, ALICE)  # self-approval: always refused
        approvers = self.rng.choice([[BOB], [DAVE], [BOB, DAVE], [CAROL, BOB]])  # Carol is no approver
        await asyncio.gather(*(self.click("approval.approve", run_id, who) for who in approvers))
        self.history.outcomes[f"{kind.value}: approvals sent"] += 1


def _button_value(message: dict[str, Any], action_id: str) -> str | None:
    for block in message.get("blocks", []):
        if block.get("type") != "actions":
            continue
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return str(element.get("value"))
    return None
