"""How the playground page shows what Slack shows: emoji, mrkdwn with code, threads, dates, files, long names,
new messages below, modals, completion, mentions and the favicon. One `opsbot dev` and one Debian Chromium for the
module; each test opens its own tab. Messages are posted through the stand-in's Web API, as the bot would."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.conftest import free_port

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
BOT_TOKEN = "Bearer xoxb-playground"


@dataclass
class Playground:
    url: str
    browser: Browser
    http: aiohttp.ClientSession

    async def api(self, method: str, **args: Any) -> dict[str, Any]:
        """A Web API call as the bot makes it."""
        async with self.http.post(f"{self.url}api/{method}", json=args, headers={"Authorization": BOT_TOKEN}) as response:
            answer: dict[str, Any] = await response.json()
        assert answer["ok"], answer
        return answer

    async def channel(self, name: str | None = None) -> tuple[str, str]:
        """A fresh public channel (id, name), so each test reads only its own messages."""
        name = name or f"t-{uuid.uuid4().hex[:8]}"
        created = await self.api("conversations.create", name=name)
        return created["channel"]["id"], name

    async def open(self, channel: str | None = None, *, person: str = "U0ALICE") -> Page:
        page = await self.browser.new_page(viewport={"width": 1300, "height": 900})
        page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        await page.goto(self.url)
        await as_person(page, person)
        if channel:
            await page.locator("#channels li", has_text=channel).first.click()
            await expect(page.locator("#channel-name")).to_contain_text(channel, timeout=10_000)
        return page


async def as_person(page: Page, person: str) -> None:
    """Choose who the page acts as, and wait until the page shows what that person sees."""
    await expect(page.locator("#channels li").first).to_be_visible(timeout=10_000)
    await page.select_option("#me", person)
    await page.wait_for_function("(person) => state.view && state.view.me === person", arg=person)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def playground(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Playground]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is installed by scripts/test"
    home = tmp_path_factory.mktemp("playground")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "dev", "--port", str(port), cwd=home,
                                                env={**os.environ, "OPSBOT_DEV_DATA": str(home / "data"),
                                                     "PYTHONPATH": str(ROOT)},
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    url = ""
    while not url:  # the line that names the page's address
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()  # type: ignore[union-attr]
        assert line, (await proc.stderr.read()).decode()[-2000:]  # type: ignore[union-attr]
        url = next((word for word in line.split() if word.startswith("http://")), "")
    try:
        async with async_playwright() as playwright, aiohttp.ClientSession() as http:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                yield Playground(url.rstrip("/") + "/", browser, http)
            finally:
                await browser.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)


async def send(page: Page, line: str) -> None:
    await page.fill("#line", line)
    await page.press("#line", "Enter")


async def test_emoji_shortcodes_show_as_emoji_and_unknown_ones_stay_text(playground: Playground) -> None:
    page = await playground.open()
    await send(page, "/incident list")
    answer = page.locator(".message", has_text="No open incidents").last
    await expect(answer).to_contain_text("No open incidents. ☀️", timeout=10_000)
    channel, name = await playground.channel()
    await playground.api("chat.postMessage", channel=channel, text=":white_check_mark: done, :warning: :no_such_emoji: `:x:`")
    await page.locator("#channels li", has_text=name).click()
    body = page.locator(".message .text").last
    await expect(body).to_contain_text("✅ done, ⚠️ :no_such_emoji: :x:")
    await expect(body.locator("code")).to_have_text(":x:")  # nothing is formatted inside code, emoji neither
    await page.close()


async def test_nothing_is_formatted_inside_code_spans_and_blocks(playground: Playground) -> None:
    page = await playground.open()
    await send(page, "/ops schedule")
    await expect(page.locator("code", has_text="0 9 * * *").first).to_be_visible(timeout=10_000)
    channel, name = await playground.channel()
    await playground.api("chat.postMessage", channel=channel, text="*bold* and `0 9 * * *` and ```run _this_ *now*```")
    await page.locator("#channels li", has_text=name).click()
    body = page.locator(".message .text").last
    await expect(body.locator("code")).to_have_text("0 9 * * *")
    await expect(body.locator("pre")).to_have_text("run _this_ *now*")
    await expect(body.locator("b")).to_have_text(["bold"])
    assert await body.locator("i").count() == 0
    await page.close()


async def test_a_reply_sits_in_its_thread_under_the_parent(playground: Playground) -> None:
    channel, name = await playground.channel()
    parent = (await playground.api("chat.postMessage", channel=channel, text="deploy started"))["ts"]
    await playground.api("chat.postMessage", channel=channel, text="step one done", thread_ts=parent)
    await playground.api("chat.postMessage", channel=channel, text="step two done", thread_ts=parent)
    await playground.api("chat.postMessage", channel=channel, text="all steps done", thread_ts=parent, reply_broadcast=True)
    page = await playground.open(name)
    messages = page.locator("#messages > .message")
    await expect(messages).to_have_count(2)  # the parent, and the reply also sent to the channel
    toggle = messages.first.locator(".thread-toggle")
    await expect(toggle).to_have_text("3 replies")
    await expect(page.get_by_text("step one done")).to_be_hidden()
    await toggle.click()
    await expect(messages.first.locator(".replies .message")).to_have_count(3)
    await expect(messages.first.locator(".replies")).to_contain_text("step two done")

    # The bot answers an @-mention in a thread under it.
    await send(page, "@opsbot are you there?")
    said = page.locator("#messages > .message", has_text="are you there?")
    await expect(said.locator(".thread-toggle")).to_have_text("1 reply", timeout=10_000)
    assert await messages.count() == 3
    await page.close()


async def test_dates_follow_slacks_format_tokens_in_the_readers_time_zone(playground: Playground) -> None:
    channel, name = await playground.channel()
    feb = 1392734382  # 2014-02-18 14:39:42 UTC: 15:39:42 in Paris (Alice), 09:39:42 in New York (Bob)
    now = int(time.time())
    tokens = "{date_num} · {date} · {date_short} · {date_long} · {time} · {time_secs} · {ago}"
    await playground.api("chat.postMessage", channel=channel, text=f"all: <!date^{feb}^{tokens}|fallback>")
    await playground.api("chat.postMessage", channel=channel, text=f"pretty: <!date^{now}^{{date_short_pretty}} at {{time}}|x> "
                         f"<!date^{now - 86400}^was {{date_pretty}}|x> <!date^{feb}^{{date_long_pretty}}|x>")
    await playground.api("chat.postMessage", channel=channel,
                         text=f"bad: <!date^soon^{{date}}|the fallback> <!date^{feb}^{{nope}}|kept>")
    page = await playground.open(name)
    await expect(page.locator(".message", has_text="all:")).to_contain_text(
        "all: 2014-02-18 · February 18th, 2014 · Feb 18, 2014 · Tuesday, February 18th, 2014 · 3:39 PM · 3:39:42 PM · ")
    await expect(page.locator(".message", has_text="all:")).to_contain_text(" years ago")
    pretty = page.locator(".message", has_text="pretty:")
    await expect(pretty).to_contain_text("pretty: Today at ")
    await expect(pretty).to_contain_text("was yesterday Tuesday, February 18th, 2014")
    await expect(page.locator(".message", has_text="bad:")).to_contain_text("bad: the fallback kept")
    await page.select_option("#me", "U0BOB")
    await expect(page.locator(".message", has_text="all:")).to_contain_text("· 9:39 AM · 9:39:42 AM ·")
    await page.close()


async def test_an_uploaded_markdown_file_shows_its_text_as_it_is(playground: Playground) -> None:
    channel, name = await playground.channel()
    content = b"# Post-mortem\n\n| When | What |\n|---|---|\n| 10:00 | **paged** |\n"
    ticket = await playground.api("files.getUploadURLExternal", filename="INC-9-postmortem.md", length=len(content))
    async with playground.http.post(ticket["upload_url"], data=content) as response:
        assert response.status == 200
    entries = [{"id": ticket["file_id"], "title": "Post-mortem INC-9"}]
    await playground.api("files.completeUploadExternal", files=json.dumps(entries), channel_id=channel,
                         initial_comment="📝 the draft")
    page = await playground.open(name)
    card = page.locator(".message .file")
    await expect(card.locator(".file-name")).to_contain_text("Post-mortem INC-9")
    await expect(card.locator("pre")).to_have_text(content.decode().rstrip("\n") + "\n")
    assert await card.locator("table, h1, h2, b:has-text('paged')").count() == 0
    await page.close()


async def test_long_unbroken_names_and_titles_stay_inside_the_page(playground: Playground) -> None:
    word = "x" * 70
    channel, name = await playground.channel(f"a-very-long-channel-name-{word}"[:80])
    await playground.api("chat.postMessage", channel=channel, text=word * 3, blocks=[
        {"type": "header", "text": {"type": "plain_text", "text": "🔴 INC-1 · " + word * 2}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Title* " + word * 4},
         "fields": [{"type": "mrkdwn", "text": word * 2}, {"type": "mrkdwn", "text": "short"}]}])
    page = await playground.open(name[:30])
    await expect(page.locator(".message .header")).to_be_visible()
    widths = await page.evaluate("""() => [document.documentElement, ...['sidebar', 'messages', 'channel-head']
        .map((id) => document.getElementById(id))].map((e) => e.scrollWidth - e.clientWidth)""")
    assert widths == [0, 0, 0, 0], "page, sidebar, messages, channel header overflow by " + str(widths)
    await page.close()


async def test_new_messages_below_get_a_pill_and_a_reader_at_the_bottom_follows_them(playground: Playground) -> None:
    channel, name = await playground.channel()
    for n in range(40):
        await playground.api("chat.postMessage", channel=channel, text=f"line {n}")
    page = await playground.open(name)
    last = page.locator(".message", has_text="line 39")
    await expect(last).to_be_in_viewport()  # a channel opens at its newest message
    await page.eval_on_selector("#messages", "box => { box.scrollTop = 0; }")
    await playground.api("chat.postMessage", channel=channel, text="Post-mortem is ready")
    pill = page.locator("#new-below")
    await expect(pill).to_be_visible(timeout=10_000)
    await expect(page.locator(".message", has_text="line 0")).to_be_in_viewport()  # the reader's place is kept
    await expect(page.locator(".message", has_text="Post-mortem is ready")).not_to_be_in_viewport()
    await pill.click()
    await expect(page.locator(".message", has_text="Post-mortem is ready")).to_be_in_viewport()
    await expect(pill).to_be_hidden()
    await playground.api("chat.postMessage", channel=channel, text="and one more")
    await expect(page.locator(".message", has_text="and one more")).to_be_in_viewport(timeout=10_000)
    await expect(pill).to_be_hidden()
    await page.close()


async def test_a_modal_left_open_does_not_come_back_after_a_reload(playground: Playground) -> None:
    page = await playground.open(person="U0CAROL")
    await send(page, "/incident declare")
    await expect(page.locator("#modal .dialog")).to_be_visible(timeout=10_000)
    other = await playground.open(person="U0CAROL")  # the same person in another tab: the form is not there
    await expect(other.locator("#modal")).to_be_hidden()
    left = await page.evaluate("screenId")
    await page.reload()
    await as_person(page, "U0CAROL")
    await expect(page.locator("#modal")).to_be_hidden()
    # The reload closed the form where the stand-in keeps it, not only on the page.
    async with playground.http.get(f"{playground.url}ui/state", params={"user": "U0CAROL", "screen": left}) as response:
        assert (await response.json())["modal"] is None
    await page.close()
    await other.close()


async def test_the_composer_completes_every_subcommand(playground: Playground) -> None:
    page = await playground.open()
    options = await page.eval_on_selector_all("#completion option", "options => options.map((o) => o.value)")
    wanted = ("/ops run", "/ops runbooks", "/ops digest", "/ops schedule", "/ops backups", "/incident reopen", "/incident help")
    for line in wanted:
        assert line in options
    await page.close()


async def test_typing_at_a_name_mentions_that_person(playground: Playground) -> None:
    page = await playground.open()
    await send(page, "/incident declare P3 mention check")
    await page.locator("#channels li", has_text="mention-check").click()
    # Typed before the page has switched, the lines below would go to the channel it showed before, where
    # `/incident role` is refused: wait for the switch first.
    await expect(page.locator("#channel-name")).to_contain_text("mention-check", timeout=10_000)
    await send(page, "@Bob can you look? mail alice@example.com")
    said = page.locator(".message", has_text="can you look?")
    await expect(said.locator(".mention")).to_have_text("@Bob Smith", timeout=10_000)
    await expect(said).to_contain_text("alice@example.com")
    await send(page, "/incident role @bob commander")  # /incident is should_escape: true in the manifest
    header = page.locator(".message", has_text="mention check").first
    await expect(header).to_contain_text("@Bob Smith", timeout=10_000)
    await page.close()


async def test_the_page_asks_for_nothing_that_is_not_there(playground: Playground) -> None:
    page = await playground.browser.new_page()
    missing: list[str] = []
    page.on("response", lambda response: missing.append(response.url) if response.status >= 400 else None)
    await page.goto(playground.url)
    await expect(page.locator("#channels li").first).to_be_visible(timeout=10_000)
    icon = await page.evaluate("() => document.querySelector('link[rel=icon]').href")
    async with playground.http.get(icon) as response:
        assert response.status == 200 and response.content_type == "image/svg+xml"
    async with playground.http.get(playground.url + "favicon.ico") as response:
        assert response.status == 200
    assert missing == []
    await page.close()
