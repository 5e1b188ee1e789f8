"""The webhook endpoints `POST /alerts/alertmanager` and `POST /alerts/grafana`, served by the bot's aiohttp server
in HTTP and Socket Mode alike: authenticate, read at most 1 MiB, parse, hand the delivery to the core, answer.

Answers: 200 recorded (a duplicate too); 401 missing or wrong credentials; 413 over 1 MiB; 400 naming what is
wrong with the body; 404 when alerts are not configured (no OPSBOT_ALERTS_TOKEN, or no `alerts:` in the catalog),
so a sender pointed at a bot that takes no alerts is told so and does not retry; 503 only when opsbot's own store,
locks or Slack failed (the sender retries, and the retry is deduplicated). Nothing is stored from a refused request.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.alerts import auth, runs
from bot.alerts.payloads import PayloadInvalid, Source, parse
from bot.alerts.service import receive
from bot.context import Context

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
Handler = Callable[[web.Request], Awaitable[web.Response]]


def add_alert_routes(app: web.Application, ctx: Context, *, now: Callable[[], float] = time.time) -> None:
    """Mount alerts: the webhook endpoints, and (with an `alerts:` section) the listener that shows a run started from
    an alert's Run button on its message when the run ends."""
    for source in Source:
        app.router.add_post(f"/alerts/{source.value}", alerts_handler(ctx, source, now))
    if ctx.catalog.alerts is not None:
        ctx.run_listeners.add(functools.partial(runs.run_ended, ctx))


def _answer(status: int, text: str, **headers: str) -> web.Response:
    return web.json_response({"status": status, "message": text}, status=status, headers=headers or None)


def alerts_handler(ctx: Context, source: Source, now: Callable[[], float]) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        token = ctx.settings.opsbot_alerts_token
        if token is None or ctx.catalog.alerts is None:
            missing = "OPSBOT_ALERTS_TOKEN is not set" if token is None else "the catalog has no `alerts:` section"
            return _answer(404, f"alerts are not configured on this opsbot: {missing}")
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _answer(413, f"the body is over {MAX_BODY} bytes")
        body = await _read(request)
        if body is None:
            return _answer(413, f"the body is over {MAX_BODY} bytes")
        verdict = _authenticate(token.get_secret_value(), source, request, body, now())
        if not verdict.allowed:
            return _answer(401, f"unauthorized: {verdict.value}", **{"WWW-Authenticate": 'Bearer realm="opsbot alerts"'})
        try:
            delivery = parse(source, body)
        except PayloadInvalid as exc:
            return _answer(400, str(exc))
        try:
            recorded = await receive(ctx, delivery)
        except Exception:
            # Not the sender's fault: it retries, and the retry is deduplicated.
            log.exception("could not record a delivery from %s", source.value)
            return _answer(503, "opsbot could not record or show these alerts just now; retry")
        if recorded is None:
            return _answer(200, "no alerts in this delivery")
        what = f"{recorded.changes} new state change(s)" if recorded.changes else "nothing new (a repeated delivery)"
        return _answer(200, f"recorded: {what} in alert group {recorded.group.id}")

    return handle


async def _read(request: web.Request) -> bytes | None:
    """The body, or None once it passes MAX_BODY (a chunked body says no length up front)."""
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _authenticate(token: str, source: Source, request: web.Request, body: bytes, now: float) -> auth.Verdict:
    signature = request.headers.get(auth.SIGNATURE_HEADER)
    if source is Source.GRAFANA and signature and not request.headers.get("Authorization"):
        return auth.grafana_signature(token, body, signature, request.headers.get(auth.TIMESTAMP_HEADER), now)
    return auth.bearer(token, request.headers.get("Authorization"))
