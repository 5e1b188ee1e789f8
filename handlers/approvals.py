"""Buttons and the modal of the action flow: send or drop a plan, approve, deny (with a reason), restart from
a health report. Each button's value is a run id or a catalog service name, never a command."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.actions import service as actions
from bot.actions.models import ActionKind, Decision
from bot.context import Context
from bot.errors import StaleButton
from bot.views.actions import APPROVE_ACTION, CANCEL_ACTION, DENY_ACTION, REQUEST_ACTION, plan_message
from bot.views.common import notice
from bot.views.health import RESTART_ACTION
from bot.views.modals import DENY_CALLBACK, REASON_BLOCK, REASON_INPUT, deny_modal
from handlers.replies import InChannelReply, Inbound, Reply, handle

Body = dict[str, Any]


def _run_id(value: str) -> int:
    if not value.isdigit():
        raise StaleButton()
    return int(value)


def register(app: AsyncApp, ctx: Context) -> None:
    def button(action_id: str, work: Any) -> None:
        @app.action(action_id)
        async def clicked(ack: Any, body: Body, action: Body) -> None:
            reply = Reply(ctx, ack, body.get("response_url"), ack_carries_message=False)
            await reply.ack()
            user = body.get("user", {}).get("id", "")
            channel = (body.get("channel") or {}).get("id")
            value = str(action.get("value", ""))
            inbound = Inbound("action", action_id, user, channel, value)
            ctx.tasks.spawn(handle(ctx, inbound, reply, lambda: work(reply, body, user, value)), name=f"{action_id} {value}")

    async def send(reply: Reply, body: Body, user: str, value: str) -> None:
        run = await actions.request(ctx, _run_id(value), user)
        note = "Sent for approval: the request is in the channel." if run.approvals_needed else "Running: follow it in the channel."
        await ctx.chat.respond(body["response_url"], notice(note), replace_original=True)

    async def drop(reply: Reply, body: Body, user: str, value: str) -> None:
        await actions.cancel(ctx, _run_id(value), user)
        await ctx.chat.respond(body["response_url"], notice("Plan dropped; nothing was touched."), replace_original=True)

    async def approve(reply: Reply, body: Body, user: str, value: str) -> None:
        await reply.ephemeral(notice(await actions.decide(ctx, _run_id(value), user, Decision.APPROVE)))

    async def deny(reply: Reply, body: Body, user: str, value: str) -> None:
        run = await actions.may_decide(ctx, _run_id(value), user, Decision.DENY)
        metadata = json.dumps({"run_id": run.id, "channel": (body.get("channel") or {}).get("id")})
        await ctx.chat.open_modal(body["trigger_id"], deny_modal(run, metadata))

    async def restart_from_health(reply: Reply, body: Body, user: str, value: str) -> None:
        ctx.catalog.service(value)
        run = await actions.plan(ctx, value, ActionKind.RESTART, requested_by=user,
                                 channel_id=(body.get("channel") or {}).get("id"), reason="from a health report")
        await reply.ephemeral(plan_message(run))

    button(REQUEST_ACTION, send)
    button(CANCEL_ACTION, drop)
    button(APPROVE_ACTION, approve)
    button(DENY_ACTION, deny)
    button(RESTART_ACTION, restart_from_health)

    @app.view(DENY_CALLBACK)
    async def denied(ack: Any, body: Body, view: Body) -> None:
        await ack()  # closes the modal; the outcome shows on the request's message
        user = body.get("user", {}).get("id", "")
        metadata = json.loads(view.get("private_metadata") or "{}")
        value = (view.get("state", {}).get("values", {}).get(REASON_BLOCK, {}).get(REASON_INPUT, {}) or {}).get("value") or ""
        channel = metadata.get("channel")
        inbound = Inbound("action", DENY_CALLBACK, user, channel, str(metadata.get("run_id")))

        async def work() -> None:
            text = await actions.decide(ctx, int(metadata["run_id"]), user, Decision.DENY, value.strip())
            if channel:
                await ctx.chat.ephemeral(channel, user, notice(text))

        ctx.tasks.spawn(handle(ctx, inbound, InChannelReply(ctx, channel, user), work), name=f"deny {metadata.get('run_id')}")

