"""`opsbot dev` as a new user meets it: one command, one URL, and the page's API doing what a person does.
(The browser itself is driven in the browser test.)"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from bot.catalog_loading import parse_catalog
from playground.dev import demo_catalog
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
            assert not any(m.get("ephemeral") and "Running" in str(m.get("text")) for m in messages), \
                "Alice's ⏳ note is replaced by the report, as in Slack"
            assert not any(m.get("ephemeral") for m in (await seen("U0BOB"))["messages"]["C0OPS"]), "Bob does not"

            rerun = next(e for b in report[0]["blocks"] if b["type"] == "actions" for e in b["elements"])
            await act("demo", service="payments", healthy=True)
            await act("press", ts=report[0]["ts"], action=rerun)
            for _ in range(50):
                again = next(m for m in (await seen())["messages"]["C0OPS"] if m["ts"] == report[0]["ts"])
                if "All 4 services healthy" in str(again["blocks"]):
                    break
                await asyncio.sleep(0.1)
            assert "All 4 services healthy" in str(again["blocks"]), "the same message, updated in place"
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
    assert proc.returncode == 0, (await proc.stderr.read()).decode()[-2000:]  # type: ignore[union-attr]


def _dev(*args: str, data: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "OPSBOT_DEV_DATA": str(data), "PYTHONPATH": str(ROOT), "OPSBOT_CONFIG": "", **(env or {})}
    return subprocess.run([sys.executable, "-m", "bot", "dev", *args], capture_output=True, text=True, env=environ,
                          cwd=data.parent, timeout=60)


def test_opsbot_dev_with_its_port_taken_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        done = _dev("--port", str(port), data=tmp_path / "data")
    assert done.returncode == 1
    assert done.stderr == f"opsbot: port {port} is in use; try `opsbot dev --port N`\n"
    assert done.stdout == ""


def test_opsbot_dev_with_a_port_that_is_no_port_says_which_are(tmp_path: Path) -> None:
    done = _dev("--port", "99999", data=tmp_path / "data")
    assert done.returncode == 2 and done.stderr.splitlines()[-1] == (
        "opsbot dev: error: argument --port: '99999' is not a port number (1-65535)")


def test_opsbot_dev_with_a_catalog_with_errors_says_what_check_config_says(tmp_path: Path) -> None:
    mine = tmp_path / "my.yml"
    mine.write_text("services:\n  billing:\n    environment: production\n    checks: [{type: http, url: nope}]\n")
    done = _dev("--config", str(mine), data=tmp_path / "data")
    checked = subprocess.run([sys.executable, "-m", "bot", "check-config", str(mine)], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert (done.returncode, done.stdout) == (checked.returncode, checked.stdout)
    assert checked.returncode == 1 and "services.billing.checks[0].url" in done.stdout


async def _team_page(tmp_path: Path, args: list[str], env: dict[str, str]) -> dict:
    port = free_port()
    environ = {**os.environ, "OPSBOT_DEV_DATA": str(tmp_path / "data"), "PYTHONPATH": str(ROOT), **env}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "dev", "--port", str(port), *args,
                                                cwd=tmp_path, env=environ, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()  # type: ignore[union-attr]
        assert line.startswith("opsbot playground: open"), (await proc.stderr.read()).decode()[-2000:]  # type: ignore[union-attr]
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{port}"
            async with http.post(f"{base}/ui/command",
                                 json={"user": "U0ALICE", "channel": "C0OPS", "text": "/ops health"}) as response:
                assert response.status == 200
            state: dict = {}
            for _ in range(100):
                async with http.get(f"{base}/ui/state", params={"user": "U0ALICE"}) as response:
                    state = await response.json()
                if any("billing" in str(m.get("blocks")) for m in state["messages"]["C0OPS"] if not m.get("ephemeral")):
                    return state
                await asyncio.sleep(0.1)
            raise AssertionError(f"no health report of billing: {state['messages']['C0OPS']}")
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)


TEAM_CATALOG = """
schedules: {channel: C0TEAMOPS}
services:
  billing:
    environment: production
    checks: [{type: tcp, host: 127.0.0.1, port: 1}]
"""


async def test_opsbot_dev_config_runs_the_teams_own_catalog(tmp_path: Path) -> None:
    mine = tmp_path / "my.yml"
    mine.write_text(TEAM_CATALOG)
    state = await _team_page(tmp_path, ["--config", str(mine)], {"OPSBOT_CONFIG": ""})
    assert state["completion"]["services"] == ["billing"], "the team's services, not the demo's"
    assert state["demo"] == {}, "no demo switches for a catalog that names no demo service"
    assert "C0TEAMOPS" in [c["id"] for c in state["channels"]], "the channels it names are in the sidebar"
    [welcome] = [m for m in state["messages"]["C0OPS"] if m["user"] == "USLACKBOT"]
    assert str(mine) in welcome["text"]


async def test_opsbot_dev_reads_opsbot_config_like_serve_does(tmp_path: Path) -> None:
    mine = tmp_path / "team.yml"
    mine.write_text(TEAM_CATALOG)
    state = await _team_page(tmp_path, [], {"OPSBOT_CONFIG": str(mine)})
    assert state["completion"]["services"] == ["billing"]
