"""The operator's HTTP endpoints beside Slack's: `/metrics` (Prometheus), `/livez` and `/readyz` (probes).

Served by the same aiohttp server in HTTP and Socket Mode. Not responsible for the metrics themselves
(`bot.metrics`) nor for `/healthz` (kept as it is in `bot.app`).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import SecretStr

from bot.context import Context
from bot.metrics import CONTENT_TYPE
from bot.scheduling.scheduler import Scheduler
from bot.socket_link import SOCKET_LINK_KEY
from bot.views.words import seconds

Handler = Callable[[web.Request], Awaitable[web.Response]]
SCHEDULER_KEY = web.AppKey("scheduler", Scheduler)


def bearer_allowed(token: SecretStr | None, header: str | None) -> bool:
    """True when no token is set, or `header` is exactly `Bearer <token>` (compared in constant time)."""
    if token is None:
        return True
    expected = f"Bearer {token.get_secret_value()}".encode()
    return hmac.compare_digest(expected, (header or "").encode())


def metrics_handler(ctx: Context) -> Handler:
    async def metrics(request: web.Request) -> web.Response:
        if not bearer_allowed(ctx.settings.opsbot_metrics_token, request.headers.get("Authorization")):
            return web.Response(status=401, headers={"WWW-Authenticate": 'Bearer realm="opsbot metrics"'},
                                text="Unauthorized: send `Authorization: Bearer <OPSBOT_METRICS_TOKEN>`.\n")
        await ctx.metrics.refresh(ctx.store, ctx.clock.now())
        return web.Response(body=ctx.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    return metrics


def livez_handler() -> Handler:
    async def livez(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})  # answering at all is the point: the event loop serves

    return livez


def readyz_handler(ctx: Context) -> Handler:
    async def readyz(request: web.Request) -> web.Response:
        report = await ctx.readiness()  # the store, and the lock store (Redis) when REDIS_URL is set
        ready = all(value == "ok" for value in report.values())
        scheduler = request.app.get(SCHEDULER_KEY)  # set at start-up
        if scheduler is not None:
            silent = scheduler.silent_for()
            if silent > scheduler.silence_limit:
                ready, report["scheduler"] = False, (f"no pass for {seconds(silent)} (one is due at least every "
                                                     f"{seconds(scheduler.tick)}): its loop stopped or is stuck")
            else:
                report["scheduler"] = "ok"
        if ctx.handover.draining:  # SIGTERM: the load balancer stops sending work here at once
            ready, report["shutdown"] = False, "stopping: handing its work over to the other replicas"
        link = request.app.get(SOCKET_LINK_KEY)  # Socket Mode only: a replica Slack cannot reach is not ready
        if link is not None:
            state = await link.observe()
            ready, report["socket_mode"] = ready and state.ready, state.reason()
        body = {"status": "ok" if ready else "unavailable", **report}
        return web.json_response(body, status=200 if ready else 503, dumps=json.dumps)

    return readyz


def add_ops_routes(app: web.Application, ctx: Context) -> None:
    ctx.metrics.known_severities(severity.name for severity in ctx.catalog.incidents.severities)
    app.router.add_get("/metrics", metrics_handler(ctx))
    app.router.add_get("/livez", livez_handler())
    app.router.add_get("/readyz", readyz_handler(ctx))
