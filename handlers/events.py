"""Events API listeners, and the middleware that makes a retried delivery a no-op.

Slack re-delivers an event it thinks we missed (X-Slack-Retry-Num); the event_id is claimed in the
store first, so however many times it arrives, it is processed once, on any replica.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse

from bot.audit import Outcome
from bot.context import Context
from bot.views.mention import mention_reply
from handlers.replies import Inbound, handle, record


def register(app: AsyncApp, ctx: Context) -> None:
    @app.middleware
    async def once_per_event(body: dict[str, Any], next: Any, resp: BoltResponse) -> BoltResponse:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not await ctx.store.claim(f"slack-event:{event_id}", ctx.clock.now()):
            event = body.get("event") or {}
            inbound = Inbound("event", str(event.get("type", "?")), event.get("user"), event.get("channel"), event_id)
            await record(ctx, inbound, Outcome.DUPLICATE, "retried delivery, already processed", None)
            return BoltResponse(status=200, body="")  # tell Slack it arrived, and stop here
        await next()
        return resp

    @app.event("app_mention")
    async def mentioned(event: dict[str, Any]) -> None:
        inbound = Inbound("event", "app_mention", event.get("user"), event.get("channel"), event.get("text", "")[:200])

        async def work() -> None:
            await ctx.chat.post(event["channel"], mention_reply(event.get("user")), thread_ts=event.get("thread_ts") or event.get("ts"))

        ctx.tasks.spawn(handle(ctx, inbound, None, work), name="app_mention")
