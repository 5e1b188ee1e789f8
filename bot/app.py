"""The composition root: builds the Context, the Bolt app and the aiohttp server, and runs them.

The Slack listeners are plugged in by a `register(app, ctx)` function: the `opsbot.listeners` entry point
(handlers/ declares it in pyproject.toml), so the core never imports handlers/.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import signal
import time
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from aiohttp import web
from slack_bolt.async_app import AsyncApp

from bot import adapters
from bot.alerts.intake import add_alert_routes
from bot.catalog import Catalog
from bot.chat import web_client
from bot.clock import Clock, SystemClock
from bot.context import Context
from bot.errors import ConfigError
from bot.executors.demo import DemoWorkloads
from bot.handover import refuse_while_draining
from bot.log_context import bind_envelope, bind_slack_request
from bot.metrics import MeasuredApp, Metrics
from bot.ops_endpoints import SCHEDULER_KEY, add_ops_routes
from bot.scheduling.jobs import catalog_jobs
from bot.scheduling.scheduler import Scheduler, chores
from bot.settings import Settings
from bot.slack_requests import answer_failure, quiet_bad_http, slack_events
from bot.socket_link import SOCKET_LINK_KEY, SocketLink
from bot.store import create_store
from bot.tracing import NO_TRACER, Tracer

if TYPE_CHECKING:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

log = logging.getLogger(__name__)

Register = Callable[[AsyncApp, Context], None]
CONTEXT_KEY = web.AppKey("context", Context)
SOCKET_KEY: web.AppKey[AsyncSocketModeHandler] = web.AppKey("socket_mode")
# Socket Mode's client (slack_sdk.socket_mode and Bolt's handler, ~0.3 MB) is imported only by a replica that uses it.
SOCKET_MODE = "slack_bolt.adapter.socket_mode.async_handler"


def build_context(
    settings: Settings, catalog: Catalog, *, clock: Clock | None = None, environ: Mapping[str, str] | None = None,
    demo_workloads: DemoWorkloads | None = None, tracer: Tracer = NO_TRACER,
) -> Context:
    extra: dict[str, Any] = {"environ": environ} if environ is not None else {}
    # The client libraries of the kinds this catalog (and the settings) use, and no others.
    adapters.load(catalog_kinds(catalog) | settings_kinds(settings))
    metrics = Metrics()
    return Context(
        settings=settings,
        catalog=catalog,
        store=create_store(settings.database_url),
        slack=web_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url, metrics),
        metrics=metrics,
        clock=clock or SystemClock(),
        demo_workloads=demo_workloads,
        tracer=tracer,
        **extra,
    )


def catalog_kinds(catalog: Catalog) -> set[str]:
    """The check kinds, target types and runbook step kinds the catalog uses (`check:<type>`, `target:<type>`,
    `step:<kind>`), for `bot.adapters`."""
    kinds = {f"check:{check.type}" for service in catalog.services.values() for check in service.checks}
    kinds |= {f"step:{step.kind}" for runbook in catalog.runbooks.values() for step in runbook.steps}
    return kinds | {f"target:{service.target.type}" for service in catalog.services.values() if service.target}


def settings_kinds(settings: Settings) -> set[str]:
    """The settings that need a client library (`settings:<name>`), for `bot.adapters`."""
    return {"settings:redis"} if settings.redis_url is not None else set()


def settle_heap() -> None:
    """After start-up: move everything alive now (modules, the catalog, Bolt, pools) out of the collector's view, so
    a full collection walks only what requests create. Without it, one full collection of the start-up heap held the
    event loop ~80 ms at 50 concurrent requests (bench/compare.py shows p99 per pass).

    Then hand back to the system the pages start-up freed: building the models of the catalog and the handlers
    leaves glibc's heap full of free holes it keeps mapped (about 1 MB of RSS, bench/compare.py). glibc only; on
    another C library this step does nothing."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    ctypes = adapters.module("ctypes")  # 0.3 MB, loaded for this one call (nothing else of opsbot needs it)
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return
    trim(0)


GC_THRESHOLDS = (700, 10, 10)  # chosen by bench/compare.py; see the README's bench section


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
    bolt = MeasuredApp(
        ctx.metrics,  # counts and times every request, in HTTP and Socket Mode
        tracer=ctx.tracer,  # and, when tracing is on, opens its span
        client=ctx.slack,
        signing_secret=ctx.settings.slack_signing_secret.get_secret_value(),
        # Answer Slack at ack() and keep working after: Slack wants an answer within 3 seconds.
        process_before_response=False,
        # A request no listener takes goes to the error handler below (200, one line), not Bolt's 404.
        raise_error_for_unhandled_request=True,
        logger=bolt_log,
        # Named, or Bolt names the app after its caller's file through inspect.stack(), which reads the source of
        # every frame on the stack: ~45 ms per app under pytest, paid by every test that starts a bot.
        name="opsbot",
    )
    bolt.error(answer_failure)  # what fails inside Bolt is answered in one line, never a 500 with a traceback
    bolt.use(bind_slack_request)  # each log line of a request carries its id, retry number and user
    bolt.use(refuse_while_draining(ctx.handover))  # after SIGTERM: nothing new starts here (see bot/handover.py)
    for register in listeners:
        register(bolt, ctx)
    return bolt


def build_web_app(ctx: Context, bolt: AsyncApp) -> web.Application:
    app = web.Application()
    app[CONTEXT_KEY] = ctx

    async def healthz(request: web.Request) -> web.Response:
        report = await ctx.readiness()
        healthy = all(value == "ok" for value in report.values())
        body = {"status": "ok" if healthy else "unavailable", **report}
        return web.json_response(body, status=200 if healthy else 503, dumps=json.dumps)

    if not ctx.settings.socket_mode:
        # The signature is checked on the raw bytes before anything parses them: 401 when missing, malformed,
        # wrong or more than 5 minutes off; a signed body that is not a request is a 400. Bolt checks it again.
        secret = ctx.settings.slack_signing_secret.get_secret_value()
        quiet_bad_http()
        app.router.add_post("/slack/events", slack_events(bolt, secret, time.time))
    app.router.add_get("/healthz", healthz)
    link = SocketLink(ctx.clock, ctx.settings.socket_down_seconds, ctx.metrics.socket_outages)
    if ctx.settings.socket_mode:
        app[SOCKET_LINK_KEY] = link  # /readyz turns 503 when the socket stays down past SOCKET_DOWN_SECONDS
    add_ops_routes(app, ctx)  # /metrics, /livez, /readyz
    add_alert_routes(app, ctx)  # /alerts/alertmanager, /alerts/grafana (bot/alerts/intake.py)

    async def startup(app: web.Application) -> None:
        await ctx.start()
        try:
            await chores(ctx)  # recover what a previous run of this replica left behind before serving
            scheduler = Scheduler(ctx, catalog_jobs(ctx.catalog))
            ctx.tasks.run_forever(scheduler.run_forever(), name="scheduler")
            app[SCHEDULER_KEY] = scheduler  # /readyz reads its heartbeat
            if ctx.settings.slack_app_token is not None:
                socket_mode = adapters.module(SOCKET_MODE)
                handler: AsyncSocketModeHandler = socket_mode.AsyncSocketModeHandler(
                    bolt, app_token=ctx.settings.slack_app_token.get_secret_value(), web_client=ctx.slack
                )
                ctx.metrics.watch_socket(handler.client)
                handler.client.message_listeners.append(bind_envelope)  # the envelope id as the request id
                link.follow(handler.client)
                try:
                    await handler.connect_async()
                except Exception as exc:  # noqa: BLE001 - any failure to connect is one start-up error naming what to check
                    raise ConfigError(
                        f"Socket Mode could not connect to Slack ({type(exc).__name__}): check SLACK_APP_TOKEN "
                        f"(an xapp- token with connections:write) and SLACK_API_URL ({ctx.settings.slack_api_url})"
                    ) from None
                app[SOCKET_KEY] = handler
                ctx.tasks.run_forever(link.watch(), name="socket link")
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


async def serve(settings: Settings, catalog: Catalog, *, ready: Callable[[str], None] = print,
                tracer: Tracer = NO_TRACER) -> None:
    """Run until SIGINT/SIGTERM."""
    ctx = build_context(settings, catalog, tracer=tracer)
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
        settle_heap()
        mode = "Socket Mode" if settings.socket_mode else "HTTP mode, Slack posts to /slack/events"
        ready(
            f"opsbot is up on http://{settings.host}:{settings.port} ({mode}; "
            f"{len(catalog.services)} services, store {_store_kind(settings)})"
        )
        await stop.wait()
        await drain(ctx, app)
    finally:
        await runner.cleanup()


async def drain(ctx: Context, app: web.Application) -> None:
    """SIGTERM's graceful stop, while the server still answers: /readyz 503 and new Slack requests turned away at
    once (`Handover`), the Socket Mode link closed so Slack sends to the other replicas, the scheduler stopped; then
    running work has SHUTDOWN_GRACE_SECONDS to end. Runbooks hand over at their next step boundary, their leases
    released; what is still running at the end is cut short and marked interrupted, for people to decide on."""
    ctx.handover.begin()
    handler = app.get(SOCKET_KEY)
    if handler is not None:
        await handler.close_async()
    await ctx.tasks.drain(timeout=ctx.settings.shutdown_grace_seconds)


def _store_kind(settings: Settings) -> str:
    return "PostgreSQL" if settings.is_postgres else f"SQLite at {settings.sqlite_path}"
