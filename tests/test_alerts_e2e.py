"""Alerts end to end with every real component, shared by the module: Prometheus evaluating a rule over a test
exporter and sending to two clustered Alertmanagers, whose one receiver lists three `opsbot serve` replicas on one
PostgreSQL; the fake Slack is the only stand-in.

- A rule fires → both Alertmanagers hold it, notify all three replicas (maybe twice, from both peers) → one Slack
  message and, through a route's auto-declare rule run by every replica's chores, one incident; the rule stops
  firing → the same message says resolved.
- Silence pressed on the message → the silence is in Alertmanager's API (on the peer too, by gossip) and the
  notifications stop: while the group keeps firing past its repeat_interval, and even when a new alert joins it,
  Alertmanager sends nothing and the message is neither updated nor posted again.

Times are shortened through settings (the replicas' CHORE_SECONDS, Alertmanager's group_wait/group_interval/
repeat_interval, Prometheus's 1 s scrape and evaluation); the module takes about 20 s, mostly Prometheus's first
scrape, which overlaps the replicas' start."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import pytest
import pytest_asyncio

from bot.store import Store, create_store
from playground.payloads import SIGNING_SECRET, block_action, sign
from playground.slack_api import FakeSlack
from tests.alertmanager import RunningAlertmanager, eventually, start_alertmanagers
from tests.conftest import PG_ADMIN_DSN, free_port, pg_dsn
from tests.prometheus import PrometheusServer
from tests.replicas import Replica
from tests.test_cli import base_env

pytestmark = pytest.mark.asyncio(loop_scope="module")

TOKEN = "e2e-alerts-bearer-0123456789"
CHANNEL = "C0ALERTS"
REPEAT = 2.0  # the queue groups' repeat_interval, seconds (others: 1 h): notified again this often while firing
TIMES = {"LEASE_SECONDS": "3", "HEARTBEAT_SECONDS": "1", "TICK_SECONDS": "0.5", "CHORE_SECONDS": "1",
         "SHUTDOWN_GRACE_SECONDS": "1"}
RULES = """
groups:
  - name: opsbot-e2e
    interval: 1s
    rules:
      - alert: ApiDown
        expr: opsbot_e2e_up{service="api"} == 0
        labels: {severity: critical}
        annotations: {summary: "api is not answering on {{ $labels.host }}"}
"""


def catalog(alertmanager_url: str) -> str:
    return f"""
services:
  api: {{environment: production, owners: [U0ALICE]}}
alerts:
  channel: {CHANNEL}
  alertmanager_url: {alertmanager_url}
  routes:
    - match: {{service: api}}
      service: api
      declare: {{when: {{severity: critical}}, after_minutes: 0, severity: P1}}
"""


@dataclass
class Stack:
    slack: FakeSlack
    http: aiohttp.ClientSession
    store: Store  # the test's own look at the replicas' database
    replicas: list[Replica]
    alertmanagers: list[RunningAlertmanager]
    prometheus: PrometheusServer

    async def sent(self, metric: str = "alertmanager_notifications_total") -> float:
        """Webhook notifications both Alertmanagers have sent so far (one per replica URL per notification)."""
        counts = await asyncio.gather(*(asyncio.to_thread(node.metric, metric, integration="webhook")
                                        for node in self.alertmanagers))
        return sum(counts)

    async def click(self, replica: Replica, action: str, value: str, user: str) -> None:
        body, kind = block_action(action, value, user=user, channel=CHANNEL, response_url=self.slack.response_url())
        async with self.http.post(f"http://127.0.0.1:{replica.port}/slack/events", data=body.encode(),
                                  headers={"Content-Type": kind, **sign(body)}) as response:
            assert response.status == 200, await response.text()


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """One PostgreSQL database for the module's replicas; dropped afterwards."""
    name = f"opsbot_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield pg_dsn(name)
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(database: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    folder = tmp_path_factory.mktemp("alerts-e2e")
    slack = FakeSlack()
    await slack.start()
    http = aiohttp.ClientSession()
    replicas: list[Replica] = []
    with ExitStack() as started:
        try:
            env = base_env(SLACK_BOT_TOKEN="xoxb-test-token-1234567890", SLACK_SIGNING_SECRET=SIGNING_SECRET,
                           SLACK_API_URL=slack.api_url, DATABASE_URL=database, OPSBOT_CONFIG=str(folder / "opsbot.yml"),
                           OPSBOT_ALERTS_TOKEN=TOKEN, HOST="127.0.0.1", **TIMES)
            # The replicas' ports are chosen up front: the Alertmanagers' receiver lists them, and the replicas'
            # catalog names the first Alertmanager for silences.
            ports = [free_port() for _ in range(3)]
            urls = [f"http://127.0.0.1:{port}/alerts/alertmanager" for port in ports]
            nodes = started.enter_context(start_alertmanagers(2, urls, TOKEN, repeat_for={'service="queue"': f"{REPEAT:g}s"}))
            (folder / "opsbot.yml").write_text(catalog(nodes[0].url))
            replicas = [Replica(env, folder, f"r{index}", port) for index, port in enumerate(ports)]
            targets = [node.url.removeprefix("http://") for node in nodes]
            # Prometheus's first scrape takes ~6 s: it starts (in a thread) while the replicas start.
            prometheus_started = asyncio.create_task(asyncio.to_thread(PrometheusServer.start, rules=RULES,
                                                                       alertmanagers=targets))
            await asyncio.gather(*(replica.healthy(http) for replica in replicas))
            prometheus = await prometheus_started
            started.callback(prometheus.stop)
            store = create_store(database)
            await store.open()
            try:
                yield Stack(slack, http, store, replicas, nodes, prometheus)
            finally:
                await store.close()
        finally:
            await asyncio.gather(*(asyncio.to_thread(replica.stop) for replica in replicas))
            await http.close()
            await slack.stop()
    logs = "".join(replica.log() for replica in replicas)
    assert "Traceback" not in logs, logs[-3000:]


def _about(slack: FakeSlack, name: str, method: str) -> list[Any]:
    """The calls about the alert `name`'s message in the alerts channel."""
    return [call for call in slack.of(method) if call.args.get("channel") == CHANNEL
            and name in (call.args.get("text") or "")]


async def test_a_rule_firing_through_two_alertmanagers_and_three_replicas_is_one_message_then_resolved(
        stack: Stack) -> None:
    exporter, slack = stack.prometheus.exporter, stack.slack
    exporter.set("opsbot_e2e_up", 0, service="api", host="api-1")
    [post, *_] = await eventually(lambda: _about(slack, "ApiDown", "chat.postMessage"), "the alert's message")
    assert post.args["channel"] == CHANNEL and post.args["text"] == "FIRING: ApiDown (1 of 1 firing)"
    # Prometheus sent it to both peers; their notifications reached every replica (3 webhooks each), all 2xx.
    for node in stack.alertmanagers:
        assert "ApiDown" in [a["labels"]["alertname"] for a in await asyncio.to_thread(node.api, "GET", "alerts")]
    await eventually(lambda: _at_least(stack.sent(), 3), "a notification to all three replicas")
    assert await stack.sent("alertmanager_notifications_failed_total") == 0

    # The route's auto-declare rule: every replica's chore looks, one declares.
    [group] = await eventually(stack.store.firing_groups, "the group in the store")
    declared = await eventually(lambda: _incident_of(stack, group.id), "the incident declared from the alert")
    await asyncio.sleep(2.5)  # more chores on every replica, and the peers' repeated notifications
    [incident] = await stack.store.incidents()
    assert incident.id == declared and incident.severity == "P1" and incident.title == "api is not answering on api-1"
    assert len(slack.of("conversations.create")) == 1
    assert len(_about(slack, "ApiDown", "chat.postMessage")) == 1

    exporter.set("opsbot_e2e_up", 1, service="api", host="api-1")  # the rule stops firing
    [resolved, *_] = await eventually(lambda: [u for u in _about(slack, "ApiDown", "chat.update")
                                           if u.args["text"].startswith("RESOLVED")], "the resolved update")
    shown = await stack.store.alert_group(group.id)  # read now: its message's ts is stored after the post returns
    assert shown is not None and shown.message_ts is not None and resolved.args["ts"] == shown.message_ts
    assert "lasted" in json.dumps(resolved.args["blocks"])
    assert len(_about(slack, "ApiDown", "chat.postMessage")) == 1  # one message for the whole story
    # The incident hears it once, though three replicas received the resolution: one offer to resolve it.
    await asyncio.sleep(1.0)
    offers = [c for c in slack.of("chat.postMessage") if c.args["text"] == "Every alert of ApiDown resolved. Resolve INC-1?"]
    assert len(offers) == 1


async def _at_least(count: Any, floor: float) -> bool:
    return bool(await count >= floor)


async def _incident_of(stack: Stack, group_id: int) -> int | None:
    group = await stack.store.alert_group(group_id)
    return group.incident_id if group is not None else None


async def test_silence_pressed_is_in_alertmanager_and_its_notifications_stop(stack: Stack) -> None:
    slack, nodes = stack.slack, stack.alertmanagers
    name = f"QueueStuck{uuid.uuid4().hex[:4]}"

    def alert(instance: str) -> list[dict[str, Any]]:
        return [{"labels": {"alertname": name, "service": "queue", "instance": instance},
                 "annotations": {"summary": f"{name} on {instance}"}, "startsAt": datetime.now(UTC).isoformat()}]

    for node in nodes:  # as Prometheus does: to every peer
        await asyncio.to_thread(node.api, "POST", "alerts", alert("q-1"))
    [post] = await eventually(lambda: _about(slack, name, "chat.postMessage"), "the alert's message")
    group = next(g for g in await stack.store.firing_groups() if g.group_labels.get("alertname") == name)
    before = await stack.sent()
    await eventually(lambda: _at_least(stack.sent(), before + 1), "a repeated notification while it fires",
                 timeout=REPEAT + 3)

    await stack.click(stack.replicas[1], "alert.silence.1h", str(group.id), "U0ALICE")
    silence_id = await eventually(lambda: _silence_of(stack, group.id), "the silence recorded")
    for node in nodes:  # made on the first peer, gossiped to the second
        found = await eventually(lambda node=node: asyncio.to_thread(_silence, node, silence_id), f"the silence on {node.url}",
                             timeout=5)
        assert found["status"]["state"] == "active" and "U0ALICE" in found["createdBy"]
        assert found["matchers"] == [{"name": "alertname", "value": name, "isRegex": False, "isEqual": True}]
    await eventually(lambda: any("Silenced by <@U0ALICE>" in json.dumps(u.args["blocks"])
                             for u in _about(slack, name, "chat.update")), "the message showing the silence")

    await asyncio.sleep(1.0)  # a notification the peers began before the silence reached them has landed
    sent, calls = await stack.sent(), len(_about(slack, name, "chat.update")) + len(_about(slack, name, "chat.postMessage"))
    for node in nodes:  # a new alert joins the group: silenced too (the silence matches the group's labels)
        await asyncio.to_thread(node.api, "POST", "alerts", alert("q-2"))
    await asyncio.sleep(REPEAT + 1.5)  # past a repeat_interval and a group_interval
    assert await stack.sent() == sent  # Alertmanager sent nothing more
    assert len(_about(slack, name, "chat.update")) + len(_about(slack, name, "chat.postMessage")) == calls
    assert len(_about(slack, name, "chat.postMessage")) == 1 and post.args["channel"] == CHANNEL


async def _silence_of(stack: Stack, group_id: int) -> str | None:
    group = await stack.store.alert_group(group_id)
    return group.silence_id if group is not None else None


def _silence(node: RunningAlertmanager, silence_id: str) -> dict[str, Any] | None:
    try:
        found = node.api("GET", f"silence/{silence_id}")
    except OSError:  # 404 until gossip brings it
        return None
    return found if isinstance(found, dict) else None
