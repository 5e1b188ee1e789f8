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
from handlers.payloads import MalformedPayload, Mention, read, text_of
from handlers.replies import Inbound, handle, record, refuse


def register(app: AsyncApp, ctx: Context) -> None:
    @app.middleware
    async def once_per_event(body: dict[str, Any], next: Any, resp: BoltResponse) -> BoltResponse:
        event_id = text_of(body.get("event_id")) if body.get("type") == "event_callback" else None
        if event_id and not await ctx.store.claim(f"slack-event:{event_id}", ctx.clock.now()):
            found = body.get("event")
            event: dict[str, Any] = found if isinstance(found, dict) else {}
            inbound = Inbound("event", text_of(event.get("type")) or "?", text_of(event.get("user")),
                              text_of(event.get("channel")), event_id)
            await record(ctx, inbound, Outcome.DUPLICATE, "retried delivery, already processed", None)
            return BoltResponse(status=200, body="")  # tell Slack it arrived, and stop here
        await next()
        return resp

    @app.event("app_mention")
    async def mentioned(event: dict[str, Any]) -> None:
        try:
            mention = read(Mention, event, "mention")
        except MalformedPayload as exc:  # nobody to answer: audited, and Slack told it arrived
            inbound = Inbound("event", "app_mention", text_of(event.get("user")), text_of(event.get("channel")))
            ctx.tasks.spawn(handle(ctx, inbound, None, refuse(exc)), name="app_mention malformed")
            return
        inbound = Inbound("event", "app_mention", mention.user, mention.channel, mention.text[:200])

        async def work() -> None:
            await ctx.chat.post(mention.channel, mention_reply(mention.user), thread_ts=mention.thread_ts or mention.ts)

        ctx.tasks.spawn(handle(ctx, inbound, None, work), name="app_mention")
