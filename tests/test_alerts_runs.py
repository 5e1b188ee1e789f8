"""A run started from an alert's Run button, through to its end on the alert's message: Run → plan → Request → a
second person approves → the runbook runs → the alert message shows ✅ (or ❌) with the run's one-line ending and a
link to the run's message. Through a running bot on SQLite with the fake Slack (the run's end reaches alerts through
`bot.runs.listeners`, so `bot.runs` imports nothing of alerts)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.alerts.runs import one_line
from bot.runs import requests
from bot.runs.execution import refresh_message
from bot.runs.models import ActionKind, ActionRun, ActionState
from bot.views import Message
from bot.views.alerts import RUN_ACTION
from bot.views.runs import APPROVE_ACTION, DENY_ACTION, REQUEST_ACTION
from playground.payloads import block_action, view_submission
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings, start_bot
from tests.run_harness import ALICE, Chat, Deps, run_action
from tests.run_harness import CHANNEL as RUN_CHANNEL
from tests.test_alerts import CATALOG, TOKEN, am_alert, am_payload

CHANNEL = "C0APITEAM"
ONCALL, SECOND = "U0ALICE", "U0BOB"
# A second route whose runbook fails: its one step calls a port nobody listens on.
FAILING = """
  probe:
    services: [api]
    steps:
      - {kind: http, url: "http://127.0.0.1:9/hook", method: POST, on_failure: stop}
"""


# --- the port, in memory ---------------------------------------------------------------------------------------------


class Unpostable(Chat):
    async def post(self, channel: str, message: Message, *, thread_ts: str | None = None,
                   key: str | None = None) -> str:
        raise ConnectionError("Slack is unreachable")


async def test_the_run_flows_tell_their_listeners_each_ending_and_a_failing_one_changes_nothing() -> None:
    deps = Deps()
    heard: list[tuple[int | None, ActionState]] = []

    async def listener(run: ActionRun) -> None:
        heard.append((run.id, run.state))

    async def broken(run: ActionRun) -> None:
        raise RuntimeError("a listener's bug")

    deps.run_listeners.add(broken)
    deps.run_listeners.add(listener)
    done = await run_action(deps, "web", ActionKind.RESTART)  # staging: no approval, it runs at once
    assert done.state is ActionState.SUCCEEDED and heard == [(done.id, ActionState.SUCCEEDED)]
    dropped = await requests.plan(deps, "web", ActionKind.RESTART, requested_by=ALICE, channel_id=RUN_CHANNEL)
    await requests.cancel(deps, dropped.id or 0, ALICE)  # a plan dropped before it was sent: it ended too
    unsent = await requests.plan(deps, "web", ActionKind.RESTART, requested_by=ALICE, channel_id=RUN_CHANNEL)
    deps.clock.advance(11 * 60)
    await requests.expire_due(deps)  # a plan never sent expires
    assert heard[1:] == [(dropped.id, ActionState.CANCELLED), (unsent.id, ActionState.EXPIRED)]
    late = await requests.plan(deps, "web", ActionKind.RESTART, requested_by=ALICE, channel_id=RUN_CHANNEL)
    deps.clock.advance(11 * 60)
    with pytest.raises(requests.NotPending, match="expired"):
        await requests.request(deps, late.id or 0, ALICE)  # sent too late: it expires as it is sent
    unposted = await requests.plan(deps, "web", ActionKind.RESTART, requested_by=ALICE, channel_id=RUN_CHANNEL)
    deps.chat = Unpostable()
    with pytest.raises(ConnectionError):  # Slack refused the run's message: the run is withdrawn, and it ended
        await requests.request(deps, unposted.id or 0, ALICE)
    assert heard[3:] == [(late.id, ActionState.EXPIRED), (unposted.id, ActionState.CANCELLED)]


# --- through a running bot ---------------------------------------------------------------------------------------------


@pytest.fixture
async def bot(slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path) -> AsyncIterator[RunningBot]:
    catalog = CATALOG.replace("runbooks:\n", "runbooks:" + FAILING).replace(
        "    - {match: {team: web}, service: api, health: true}",
        "    - {match: {team: web}, service: api, health: true}\n    - {match: {alertname: Probe}, service: api, runbook: probe}")
    settings = make_settings(slack, f"sqlite:///{tmp_path / 'opsbot.db'}", opsbot_alerts_token=TOKEN)
    running, runner = await start_bot(settings, catalog, slack, http)
    yield running
    await running.settle()
    await runner.cleanup()


async def _deliver(bot: RunningBot, payload: dict[str, Any]) -> None:
    async with bot.http.post(f"{bot.url}/alerts/alertmanager", json=payload,
                             headers={"Authorization": f"Bearer {TOKEN}"}) as response:
        assert response.status == 200, await response.text()


async def _click(bot: RunningBot, action: str, value: str, user: str) -> None:
    body, kind = block_action(action, value, user=user, channel=CHANNEL, response_url=bot.slack.response_url())
    await bot.post(body, kind)
    await bot.settle()


async def _run_from_alert(bot: RunningBot, group_id: int) -> int:
    """Run pressed on the alert, the plan sent for approval; the run's id."""
    await _click(bot, RUN_ACTION, str(group_id), ONCALL)
    group = await bot.ctx.store.alert_group(group_id)
    assert group is not None and group.run_id is not None
    await _click(bot, REQUEST_ACTION, str(group.run_id), ONCALL)
    run = await bot.ctx.store.get_action(group.run_id)
    assert run is not None and run.state is ActionState.PENDING, run
    return group.run_id


def _alert_blocks(bot: RunningBot, group_id: int, ts: str) -> str:
    """The alert message's blocks as the fake Slack holds them now (after every update)."""
    return json.dumps(bot.slack.messages[(CHANNEL, ts)]["blocks"])


async def test_a_run_started_from_an_alert_shows_its_result_on_the_alert(bot: RunningBot) -> None:
    await _deliver(bot, am_payload(am_alert()))
    run_id = await _run_from_alert(bot, 1)
    group = await bot.ctx.store.alert_group(1)
    assert group is not None and group.message_ts is not None
    assert f"Run #{run_id} of `page` planned from this alert" in _alert_blocks(bot, 1, group.message_ts)

    await _click(bot, APPROVE_ACTION, str(run_id), SECOND)  # a second person approves; it runs
    run = await bot.ctx.store.get_action(run_id)
    assert run is not None and run.state is ActionState.SUCCEEDED and run.message_ts is not None
    ended = await bot.ctx.store.alert_group(1)
    assert ended is not None and ended.run_state == "succeeded" and ended.run_link is not None
    shown = _alert_blocks(bot, 1, group.message_ts)
    assert f":white_check_mark: <{ended.run_link}|Run #{run_id} of `page`> succeeded: " in shown
    assert one_line(run.outcome or "") in shown and run.message_ts.replace(".", "") in ended.run_link
    posts = [c for c in bot.slack.of("chat.postMessage") if "ApiDown" in c.args.get("text", "")]
    assert len(posts) == 1  # the same message, updated

    # The run's message is refreshed again later (say a follow-up looks at it): the alert is not written again.
    updates = len(bot.slack.of("chat.update"))
    await refresh_message(bot.ctx, run_id)
    await bot.settle()
    assert [c for c in bot.slack.of("chat.update")[updates:] if c.args["ts"] == group.message_ts] == []


async def test_a_failed_or_denied_run_shows_a_cross_with_why(bot: RunningBot) -> None:
    probe = am_alert("fp-probe", name="Probe")
    await _deliver(bot, am_payload(probe, group="Probe"))
    run_id = await _run_from_alert(bot, 1)
    await _click(bot, APPROVE_ACTION, str(run_id), SECOND)
    run = await bot.ctx.store.get_action(run_id)
    assert run is not None and run.state is ActionState.FAILED
    group = await bot.ctx.store.alert_group(1)
    assert group is not None and group.message_ts is not None and group.run_state == "failed"
    shown = _alert_blocks(bot, 1, group.message_ts)
    assert f":x: <{group.run_link}|Run #{run_id} of `probe`> failed: " in shown
    assert one_line(run.outcome or "") in shown

    # Run again: the new run replaces the old result; its denial shows as a cross with who denied it.
    second = await _run_from_alert(bot, 1)
    assert f"Run #{second} of `probe` planned from this alert" in _alert_blocks(bot, 1, group.message_ts)
    await _click(bot, DENY_ACTION, str(second), SECOND)
    [opened] = bot.slack.of("views.open")
    view = opened.args["view"]
    values = {"reason": {"reason.input": {"type": "plain_text_input", "value": "not during the freeze"}}}
    body, kind = view_submission(view["callback_id"], values, user=SECOND, private_metadata=view["private_metadata"])
    await bot.post(body, kind)
    await bot.settle()
    shown = _alert_blocks(bot, 1, group.message_ts)
    assert f"Run #{second} of `probe`> denied: " in shown and f"<@{SECOND}>" in shown
