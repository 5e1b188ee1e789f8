"""The alert message's buttons: Acknowledge, Silence 1 h / 4 h, Unsilence, Health check, Run <runbook>, Declare
incident. Each carries its group's id; the core (bot/alerts/service.py) does the work and updates the message.
The webhooks themselves are served by the core's HTTP server (bot/alerts/intake.py): the core never imports handlers.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.alerts import service as alerts
from bot.context import Context
from bot.reports import report_health_in_channel
from bot.views.alerts import (
    ACK_ACTION,
    DECLARE_ACTION,
    HEALTH_ACTION,
    RUN_ACTION,
    SILENCE_ACTIONS,
    UNSILENCE_ACTION,
)
from bot.views.common import notice
from bot.views.incidents import declare_modal
from bot.views.runs import plan_message
from handlers.replies import Click, Reply, channel_of, number_of, on_click

Body = dict[str, Any]


async def list_alerts(ctx: Context, reply: Reply, command: dict[str, Any], args: list[str]) -> None:
    """`/ops alerts`: the groups firing now, with links."""
    await reply.ack(await alerts.firing(ctx))


def register(app: AsyncApp, ctx: Context) -> None:
    async def acknowledge(reply: Reply, body: Body, user: str, value: str) -> None:
        if not await alerts.acknowledge(ctx, number_of(value), user):
            await reply.ephemeral(notice("Someone acknowledged this alert already; the message says who."))

    def silence_for(hours: int) -> Click:
        async def silence(reply: Reply, body: Body, user: str, value: str) -> None:
            group = await alerts.silence(ctx, number_of(value), user, hours)
            await reply.ephemeral(notice(f"Silenced for {hours} h in Alertmanager (silence `{group.silence_id}`)."))

        return silence

    async def unsilence(reply: Reply, body: Body, user: str, value: str) -> None:
        await alerts.unsilence(ctx, number_of(value), user)
        await reply.ephemeral(notice("The silence is expired in Alertmanager; notifications resume."))

    async def health(reply: Reply, body: Body, user: str, value: str) -> None:
        group, service = await alerts.service_of(ctx, number_of(value))
        await report_health_in_channel(ctx, (service,), requested_by=user, channel_id=channel_of(body) or group.channel_id)

    async def run(reply: Reply, body: Body, user: str, value: str) -> None:
        await reply.ephemeral(plan_message(await alerts.plan_run(ctx, number_of(value), user)))

    async def declare(reply: Reply, body: Body, user: str, value: str) -> None:
        draft = await alerts.declare_draft(ctx, number_of(value))
        form = declare_modal(ctx.catalog.incidents, ctx.catalog.service_names, channel_of(body), draft)
        await ctx.chat.open_modal(body["trigger_id"], form)

    on_click(app, ctx, ACK_ACTION, acknowledge)
    for action_id, hours in SILENCE_ACTIONS.items():
        on_click(app, ctx, action_id, silence_for(hours))
    on_click(app, ctx, UNSILENCE_ACTION, unsilence)
    on_click(app, ctx, HEALTH_ACTION, health)
    on_click(app, ctx, RUN_ACTION, run)
    on_click(app, ctx, DECLARE_ACTION, declare)
