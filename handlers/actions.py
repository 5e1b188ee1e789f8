"""Buttons. The button's value is an id the core looks up, never a command to run."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.context import Context
from bot.errors import StaleButton
from bot.reports import rerun_health
from bot.views.health import RERUN_ACTION
from handlers.replies import Inbound, Reply, handle


def register(app: AsyncApp, ctx: Context) -> None:
    @app.action(RERUN_ACTION)
    async def rerun(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        reply = Reply(ctx, ack, body.get("response_url"), ack_carries_message=False)
        await reply.ack()  # a button's ack carries nothing; the message itself shows progress
        user = body.get("user", {}).get("id")
        channel = (body.get("channel") or {}).get("id")
        value = str(action.get("value", ""))
        inbound = Inbound("action", RERUN_ACTION, user, channel, value)

        async def work() -> None:
            if not value.isdigit():
                raise StaleButton("run `/ops health` again")
            await rerun_health(
                ctx, int(value), requested_by=user or "", channel_id=channel, response_url=body["response_url"]
            )

        ctx.tasks.spawn(handle(ctx, inbound, reply, work), name=f"{RERUN_ACTION} {value}")
