"""The composition root: builds the Context, the Bolt app and the aiohttp server, and runs them.

The Slack listeners are plugged in by a `register(app, ctx)` function: the `opsbot.listeners` entry point
(handlers/ declares it in pyproject.toml), so the core never imports handlers/.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from bot.catalog import Catalog
from bot.chat import web_client
from bot.clock import Clock, SystemClock
from bot.context import Context
from bot.errors import ConfigError
from bot.scheduling.jobs import catalog_jobs
from bot.scheduling.scheduler import Scheduler, chores
from bot.settings import Settings
from bot.store import create_store

log = logging.getLogger(__name__)

Register = Callable[[AsyncApp, Context], None]
CONTEXT_KEY = web.AppKey("context", Context)
SOCKET_KEY = web.AppKey("socket_mode", AsyncSocketModeHandler)


def build_context(
    settings: Settings, catalog: Catalog, *, clock: Clock | None = None, environ: Mapping[str, str] | None = None
) -> Context:
    extra = {"environ": environ} if environ is not None else {}
    return Context(
        settings=settings,
        catalog=catalog,
        store=create_store(settings.database_url),
        slack=web_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url),
        clock=clock or SystemClock(),
        **extra,
    )


def installed_listeners() -> list[Register]:
    found = [entry.load() for entry in entry_points(group="opsbot.listeners")]
    if not found:
        raise ConfigError("no Slack listeners are installed (run `pip install -e .` in the opsbot checkout)")
    return found


class _QuietTokenWarning(logging.Filter):
    # Bolt reads SLACK_BOT_TOKEN from the environment itself and warns that it is unused when a client is
    # given; the client carries that same token, so the warning would only mislead an operator.
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("As you gave `client` as well")


def build_bolt_app(ctx: Context, listeners: list[Register]) -> AsyncApp:
    bolt_log = logging.getLogger("slack_bolt")
    if not any(isinstance(f, _QuietTokenWarning) for f in bolt_log.filters):
        bolt_log.addFilter(_QuietTokenWarning())
    bolt = AsyncApp(
        client=ctx.slack,
        signing_secret=ctx.settings.slack_signing_secret.get_secret_value(),
        # Answer Slack at ack() and keep working after: Slack wants an answer within 3 seconds.
        process_before_response=False,
        logger=bolt_log,
    )
    for register in listeners:
        register(bolt, ctx)
    return bolt


def build_web_app(ctx: Context, bolt: AsyncApp) -> web.Application:
    app = web.Application()
    app[CONTEXT_KEY] = ctx

    async def slack_events(request: web.Request) -> web.Response:
        # Bolt verifies the signature and its timestamp (401 when missing, wrong or older than 5 minutes).
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    async def healthz(request: web.Request) -> web.Response:
        report = await ctx.readiness()
        healthy = all(value == "ok" for value in report.values())
        body = {"status": "ok" if healthy else "unavailable", **report}
        return web.json_response(body, status=200 if healthy else 503, dumps=json.dumps)

    if not ctx.settings.socket_mode:
        app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/healthz", healthz)

    async def startup(app: web.Application) -> None:
        await ctx.start()
        try:
            await chores(ctx)  # recover what a previous run of this replica left behind before serving
            scheduler = Scheduler(ctx, catalog_jobs(ctx.catalog))
            ctx.tasks.run_forever(scheduler.run_forever(), name="scheduler")
            if ctx.settings.slack_app_token is not None:
                handler = AsyncSocketModeHandler(
                    bolt, app_token=ctx.settings.slack_app_token.get_secret_value(), web_client=ctx.slack
                )
                try:
                    await handler.connect_async()
                except Exception as exc:
                    raise ConfigError(
                        f"Socket Mode could not connect to Slack ({type(exc).__name__}): check SLACK_APP_TOKEN "
                        f"(an xapp- token with connections:write) and SLACK_API_URL ({ctx.settings.slack_api_url})"
                    ) from None
                app[SOCKET_KEY] = handler
        except BaseException:
            await ctx.stop()  # close what start() opened: pools, sessions, Redis
            raise

    async def cleanup(app: web.Application) -> None:
        handler = app.get(SOCKET_KEY)
        if handler is not None:
            await handler.close_async()
        await ctx.stop()

    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    return app


async def serve(settings: Settings, catalog: Catalog, *, ready: Callable[[str], None] = print) -> None:
    """Run until SIGINT/SIGTERM."""
    ctx = build_context(settings, catalog)
    app = build_web_app(ctx, build_bolt_app(ctx, installed_listeners()))
    runner = web.AppRunner(app, handle_signals=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await runner.setup()
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        mode = "Socket Mode" if settings.socket_mode else "HTTP mode, Slack posts to /slack/events"
        ready(
            f"opsbot is up on http://{settings.host}:{settings.port} ({mode}; "
            f"{len(catalog.services)} services, store {_store_kind(settings)})"
        )
        await stop.wait()
    finally:
        await runner.cleanup()


def _store_kind(settings: Settings) -> str:
    return "PostgreSQL" if settings.is_postgres else f"SQLite at {settings.sqlite_path}"
