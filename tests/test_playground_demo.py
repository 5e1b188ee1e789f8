"""`opsbot dev` as a new user meets it over days: a restart of the playground that keeps its workspace and store,
and the demo apps behind `demo` targets restarted, rolled back and deployed through the page's API — each click
a signed request to the real bot, answered where Slack would show it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from playground import dev, snapshot
from playground.slack_api import FakeSlack
from tests.conftest import free_port, make_settings, start_bot
from tests.test_approvals import ops

ALICE, BOB = "U0ALICE", "U0BOB"
OPS = "C0OPS"
Message = dict[str, Any]


class Page:
    """What a person does on the playground's page, through the same API the page uses."""

    def __init__(self, http: aiohttp.ClientSession, base: str, lines: list[str]) -> None:
        self.http, self.base, self.lines = http, base, lines

    async def state(self, user: str = ALICE) -> dict[str, Any]:
        async with self.http.get(f"{self.base}/ui/state", params={"user": user}) as response:
            return dict(await response.json())

    async def act(self, what: str, user: str = ALICE, channel: str = OPS, **data: Any) -> None:
        async with self.http.post(f"{self.base}/ui/{what}", json={"user": user, "channel": channel, **data}) as response:
            assert response.status == 200, await response.text()

    async def messages(self, user: str = ALICE, channel: str = OPS) -> list[Message]:
        return list((await self.state(user))["messages"].get(channel, []))

    async def wait_for(self, found: Callable[[Message], bool], user: str = ALICE, channel: str = OPS,
                       timeout: float = 20) -> Message:
        for _ in range(int(timeout / 0.1)):
            hits = [m for m in await self.messages(user, channel) if found(m)]
            if hits:
                return hits[-1]
            await asyncio.sleep(0.1)
        shown = [text_of(m)[:200] for m in await self.messages(user, channel)]
        raise AssertionError(f"nothing of that kind in {channel} for {user}; it shows: {shown}")

    async def press(self, message: Message, action_id: str, user: str = ALICE, channel: str = OPS) -> None:
        await self.act("press", user=user, channel=channel, ts=message["ts"], action=element(message, action_id))

    async def approve(self, message: Message, approver: str = BOB) -> None:
        await self.press(message, "approval.approve", user=approver)


def text_of(message: Message) -> str:
    return json.dumps(message.get("blocks") or message.get("text"), ensure_ascii=False)


def element(message: Message, action_id: str) -> dict[str, Any]:
    for block in message.get("blocks") or []:
        for candidate in [*block.get("elements", []), block.get("accessory") or {}]:
            if candidate.get("action_id") == action_id:
                return dict(candidate)
    raise AssertionError(f"no {action_id} on {text_of(message)[:500]}")


def has(*words: str, ephemeral: bool | None = None) -> Callable[[Message], bool]:
    return lambda m: all(w in text_of(m) for w in words) and (ephemeral is None or bool(m.get("ephemeral")) == ephemeral)


@asynccontextmanager
async def playground(data_dir: Path, config: Path | None = None) -> AsyncIterator[Page]:
    port, lines, stop = free_port(), list[str](), asyncio.Event()
    running = asyncio.create_task(dev.run(port, data_dir, config=config, ready=lines.append, stop=stop))
    for _ in range(300):
        if len(lines) >= 2 or running.done():
            break
        await asyncio.sleep(0.05)
    if running.done():
        running.result()  # raises what stopped it
    try:
        async with aiohttp.ClientSession() as http:
            yield Page(http, f"http://127.0.0.1:{port}", lines)
    finally:
        stop.set()
        await asyncio.wait_for(running, 20)


async def requested_and_approved(page: Page, plan: Message, title: str) -> Message:
    """Request approval on an ephemeral plan, then approve as Bob; returns the request message."""
    await page.press(plan, "action.request")
    for _ in range(100):
        modal = (await page.state())["modal"]
        if modal is not None:  # no reason was given: the form asks for one
            values = {"reason": {"reason.input": {"type": "plain_text_input", "value": "trying the playground"}}}
            await page.act("submit", view_id=modal["id"], values=values)
            break
        if any(has("Approval needed", title)(m) for m in await page.messages(BOB)):
            break
        await asyncio.sleep(0.1)
    request = await page.wait_for(has("Approval needed", title), user=BOB)
    await page.approve(request)
    return request


async def test_a_restarted_playground_keeps_its_workspace_and_store_and_says_so(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with playground(data) as page:
        assert page.lines[1].startswith("playground: a fresh workspace and store in ")
        await page.act("command", text="/incident declare P2 checkout is slow")
        await page.wait_for(has("checkout is slow"), channel="C0INCIDENTS")
    assert (data / snapshot.FILE).exists()

    async with playground(data) as page:
        assert page.lines[1].startswith("playground: kept the workspace and store from ")
        assert "delete the folder to start fresh" in page.lines[1]
        await page.act("command", text="/incident declare P2 search is down")
        await page.wait_for(has("search is down"), channel="C0INCIDENTS")
        channels = {c["name"]: c["id"] for c in (await page.state())["channels"]}
        first = next(cid for name, cid in channels.items() if name.endswith("checkout-is-slow"))
        second = next(cid for name, cid in channels.items() if name.endswith("search-is-down"))
        assert first != second
        assert any("checkout is slow" in text_of(m) for m in await page.messages(channel=first)), "its history was kept"

        await page.act("command", text="/incident list")
        listing = await page.wait_for(has("INC-1", "INC-2", ephemeral=True))
        assert f"<#{first}>" in text_of(listing) and f"<#{second}>" in text_of(listing), "both link to live channels"
        welcomes = [m for m in await page.messages() if m["user"] == dev.WELCOMER]
        assert len(welcomes) == 1, "the welcome post is made once, on a fresh workspace"
        assert "/ops run deploy-payments version=bad" in welcomes[0]["text"]


def test_a_store_without_its_workspace_is_set_aside_and_both_start_fresh(tmp_path: Path) -> None:
    from bot.clock import SystemClock
    from playground.demo_apps import DemoSwitches
    from playground.workspace import Workspace

    (tmp_path / snapshot.STORE).write_text("an older playground's store")
    began = snapshot.begin(tmp_path, Workspace(), DemoSwitches([], SystemClock()))
    assert began.start is snapshot.Start.RESET
    assert not (tmp_path / snapshot.STORE).exists()
    assert (tmp_path / (snapshot.STORE + ".old")).read_text() == "an older playground's store"
    assert "no workspace saved beside it" in dev.beginning_line(began, tmp_path)


def test_a_damaged_workspace_file_starts_both_fresh_and_leaves_the_workspace_untouched(tmp_path: Path) -> None:
    from bot.clock import SystemClock
    from playground.demo_apps import DemoSwitches
    from playground.workspace import Workspace

    (tmp_path / snapshot.STORE).write_text("store")
    (tmp_path / snapshot.FILE).write_text(json.dumps({"version": snapshot.VERSION, "channels": "not a list"}))
    workspace = Workspace()
    before = dict(workspace.channels)
    began = snapshot.begin(tmp_path, workspace, DemoSwitches([], SystemClock()))
    assert began.start is snapshot.Start.RESET and workspace.channels == before


async def test_a_broken_demo_service_is_restarted_after_a_second_person_approves_and_answers_again(tmp_path: Path) -> None:
    async with playground(tmp_path / "data") as page:
        await page.act("demo", service="payments", healthy=False)
        await page.act("command", text="/ops health payments")
        report = await page.wait_for(has("1 of 1 service failing", ephemeral=False))
        await page.press(report, "health.restart")
        plan = await page.wait_for(has("Plan: restart payments", "demo app payments", ephemeral=True))
        await requested_and_approved(page, plan, "restart payments")
        await page.wait_for(has("Done: restart payments"), timeout=30)
        assert (await page.state())["demo"]["payments"] is True, "the page's switch shows it fixed"

        await page.act("command", text="/ops health payments")
        await page.wait_for(has("All 1 service healthy", ephemeral=False))


async def test_a_bad_version_fails_the_deploy_runbooks_gate_and_is_rolled_back(tmp_path: Path) -> None:
    async with playground(tmp_path / "data") as page:
        await page.act("command", text="/ops run deploy-payments version=bad")
        plan = await page.wait_for(has("deploy-payments", "Deploy bad to payments", ephemeral=True))
        await requested_and_approved(page, plan, "deploy-payments")
        run = await page.wait_for(has("Failed", "runbook deploy-payments"), timeout=40)
        assert "payments is not healthy" in text_of(run) and "payments:bad" in text_of(run)

        await page.act("command", text="/ops history payments")
        history = await page.wait_for(has("Deploy revisions", ephemeral=True))
        assert "▶️ current `3` payments:1.4.2" in text_of(history), text_of(history)
        await page.act("command", text="/ops health payments")
        await page.wait_for(has("All 1 service healthy", ephemeral=False))


async def test_a_good_version_deploys_and_ops_rollback_takes_it_back(tmp_path: Path) -> None:
    async with playground(tmp_path / "data") as page:
        await page.act("command", text="/ops run deploy-payments version=1.5.0")
        plan = await page.wait_for(has("deploy-payments", ephemeral=True))
        await requested_and_approved(page, plan, "deploy-payments")
        await page.wait_for(has("payments runs 1.5.0 and is healthy"), timeout=40)
        await page.wait_for(has("Done", "runbook deploy-payments"), timeout=20)  # its lease is given back then

        await page.act("command", text="/ops rollback payments")
        plan = await page.wait_for(has("Plan: rollback payments", ephemeral=True))
        await requested_and_approved(page, plan, "rollback payments")
        done = await page.wait_for(has("Done: rollback payments"), timeout=30)
        assert "payments:1.4.2" in text_of(done)


async def test_a_demo_target_outside_the_playground_is_refused_in_words(slack: FakeSlack, http: aiohttp.ClientSession,
                                                                       tmp_path: Path) -> None:
    catalog = "services:\n  payments:\n    environment: production\n    target: {type: demo, app: payments}\n"
    bot, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'o.db'}"), catalog, slack, http)
    try:
        answer = await ops(bot, "restart payments")
    finally:
        await runner.cleanup()
    assert "target is a demo app, which only `opsbot dev` runs" in json.dumps(answer)


async def test_reloading_the_page_prints_no_traceback(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with playground(tmp_path / "data") as page:
        for _ in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", int(page.base.rsplit(":", 1)[1]))
            writer.write(b"GET /ui/events HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            assert b"200" in await reader.readline()
            writer.close()  # the page goes away, as a reload does
            await writer.wait_closed()
        await page.act("command", text="/ops help")  # a change each open stream tries to send
        await page.wait_for(has(ephemeral=True))
        await asyncio.sleep(0.3)
    errors = [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert not errors, [r.getMessage() for r in errors]
