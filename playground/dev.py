"""`opsbot dev`: the real bot, the Slack stand-in with its page, a demo catalog and the demo services it
names, in one process bound to 127.0.0.1. Nothing here is needed to run opsbot against a real Slack."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from collections.abc import Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from bot.app import build_bolt_app, build_context, build_web_app, installed_listeners
from bot.catalog import parse_catalog
from bot.settings import Settings
from playground.session import Session
from playground.slack_api import FakeSlack
from playground.ui import DemoSwitches, add_routes

HOST = "127.0.0.1"  # the playground acts as everyone in a workspace: never reachable from elsewhere


def demo_catalog(demo_url: str, demo_dir: Path, source: Path | None = None) -> str:
    text = source.read_text(encoding="utf-8") if source else (Path(__file__).resolve().parent.parent / "examples" / "demo.yml").read_text(encoding="utf-8")
    return text.replace("${DEMO_URL}", demo_url).replace("${DEMO_DIR}", str(demo_dir))


async def demo_services(demo: DemoSwitches) -> tuple[web.AppRunner, str]:
    async def health(request: web.Request) -> web.Response:
        service = request.match_info["service"]
        if demo.healthy.get(service, True):
            return web.Response(text='{"status": "ok"}', content_type="application/json")
        return web.Response(status=503, text='{"status": "down"}', content_type="application/json")

    app = web.Application()
    app.router.add_get("/{service}/health", health)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    return runner, f"http://{HOST}:{runner.addresses[0][1]}"


async def run(port: int, data_dir: Path, *, ready: Callable[[str], None] = print, stop: asyncio.Event | None = None) -> None:
    demo = DemoSwitches()
    services, demo_url = await demo_services(demo)
    demo_dir = data_dir / "demo"
    for folder in ("media", "search-index"):
        (demo_dir / folder).mkdir(parents=True, exist_ok=True)
    (demo_dir / "media" / "logo.txt").write_text("opsbot demo media\n")
    (demo_dir / "search-index" / "index.txt").write_text("demo index\n")

    slack = FakeSlack()
    secret = secrets.token_hex(16)
    catalog = parse_catalog(demo_catalog(demo_url, demo_dir), "examples/demo.yml")
    http = aiohttp.ClientSession()
    session = Session(slack, "", secret, http)
    completion = {"/ops": ["health", "restart", "rollback", "backup", "backups", "restore", "history", "approvals", "help"],
                  "/incident": ["declare", "list", "ack", "status", "severity", "role", "note", "action", "actions",
                                "resolve", "reopen", "timeline", "postmortem", "help"],
                  "services": catalog.service_names}
    await slack.start(HOST, port, routes=lambda app: add_routes(app, slack, session, demo, completion))

    settings = Settings(slack_bot_token="xoxb-playground", slack_signing_secret=secret, slack_api_url=slack.api_url,
                        database_url=f"sqlite:///{data_dir / 'dev.db'}", opsbot_config=Path("examples/demo.yml"), host=HOST)
    ctx = build_context(settings, catalog)
    bot = web.AppRunner(build_web_app(ctx, build_bolt_app(ctx, installed_listeners())), shutdown_timeout=0.5)
    await bot.setup()
    site = web.TCPSite(bot, HOST, 0)
    await site.start()
    session.bot_url = f"http://{HOST}:{bot.addresses[0][1]}"  # known only once the bot listens
    ready(f"opsbot playground: open http://{HOST}:{slack.port}/")
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await bot.cleanup()
        await slack.stop()
        await services.cleanup()
        await http.close()


def main(port: int) -> int:
    data_dir = Path(os.environ.get("OPSBOT_DEV_DATA", "data")).resolve()
    asyncio.run(run(port, data_dir, ready=lambda line: print(line, flush=True)))
    return 0

