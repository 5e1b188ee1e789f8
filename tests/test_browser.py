"""The playground in a real browser: Debian's Chromium driven by Playwright against `opsbot dev`, the way a
new user tries opsbot. Set OPSBOT_SCREENSHOT=docs/playground.png to regenerate the README's screenshot."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright, expect

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Page]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is installed by scripts/test"
    port = free_port()
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "dev", "--port", str(port), cwd=tmp_path,
                                                env={**os.environ, "OPSBOT_DEV_DATA": str(tmp_path / "data"),
                                                     "PYTHONPATH": str(ROOT)},
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()  # type: ignore[union-attr]
    url = line.rsplit(" ", 1)[-1].strip()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        tab = await browser.new_page(viewport={"width": 1300, "height": 900})
        tab.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))  # confirm dialogs: yes
        await tab.goto(url)
        try:
            yield tab
        finally:
            await browser.close()
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 20)


async def send(page: Page, line: str) -> None:
    await page.fill("#line", line)
    await page.press("#line", "Enter")


async def test_a_broken_service_is_restarted_once_a_second_person_approves(page: Page) -> None:
    await send(page, "/ops health")
    report = page.locator(".message", has_text="4 services healthy").last
    await expect(report).to_be_visible(timeout=10_000)
    await expect(report).to_contain_text("✅ storefront")

    await page.click("#demo li[data-service=payments]")  # break the payments demo service
    await report.get_by_role("button", name="Re-run").click()
    failing = page.locator(".message", has_text="1 of 4 services failing")
    await expect(failing).to_be_visible(timeout=10_000)
    await expect(failing).to_contain_text("HTTP 503 (expected 200)")
    assert await page.locator(".message", has_text="4 services healthy").count() == 0, "the same message was updated"

    await failing.get_by_role("button", name="Restart").click()
    plan = page.locator(".message.ephemeral", has_text="Plan: restart payments")
    await expect(plan).to_be_visible(timeout=10_000)
    await expect(plan).to_contain_text("demo app payments")
    await plan.get_by_role("button", name="Request approval").click()  # the reason: failing in a health report
    request = page.locator(".message", has_text="Approval needed: restart payments")
    await expect(request).to_be_visible(timeout=10_000)
    await request.get_by_role("button", name="Approve").click()
    await expect(page.locator(".message.ephemeral", has_text="a second person has to approve it")).to_be_visible(timeout=10_000)

    await page.select_option("#me", "U0BOB")
    await page.locator(".message", has_text="Approval needed: restart payments").get_by_role("button", name="Approve").click()
    done = page.locator(".message", has_text="Done: restart payments")
    await expect(done).to_be_visible(timeout=15_000)
    await expect(done).to_contain_text("Restarted demo app payments")
    await expect(page.locator("#demo li[data-service=payments]")).to_contain_text("✅")

    await send(page, "/ops health payments")
    green = page.locator(".message", has_text="All 1 service healthy")
    await expect(green).to_be_visible(timeout=10_000)
    shot = os.environ.get("OPSBOT_SCREENSHOT")
    if shot:  # tall enough for the red report, the approved restart and the green one; no hover highlight
        await page.set_viewport_size({"width": 1300, "height": 1240})
        await page.mouse.move(5, 895)
        await expect(green).to_be_visible()
        await page.screenshot(path=shot)


async def test_an_incident_from_declaration_to_post_mortem(page: Page) -> None:
    await send(page, "/incident declare P2 checkout is slow")
    channel = page.locator("#channels li", has_text="inc-")
    await expect(channel).to_be_visible(timeout=10_000)
    await channel.click()
    await expect(page.locator("#channel-name")).to_contain_text("inc-", timeout=10_000)
    header = page.locator(".message", has_text="checkout is slow").first
    await expect(header).to_contain_text("P2 High", timeout=10_000)
    await header.get_by_role("button", name="Acknowledge").click()
    await expect(page.locator(".message.ephemeral", has_text="Acknowledged.")).to_be_visible(timeout=10_000)

    await send(page, "the db pool is exhausted")
    said = page.locator(".message", has_text="the db pool is exhausted")
    await expect(said).to_be_visible(timeout=10_000)
    await said.hover()
    await said.locator(".tools button").click()  # 📌

    await send(page, "/incident resolve raised the pool size")
    await expect(page.locator(".message", has_text="Resolved").first).to_be_visible(timeout=10_000)
    await send(page, "/incident postmortem")
    document = page.locator(".file", has_text="Post-mortem")
    await expect(document).to_be_visible(timeout=10_000)
    await expect(document).to_contain_text("the db pool is exhausted")
    await expect(document).to_contain_text("Time to acknowledge")
    await expect(document).to_contain_text("Acknowledged")


async def test_the_declare_form_shows_what_to_fix_and_stays_open(page: Page) -> None:
    await send(page, "/incident declare")
    dialog = page.locator("#modal .dialog")
    await expect(dialog).to_be_visible(timeout=10_000)
    await dialog.locator("[data-block=title]").fill("   ")
    await dialog.locator("[data-block=severity]").select_option("P3")
    await dialog.get_by_role("button", name="Declare").click()
    await expect(dialog.locator(".field-error")).to_contain_text("Give the incident a title")
    await dialog.locator("[data-block=title]").fill("search is slow")
    await dialog.get_by_role("button", name="Declare").click()
    await expect(page.locator("#channels li", has_text="search-is-slow")).to_be_visible(timeout=10_000)


async def test_a_pin_can_be_taken_back_and_the_post_mortem_reads_as_a_document(page: Page) -> None:
    await send(page, "/incident declare P3 cache misses")
    await page.locator("#channels li", has_text="cache-misses").click()
    await expect(page.locator("#channel-name")).to_contain_text("cache-misses", timeout=10_000)
    await send(page, "hit ratio at 12%")
    said = page.locator(".message", has_text="hit ratio at 12%")
    await expect(said).to_be_visible(timeout=10_000)
    await said.hover()
    await said.locator(".tools button").click()
    chip = said.locator(".reaction.mine")
    await expect(chip).to_contain_text("📌 1", timeout=10_000)
    await chip.click()  # take the pin back: off the timeline again
    await expect(said.locator(".reaction")).to_have_count(0, timeout=10_000)
    await send(page, "/incident postmortem")
    document = page.locator(".file pre")  # Slack shows a Markdown file as its text, not rendered
    await expect(document).to_contain_text("# Post-mortem", timeout=10_000)
    await expect(document).to_contain_text("| **Severity** |")
    await expect(document).not_to_contain_text("hit ratio at 12%")
