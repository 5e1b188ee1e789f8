"""Issue 18's combined story through signed Slack requests, on PostgreSQL as the store: a runbook that runs a command in
a pod (the Kubernetes double's exec), reads rows from PostgreSQL, waits for a person, then gates on one chosen check.
Alice asks, Bob approves; the replica running it is SIGKILLed while the person is still at it; a new replica on the
same store finds the run interrupted; Resume asks the person again; Done; the gate passes; the run succeeded, and each
automatic step reached its target once.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from bot.runs.models import ActionState, Answer, StepState
from bot.runs.outcomes import Ending
from bot.views.manual_steps import DONE_ACTION, FAILED_ACTION, SKIP_ACTION
from bot.views.runs import RESUME_ACTION
from playground.payloads import SIGNING_SECRET, block_action, sign, slash_command, view_submission
from playground.slack_api import FakeSlack
from tests.conftest import free_port, make_settings, start_bot
from tests.k8s_api import ExecCall, ExecReply, K8sApi
from tests.replicas import Replica
from tests.test_cli import base_env

ALICE, BOB, CAROL, CHANNEL = "U0ALICE", "U0BOB", "U0CAROL", "C0OPS"
# Leases, heartbeats and chores in fractions of a second: a dead replica's run is seen within about three seconds.
# Not shorter: on a loaded machine an event loop can stall long enough that a live run looks dead to its own chores.
TIMES = {"lease_seconds": 3.0, "heartbeat_seconds": 0.5, "chore_seconds": 0.3, "tick_seconds": 0.5}
MIGRATE = ("app", "migrate", "--to", "42")
T = TypeVar("T")


def catalog(k8s_url: str, closed_port: int) -> str:
    return f"""
approvals:
  environments:
    production: {{default: {{approvals: 1, approvers: [S0LEADS]}}}}
services:
  api:
    environment: production
    target: {{type: kubernetes, deployment: api, api_url: "{k8s_url}"}}
    checks:
      - {{type: postgres, name: database, dsn_env: JOBS_DSN}}
      - {{type: tcp, name: edge, host: 127.0.0.1, port: {closed_port}, timeout: 1}}
runbooks:
  release-api:
    description: Migrate, look at the stuck jobs, let a person watch the queue drain, then make sure the database is up.
    services: [api]
    steps:
      - {{kind: exec, service: api, command: {json.dumps(list(MIGRATE))}}}
      - kind: query
        service: api
        dsn_env: JOBS_DSN
        statement: "SELECT id, state, label FROM jobs WHERE state = 'running' ORDER BY id LIMIT 3"
      - kind: manual
        name: Watch the queue drain
        instructions: "Open *the jobs dashboard* and wait until no job is left running."
      - {{kind: check, service: api, checks: [database]}}
"""


@pytest.fixture
async def k8s() -> AsyncIterator[K8sApi]:
    api = K8sApi()
    await api.start()
    api.add_deployment("api", replicas=1)

    async def migrate(call: ExecCall) -> ExecReply:
        return ExecReply(stdout=b"applied 3 migrations\nschema at 42\n", exit_code=0)

    api.exec_handler = migrate
    yield api
    await api.stop()


# --- talking to a replica as Slack does, and waiting on what it posts back -------------------------------------------


def text(message: Any) -> str:
    return json.dumps(message, ensure_ascii=False)


async def until(slack: FakeSlack, found: Callable[[], T | None], what: str, timeout: float = 8.0) -> T:
    """Wait for Slack to see something (each Web API call or response_url answer wakes the check)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        version = slack.version
        if (value := found()) is not None:
            return value
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise AssertionError(f"never saw {what}; last calls: {[c.method for c in slack.calls[-8:]]}")
        await slack.changed_since(version, min(left, 0.5))


async def send(http: aiohttp.ClientSession, bot_url: str, body: str, content_type: str) -> None:
    async with http.post(f"{bot_url}/slack/events", data=body.encode(),
                         headers={"Content-Type": content_type, **sign(body)}) as response:
        assert response.status == 200, await response.text()


def answers(slack: FakeSlack, url: str) -> list[dict[str, Any]]:
    return [c.args for c in slack.of("response_url") if url.endswith(c.path)]


def button(message: dict[str, Any], action_id: str) -> str:
    for block in message.get("blocks", []):
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == action_id:
                return str(element["value"])
    raise AssertionError(f"no {action_id} button in {text(message)[:600]}")


def run_message(slack: FakeSlack, run_id: int, showing: str = "") -> dict[str, Any] | None:
    """The run's message in the channel, once it shows `showing`."""
    shown = [m for m in slack.messages.values() if f"Runbook run #{run_id} " in text(m)]
    return shown[-1] if shown and showing in text(shown[-1]) else None


async def press(slack: FakeSlack, http: aiohttp.ClientSession, bot_url: str, action_id: str, value: str,
                user: str) -> str:
    """A button pressed; the response_url its answers come back on."""
    url = slack.response_url()
    await send(http, bot_url, *block_action(action_id, value, user=user, channel=CHANNEL, response_url=url))
    return url


async def ask_for(slack: FakeSlack, http: aiohttp.ClientSession, bot_url: str, run_id: int, user: str) -> None:
    """`user` presses Request approval on their plan (and gives a reason if the modal asks for one): the request for
    approval is posted in the channel."""
    opened = len(slack.of("views.open"))
    await press(slack, http, bot_url, "action.request", str(run_id), user)
    await until(slack, lambda: len(slack.of("views.open")) > opened or run_message(slack, run_id, "approval.approve"),
                "the reason modal or the request")
    if len(slack.of("views.open")) > opened:
        view = slack.of("views.open")[-1].args["view"]
        await send(http, bot_url, *view_submission(
            view["callback_id"], {"reason": {"reason.input": {"type": "plain_text_input", "value": "release 42"}}},
            user=user, private_metadata=view["private_metadata"]))
    await until(slack, lambda: run_message(slack, run_id, "approval.approve"), f"run #{run_id}'s request for approval")


async def waits_for_a_person(slack: FakeSlack, run_id: int) -> dict[str, Any]:
    return await until(slack, lambda: run_message(slack, run_id, DONE_ACTION),
                       f"run #{run_id} waiting with Done / Skip / Failed")


# --- the story -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_mixed_runbook_runs_through_approval_a_crash_while_a_person_works_resume_and_completion(
        database_url: str, pg_jobs: str, k8s: K8sApi, slack: FakeSlack, http: aiohttp.ClientSession,
        tmp_path: Path) -> None:
    # The store's tables and the app's `jobs` table share the test's one PostgreSQL database (their names apart).
    assert database_url == pg_jobs
    slack.groups = {"S0LEADS": [BOB]}
    yaml = catalog(k8s.url, free_port())
    (tmp_path / "opsbot.yml").write_text(yaml)
    env = base_env(SLACK_BOT_TOKEN="xoxb-test-token-1234567890", SLACK_SIGNING_SECRET=SIGNING_SECRET,
                   SLACK_API_URL=slack.api_url, DATABASE_URL=database_url, OPSBOT_CONFIG=str(tmp_path / "opsbot.yml"),
                   HOST="127.0.0.1", JOBS_DSN=pg_jobs, **{key.upper(): f"{value:g}" for key, value in TIMES.items()})
    first = Replica(env, tmp_path, "first")  # a real `opsbot serve`, so that it can die as a process dies
    try:
        await first.healthy(http)
        first_url = f"http://127.0.0.1:{first.port}"

        # Alice plans the runbook; every step shows, nothing is touched.
        url = slack.response_url()
        await send(http, first_url, *slash_command("/ops", "run release-api", user=ALICE, channel=CHANNEL,
                                                   response_url=url))
        plan = await until(slack, lambda: next(iter(answers(slack, url)), None), "the plan")
        shown = text(plan)
        assert "Run `app migrate --to 42`" in shown and "Read on api (postgres, read-only)" in shown
        assert "3. Watch the queue drain" in shown and "Check database of api" in shown
        assert k8s.execs == []
        run_id = int(button(plan, "action.request"))

        # She asks; Bob approves; the exec and the query run, and the run waits for a person.
        await ask_for(slack, http, first_url, run_id, ALICE)
        await press(slack, http, first_url, "approval.approve", str(run_id), BOB)
        asking = await waits_for_a_person(slack, run_id)
        waiting = text(asking)
        assert "applied 3 migrations" in waiting and "schema at 42" in waiting  # the command's output
        # The rows as an aligned table, in a code block under the step's line.
        assert "LIMIT 3 — 3 rows _(" in waiting
        assert "\\n```id  state    label\\n--  -------  -----\\n1   running  job 1\\n2   running  job 2\\n" in waiting
        assert "Open *the jobs dashboard* and wait until no job is left running." in waiting
        assert [button(asking, a) for a in (DONE_ACTION, SKIP_ACTION, FAILED_ACTION)] == [f"{run_id}:2"] * 3
        assert len(k8s.execs) == 1 and k8s.execs[0].command == MIGRATE

        # The replica dies while the person is at the dashboard: nothing it could write on the way out.
        first.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(first.proc.wait, 10)
    finally:
        if first.proc.poll() is None:
            first.proc.kill()
        first.stop()
    assert "Traceback" not in first.log()

    second, runner = await start_bot(make_settings(slack, database_url, **TIMES), yaml, slack, http,
                                     environ={"JOBS_DSN": pg_jobs})
    try:
        store = second.ctx.store
        for _ in range(100):  # its chores find the dead replica's run once its heartbeat is a lease old
            cut = await store.get_action(run_id)
            if cut is not None and cut.state is ActionState.INTERRUPTED:
                break
            await asyncio.sleep(0.1)
        assert cut is not None and cut.state is ActionState.INTERRUPTED, cut
        assert cut.outcome_data is not None and cut.outcome_data.ending is Ending.RECOVERED  # found, not left so
        assert [s.state for s in cut.steps] == [StepState.SUCCEEDED, StepState.SUCCEEDED, StepState.RUNNING,
                                                StepState.WAITING]
        interrupted = await until(slack, lambda: run_message(slack, run_id, RESUME_ACTION), "the run's Resume")
        assert "⚠️ Interrupted" in text(interrupted) and DONE_ACTION not in text(interrupted)

        # Carol presses Resume: her plan keeps the two steps done; she asks, and Bob approves again.
        url = await press(slack, http, second.url, RESUME_ACTION, button(interrupted, RESUME_ACTION), CAROL)
        resumed_plan = await until(slack, lambda: next(iter(answers(slack, url)), None), "the Resume plan")
        resumed = int(button(resumed_plan, "action.request"))
        assert resumed != run_id
        await ask_for(slack, http, second.url, resumed, CAROL)
        await press(slack, http, second.url, "approval.approve", str(resumed), BOB)

        # The manual step asks again (it never got an answer); Bob says Done; the gate on `database` passes.
        try:
            asking = await waits_for_a_person(slack, resumed)
        except AssertionError as exc:  # say where the run is, not only what Slack saw
            raise AssertionError(f"{exc}; the run as stored: {await store.get_action(resumed)}") from None
        assert button(asking, DONE_ACTION) == f"{resumed}:2"
        url = await press(slack, http, second.url, DONE_ACTION, f"{resumed}:2", BOB)
        assert "Step 3 marked done" in text(await until(slack, lambda: next(iter(answers(slack, url)), None),
                                                        "the answer to Done"))
        await asyncio.wait_for(second.settle(), 10)

        done = await store.get_action(resumed)
        assert done is not None and done.state is ActionState.SUCCEEDED, done.outcome
        assert [s.state for s in done.steps] == [StepState.SUCCEEDED] * 4
        answer = done.steps[2].answer
        assert answer is not None and (answer.answer, answer.by) == (Answer.DONE, BOB)
        assert done.steps[3].detail.startswith("database: ok, "), done.steps[3].detail
        final = text(run_message(slack, resumed))
        assert f"marked done by <@{BOB}>" in final and done.steps[3].detail in final
        assert len(k8s.execs) == 1  # the migration ran once: Resume did not run the done steps again

        audited = [(entry.actor_id, entry.args) for entry in await store.audit_entries(limit=200)]
        assert (BOB, f"#{resumed} step 3 done") in audited
        assert (None, f"#{run_id} interrupted") in audited

        # The gate counted only the chosen check: the service's other one is red all along.
        url = slack.response_url()
        await send(http, second.url, *slash_command("/ops", "health api", user=ALICE, channel=CHANNEL,
                                                    response_url=url))
        health = await until(slack, lambda: next((a for a in answers(slack, url) if "blocks" in a), None),
                             "the health report")
        assert "❌ `edge` cannot connect to 127.0.0.1:" in text(health) and "✅ `database`" in text(health)
    finally:
        await runner.cleanup()
