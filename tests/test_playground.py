"""`opsbot dev` as a new user meets it: one command, one URL, and the page's API doing what a person does.
(The browser itself is driven in the browser test.)"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp

from playground.dev import demo_catalog
from bot.catalog import parse_catalog
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_the_demo_catalog_is_valid(tmp_path: Path) -> None:
    catalog = parse_catalog(demo_catalog("http://127.0.0.1:1", tmp_path), "examples/demo.yml")
    assert {"storefront", "payments", "media", "search"} <= set(catalog.services)


async def test_opsbot_dev_serves_a_page_where_ops_health_and_a_button_work(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "OPSBOT_DEV_DATA": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "dev", "--port", str(port), cwd=tmp_path, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()  # type: ignore[union-attr]
        assert line.strip() == f"opsbot playground: open http://127.0.0.1:{port}/"
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/") as page:
                assert page.status == 200 and "opsbot" in await page.text()

            async def act(what: str, **data: object) -> None:
                async with http.post(f"{base}/ui/{what}", json={"user": "U0ALICE", "channel": "C0OPS", **data}) as response:
                    assert response.status == 200, await response.text()

            async def seen(user: str = "U0ALICE") -> dict:
                async with http.get(f"{base}/ui/state", params={"user": user}) as response:
                    return await response.json()

            await act("demo", service="payments", healthy=False)
            await act("command", text="/ops health")
            for _ in range(50):
                messages = (await seen())["messages"]["C0OPS"]
                report = [m for m in messages if not m.get("ephemeral") and m["blocks"]]
                if report:
                    break
                await asyncio.sleep(0.1)
            assert "1 of 4 services failing" in str(report[0]["blocks"])
            assert any(m.get("ephemeral") for m in messages), "Alice sees her own note"
            assert not any(m.get("ephemeral") for m in (await seen("U0BOB"))["messages"]["C0OPS"]), "Bob does not"

            rerun = next(e for b in report[0]["blocks"] if b["type"] == "actions" for e in b["elements"])
            await act("demo", service="payments", healthy=True)
            await act("press", ts=report[0]["ts"], action=rerun)
            for _ in range(50):
                again = [m for m in (await seen())["messages"]["C0OPS"] if m["ts"] == report[0]["ts"]][0]
                if "All 4 services healthy" in str(again["blocks"]):
                    break
                await asyncio.sleep(0.1)
            assert "All 4 services healthy" in str(again["blocks"]), "the same message, updated in place"
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
    assert proc.returncode == 0, (await proc.stderr.read()).decode()[-2000:]  # type: ignore[union-attr]
