"""The playground's alerts: a demo service's "fire an alert" switch posts Alertmanager's webhook to the real bot,
whose one message per group offers Silence (answered by the playground's Alertmanager stand-in) and resolves in
place. Through the page's own endpoints, as the browser uses them."""

from __future__ import annotations

from pathlib import Path

from tests.test_playground_demo import has, playground, text_of


async def test_firing_silencing_and_resolving_a_demo_services_alert(tmp_path: Path) -> None:
    async with playground(tmp_path / "data") as page:
        assert (await page.state())["alerts"] == {"storefront": False, "payments": False, "search": False}
        await page.act("alert", service="payments", firing=True)
        assert (await page.state())["alerts"]["payments"] is True
        message = await page.wait_for(has("FIRING", "DemoServiceDown", "payments is not answering"))
        await page.press(message, "alert.silence.1h")
        silenced = await page.wait_for(has("Silenced by <@U0ALICE>"))
        assert "alert.unsilence" in text_of(silenced)
        await page.act("alert", service="payments", firing=False)
        resolved = await page.wait_for(has("RESOLVED", "DemoServiceDown"))
        assert resolved["ts"] == message["ts"]  # the same message, updated in place
        firing = [m for m in await page.messages() if "DemoServiceDown" in text_of(m)]
        assert len(firing) == 1
