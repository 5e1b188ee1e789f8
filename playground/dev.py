"""`opsbot dev`: the real bot, the Slack stand-in with its page, a demo catalog (or the team's own) and the demo
services it names, in one process bound to 127.0.0.1. Nothing here is needed to run opsbot against a real Slack.

The workspace and the demo apps are kept beside the store in the data folder (`playground.snapshot`), so a
restart goes on where the last run stopped."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import secrets
import signal
from collections.abc import Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from bot.app import build_bolt_app, build_context, build_web_app, installed_listeners
from bot.catalog import Catalog
from bot.catalog_loading import load_catalog, parse_catalog
from bot.clock import SystemClock
from bot.settings import Settings
from handlers.commands import SUBCOMMANDS as OPS_SUBCOMMANDS
from handlers.incidents import USAGE as INCIDENT_USAGE
from playground import snapshot
from playground.alerts import Alerting
from playground.demo_apps import DemoSwitches
from playground.session import Session
from playground.slack_api import FakeSlack
from playground.ui import PEOPLE, add_routes
from playground.workspace import BOT_USER, OPS, new_channel

HOST = "127.0.0.1"  # the playground acts as everyone in a workspace: never reachable from elsewhere
DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo.yml"
DEMO_SERVICES = ["storefront", "payments", "search"]  # what ${DEMO_URL} answers for: the page's break switches
WELCOMER = "USLACKBOT"  # the welcome post is the workspace's, not the bot's

WELCOME_DEMO = """:wave: *Welcome to the opsbot playground.* This page stands in for Slack; the bot answering is the \
real one, acting on demo services that run on this machine. Three things to try:
1. `/ops health`: every demo service's checks, reported here.
2. Break *payments* in the sidebar, run `/ops health` again and press *Restart* on its red line; then switch to \
another person (top left) and approve it.
3. `/ops run deploy-payments version=bad`: a deploy whose health check fails, so the runbook rolls it back by itself."""

WELCOME_OWN = """:wave: *Welcome to the opsbot playground.* This page stands in for Slack; the bot answering is the \
real one, running your catalog ({source}). Try `/ops health` and `/ops help`; the channels your catalog names are \
in the sidebar."""


class PortInUse(Exception):
    """The page cannot listen on its port: taken (another playground, or something else), or not allowed."""

    def __init__(self, port: int, reason: str | None = None) -> None:
        self.port, self.reason = port, reason
        what = f"port {port} is in use" if reason is None else f"cannot listen on port {port}: {reason}"
        super().__init__(f"{what}; try `opsbot dev --port N`")


def demo_catalog(demo_url: str, demo_dir: Path, source: Path | None = None) -> str:
    text = (source or DEMO).read_text(encoding="utf-8")
    return text.replace("${DEMO_URL}", demo_url).replace("${DEMO_DIR}", str(demo_dir))


def catalog_channels(catalog: Catalog) -> list[str]:
    """The channel IDs a catalog posts to, so that a team's own catalog finds them in the stand-in's sidebar."""
    found = [catalog.schedules.channel, catalog.incidents.announce_channel,
             *(channel for digest in catalog.schedules.digests.values() for channel in digest.channels),
             *(service.channel for service in catalog.services.values()),
             *(getattr(step, "channel", None) for runbook in catalog.runbooks.values() for step in runbook.steps)]
    return sorted({channel for channel in found if channel})


async def demo_services(demo: DemoSwitches) -> tuple[web.AppRunner, str]:
    async def health(request: web.Request) -> web.Response:
        status, body = demo.answer(request.match_info["service"])
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_get("/{service}/health", health)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    return runner, f"http://{HOST}:{runner.addresses[0][1]}"


def _demo_files(demo_dir: Path) -> None:
    for folder in ("media", "search-index"):
        (demo_dir / folder).mkdir(parents=True, exist_ok=True)
    (demo_dir / "media" / "logo.txt").write_text("opsbot demo media\n")
    (demo_dir / "search-index" / "index.txt").write_text("demo index\n")


def _shown(path: Path) -> str:
    try:
        return f"{path.relative_to(Path.cwd())}/"
    except ValueError:
        return f"{path}/"


def beginning_line(began: snapshot.Beginning, data_dir: Path) -> str:
    where = _shown(data_dir)
    if began.start is snapshot.Start.KEPT:
        return f"playground: kept the workspace and store from {where} — delete the folder to start fresh"
    if began.start is snapshot.Start.RESET:
        aside = ", ".join(path.name for path in began.set_aside)
        return (f"playground: the store in {where} had no workspace saved beside it, so both start fresh "
                f"(the old files are kept as {aside})")
    return f"playground: a fresh workspace and store in {where}"


def add_channels(slack: FakeSlack, catalog: Catalog) -> None:
    """The channels the catalog names and the workspace lacks (named after their IDs), with everyone in them."""
    for channel in catalog_channels(catalog):
        if channel not in slack.channels:
            slack.channels[channel] = new_channel(channel, channel.lower(), {BOT_USER, *PEOPLE})


async def keep_saving(slack: FakeSlack, demo: DemoSwitches, keeper: snapshot.Keeper, *, settle: float = 0.2) -> None:
    """Save the workspace shortly after each change; the caller saves once more at the end."""
    seen = slack.version
    while True:
        if await slack.changed_since(seen, timeout=30) == seen:
            continue
        await asyncio.sleep(settle)  # one write for a burst of changes
        seen = slack.version
        await asyncio.to_thread(keeper.save, snapshot.dump(slack, demo))  # dumped here, on the loop: consistent


async def run(port: int, data_dir: Path, *, config: Path | None = None, ready: Callable[[str], None] = print,
              stop: asyncio.Event | None = None) -> None:
    """Serve the playground until `stop` (or SIGINT/SIGTERM). Raises PortInUse, and CatalogInvalid for `config`."""
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    demo_dir, clock = data_dir / "demo", SystemClock()
    demo = DemoSwitches(DEMO_SERVICES if config is None else [], clock)
    async with contextlib.AsyncExitStack() as cleanup:  # undone in reverse, also when starting fails half-way
        services, demo_url = await demo_services(demo)
        cleanup.push_async_callback(services.cleanup)
        if config is None:
            catalog = parse_catalog(demo_catalog(demo_url, demo_dir), "examples/demo.yml")
            _demo_files(demo_dir)
        else:
            catalog = load_catalog(config)
        demo.add_apps(catalog)

        slack = FakeSlack()
        secret = secrets.token_hex(16)
        http = aiohttp.ClientSession()
        cleanup.push_async_callback(http.close)
        session = Session(slack, "", secret, http)
        alerting = Alerting(clock, secrets.token_hex(16))
        # The composer offers what the handlers dispatch, read from their own tables.
        completion = {"/ops": list(OPS_SUBCOMMANDS), "/incident": [usage.split()[0] for usage, _ in INCIDENT_USAGE] + ["help"],
                      "services": catalog.service_names}
        cleanup.push_async_callback(slack.stop)

        def routes(app: web.Application) -> None:
            add_routes(app, slack, session, demo, completion, alerting=alerting)
            alerting.add_routes(app)  # Alertmanager's silences API, for the alert message's Silence buttons

        try:
            await slack.start(HOST, port, routes=routes)
        except OSError as exc:
            raise PortInUse(port, None if exc.errno == errno.EADDRINUSE else exc.strerror) from None

        alerting.alertmanager_url = f"http://{HOST}:{slack.port}"  # the stand-in answers Alertmanager's silences API
        began = snapshot.begin(data_dir, slack, demo)  # before the store opens: it may set an orphaned one aside
        add_channels(slack, catalog)
        if began.start is not snapshot.Start.KEPT:  # welcomed once: a kept workspace has its welcome post
            slack.said(OPS, WELCOMER, WELCOME_DEMO if config is None else WELCOME_OWN.format(source=config))
        keeper = snapshot.Keeper(data_dir)
        cleanup.callback(lambda: keeper.save(snapshot.dump(slack, demo)))  # the last state, once the bot has stopped

        settings = Settings(slack_bot_token="xoxb-playground", slack_signing_secret=secret, slack_api_url=slack.api_url,
                            database_url=f"sqlite:///{data_dir / snapshot.STORE}", opsbot_config=config or DEMO, host=HOST,
                            opsbot_alerts_token=alerting.token)
        ctx = build_context(settings, catalog, clock=clock, demo_workloads=demo)
        bot = web.AppRunner(build_web_app(ctx, build_bolt_app(ctx, installed_listeners())), shutdown_timeout=0.5)
        await bot.setup()
        cleanup.push_async_callback(bot.cleanup)
        site = web.TCPSite(bot, HOST, 0)
        await site.start()
        session.bot_url = alerting.bot_url = f"http://{HOST}:{bot.addresses[0][1]}"  # known once the bot listens
        saver = asyncio.create_task(keep_saving(slack, demo, keeper))
        cleanup.callback(saver.cancel)

        ready(f"opsbot playground: open http://{HOST}:{slack.port}/")
        ready(beginning_line(began, data_dir))
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()


def main(port: int, config: Path | None = None) -> int:
    """Raises PortInUse and CatalogInvalid: the CLI says them in its words."""
    data_dir = Path(os.environ.get("OPSBOT_DEV_DATA", "data")).resolve()
    asyncio.run(run(port, data_dir, config=config, ready=lambda line: print(line, flush=True)))
    return 0
