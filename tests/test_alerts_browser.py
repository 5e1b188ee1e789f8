"""The playground's alert switch in a real browser (Debian's Chromium, Playwright): a new user fires a demo
service's alert, sees its one message with buttons, silences it until a time picked in a form (a past one is refused
under the picker) and declares an incident from it.
Set OPSBOT_ALERT_SCREENSHOT=docs/alert-message.png to regenerate the README's picture of the message."""

from __future__ import annotations

import os

from playwright.async_api import Page, expect

from tests.test_browser import page  # the fixture: the playground in Chromium

__all__ = ["page"]


async def test_an_alert_fired_from_the_page_is_silenced_and_becomes_an_incident(page: Page) -> None:
    await page.click("#demo li[data-alert=payments]")
    alert = page.locator(".message", has_text="DemoServiceDown").last
    await expect(alert).to_contain_text("FIRING", timeout=10_000)
    await expect(alert).to_contain_text("payments is not answering its health check")
    await alert.get_by_role("button", name="Silence until…").click()  # a form with a date-time picker
    form = page.locator("#modal form.dialog")
    picker = form.locator("input[type=datetime-local]")
    await expect(picker).to_be_visible(timeout=10_000)
    suggested = await picker.input_value()  # eight hours ahead, in the browser's time zone
    await picker.fill("2020-01-01T09:00")
    await form.locator("textarea").fill("failover drill")
    await form.get_by_role("button", name="Silence").click()
    await expect(form.locator(".field-error")).to_contain_text("That time has passed", timeout=10_000)
    await picker.fill(suggested)
    await form.get_by_role("button", name="Silence").click()
    await expect(alert).to_contain_text("Silenced by", timeout=10_000)  # the playground's Alertmanager answered
    if shot := os.environ.get("OPSBOT_ALERT_SCREENSHOT"):  # docs/alert-message.png, the README's
        await alert.screenshot(path=shot)
    await alert.get_by_role("button", name="Declare incident…").click()
    # The form's own button, once it is open: "Declare" alone would also match the message's "Declare incident…"
    dialog = page.locator("#modal .dialog")
    await expect(dialog).to_be_visible(timeout=10_000)
    await dialog.get_by_role("button", name="Declare", exact=True).click()
    await expect(alert).to_contain_text("declared from this alert", timeout=10_000)
    await expect(page.locator("#channels li", has_text="inc-")).to_be_visible(timeout=10_000)
    await page.click("#demo li[data-alert=payments]")  # resolve it
    await expect(alert).to_contain_text("RESOLVED", timeout=10_000)
