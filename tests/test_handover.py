"""A graceful stop between replicas: two `opsbot serve` processes on one PostgreSQL, a three-step runbook whose steps
each call a local endpoint that counts them. SIGTERM reaches the replica running it mid-step: that replica turns
away new work at once (/readyz 503, a slash command told to try again), lets the step finish, hands the run over at
the step boundary and exits; the other replica finishes it. Each step reaches its target exactly once. When the
grace period is shorter than the step, the step is cut mid-way: the run is interrupted for people, never re-run."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from bot.handover import RESTARTING
from playground.payloads import SIGNING_SECRET, block_action, event_callback, sign, slash_command
from playground.slack_api import FakeSlack
from tests.conftest import make_settings, start_bot
from tests.replicas import Replica
from tests.targets import serve
from tests.test_cli import base_env

ALICE, CHANNEL = "U0ALICE", "C0OPS"
STEP_SECONDS = 2.0
TIMES = {"LEASE_SECONDS": "3", "HEARTBEAT_SECONDS": "1", "TICK_SECONDS": "0.5", "CHORE_SECONDS": "0.5"}


class Target:
    """The runbook's target: counts each call per path, each answered after STEP_SECONDS."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.started = asyncio.Event()
        self.base = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def step(request: web.Request) -> web.Response:
            self.calls[request.path] += 1
            self.started.set()
            await asyncio.sleep(STEP_SECONDS)
            return web.Response(text="done")

        app = web.Application()
        app.router.add_post("/{tail:.*}", step)
        self._runner, port = await serve(app)
        self.base = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    server = Target()
    await server.start()
    yield server
    await server.stop()


def catalog(base: str) -> str:
    steps = "\n".join(f'      - {{kind: http, url: "{base}/{name}", timeout: 10}}' for name in ("one", "two", "three"))
    return f"""
approvals:
  environments:
    staging: {{default: {{approvals: 0}}}}
services:
  api:
    environment: staging
    owners: [{ALICE}]
    runbooks: [three-calls]
runbooks:
  three-calls:
    description: Three calls to the target, one per step.
    services: [api]
    steps:
{steps}
"""


async def post(http: aiohttp.ClientSession, replica: Replica, body: str, content_type: str) -> str:
    async with http.post(f"http://127.0.0.1:{replica.port}/slack/events", data=body.encode(),
                         headers={"Content-Type": content_type, **sign(body)}) as response:
        assert response.status == 200, await response.text()
        return await response.text()


async def start_run(http: aiohttp.ClientSession, slack: FakeSlack, replica: Replica) -> int:
    """`/ops run three-calls` and Request (no approval needed in staging): the replica starts it at once."""
    url = slack.response_url()
    body, content_type = slash_command("/ops", "run three-calls", user=ALICE, channel=CHANNEL, response_url=url)
    await post(http, replica, body, content_type)
    deadline = time.monotonic() + 10
    while not (answers := [c.args for c in slack.of("response_url") if url.endswith(c.path)]):
        assert time.monotonic() < deadline, "the plan never came"
        await asyncio.sleep(0.05)
    plan = answers[-1]
    [run_id] = [e["value"] for b in plan["blocks"] if b["type"] == "actions" for e in b["elements"]
                if e["action_id"] == "action.request"]
    body, content_type = block_action("action.request", run_id, user=ALICE, channel=CHANNEL,
                                      response_url=slack.response_url())
    await post(http, replica, body, content_type)
    return int(run_id)


async def run_row(dsn: str, run_id: int) -> tuple[str, list[str]]:
    connection = await asyncpg.connect(dsn)
    try:
        state = await connection.fetchval("SELECT state FROM runs WHERE id = $1", run_id)
        steps = await connection.fetch("SELECT state FROM run_steps WHERE run_id = $1 ORDER BY position", run_id)
    finally:
        await connection.close()
    return state, [row["state"] for row in steps]


async def owner_pid(dsn: str, run_id: int) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        owner = await connection.fetchval("SELECT lease_owner FROM runs WHERE id = $1", run_id)
    finally:
        await connection.close()
    return int(owner.split(":")[1])


async def wait_state(dsn: str, run_id: int, states: set[str], timeout: float) -> tuple[str, list[str]]:
    deadline = time.monotonic() + timeout
    while (row := await run_row(dsn, run_id))[0] not in states:
        assert time.monotonic() < deadline, f"run #{run_id} is still {row}"
        await asyncio.sleep(0.1)
    return row


@pytest.mark.parametrize("grace", [30.0, 0.3], ids=["step-finishes-then-hand-over", "grace-ends-mid-step"])
async def test_sigterm_hands_a_three_step_runbook_to_the_other_replica_and_each_step_runs_once(
        grace: float, slack: FakeSlack, target: Target, pg_database: str, http: aiohttp.ClientSession,
        tmp_path: Path) -> None:
    (tmp_path / "opsbot.yml").write_text(catalog(target.base))
    env = base_env(SLACK_BOT_TOKEN="xoxb-test-token-1234567890", SLACK_SIGNING_SECRET=SIGNING_SECRET,
                   SLACK_API_URL=slack.api_url, DATABASE_URL=pg_database, OPSBOT_CONFIG=str(tmp_path / "opsbot.yml"),
                   HOST="127.0.0.1", SHUTDOWN_GRACE_SECONDS=f"{grace:g}", **TIMES)
    first = Replica(env, tmp_path, "first")
    replicas = [first]
    try:
        await first.healthy(http)
        second = Replica(env, tmp_path, "second")
        replicas.append(second)
        await second.healthy(http)
        run_id = await start_run(http, slack, first)
        await asyncio.wait_for(target.started.wait(), 10)  # step 1 is under way on the first replica
        first.terminate()
        if grace > STEP_SECONDS:
            # Still serving while its step finishes, but taking nothing new.
            async with http.get(f"http://127.0.0.1:{first.port}/readyz") as response:
                assert response.status == 503
                assert "stopping" in (await response.json())["shutdown"]
            body, content_type = slash_command("/ops", "health api", user=ALICE, channel=CHANNEL,
                                               response_url=slack.response_url())
            assert json.loads(await post(http, first, body, content_type))["text"] == RESTARTING
        signalled = time.monotonic()
        await asyncio.to_thread(first.proc.wait, 20)
        assert first.proc.returncode == 0, first.log()[-3000:]
        if grace > STEP_SECONDS:
            # It left after its one step, not after the whole runbook (three steps of STEP_SECONDS).
            assert time.monotonic() - signalled < 2 * STEP_SECONDS
            state, steps = await wait_state(pg_database, run_id, {"succeeded", "failed", "interrupted"}, 20)
            assert (state, steps) == ("succeeded", ["succeeded"] * 3), second.log()[-3000:]
            assert target.calls == Counter({"/one": 1, "/two": 1, "/three": 1})
            assert await owner_pid(pg_database, run_id) == second.proc.pid  # the second replica finished it
        else:
            # Cut mid-way: what step 1 did is unknown, so nobody runs it again or goes on; people decide.
            state, steps = await wait_state(pg_database, run_id, {"interrupted", "succeeded", "failed"}, 20)
            assert time.monotonic() - signalled < STEP_SECONDS
            assert (state, steps) == ("interrupted", ["running", "waiting", "waiting"])
            await asyncio.sleep(2 * float(TIMES["LEASE_SECONDS"]))  # the second replica's chores pass several times
            assert (await run_row(pg_database, run_id))[0] == "interrupted"
            assert target.calls == Counter({"/one": 1})
    finally:
        for replica in replicas:
            replica.terminate()
        for replica in replicas:
            replica.stop()
    logs = "".join(r.log() for r in replicas)
    assert "Traceback" not in logs, logs[-3000:]


async def test_a_draining_replica_tells_a_command_and_a_button_to_try_again_and_leaves_an_event_for_slack_to_resend(
        slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    bot, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'o.db'}"), catalog("http://127.0.0.1:9"),
                                  slack, http)
    try:
        bot.ctx.handover.begin()
        body, content_type = slash_command("/ops", "run three-calls", user=ALICE, channel=CHANNEL,
                                           response_url=slack.response_url())
        response = await bot.post(body, content_type)
        assert response.status == 200 and json.loads(await response.text())["text"] == RESTARTING
        url = slack.response_url()
        body, content_type = block_action("action.request", "1", user=ALICE, channel=CHANNEL, response_url=url)
        assert (await bot.post(body, content_type)).status == 200
        [told] = [c.args for c in slack.of("response_url") if url.endswith(c.path)]
        assert told["text"] == RESTARTING and told["response_type"] == "ephemeral"
        body, content_type = event_callback({"type": "app_mention", "user": ALICE, "channel": CHANNEL,
                                             "text": "<@UBOT0001> health", "ts": "1700000000.000200"})
        assert (await bot.post(body, content_type)).status == 503  # not acked: Slack sends it again
        assert not slack.of("chat.postMessage") and await bot.ctx.store.actions(limit=10) == []
    finally:
        await runner.cleanup()
