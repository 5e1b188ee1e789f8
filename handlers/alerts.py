"""The alert message's buttons: Acknowledge, Silence 1 h / 4 h / until… (a form), Unsilence, Health check,
Run <runbook>, Declare incident; and Approve / Deny on a silence that waits for approval. Each carries its group's
(or request's) id; the core (bot/alerts/service.py, bot/alerts/silencing.py) does the work and updates the message.
The webhooks themselves are served by the core's HTTP server (bot/alerts/intake.py): the core never imports handlers.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from slack_bolt.async_app import AsyncApp

from bot.alerts import service as alerts
from bot.alerts import silencing
from bot.alerts.messages import group_of
from bot.alerts.models import SilenceAsk, Verdict
from bot.alerts.silence_times import check_until
from bot.context import Context
from bot.reports import report_health_in_channel
from bot.views.alert_silences import (
    APPROVE_SILENCE,
    DENY_SILENCE,
    REASON_BLOCK,
    REASON_INPUT,
    SILENCE_FORM,
    UNTIL_BLOCK,
    UNTIL_INPUT,
    until_error,
    until_form,
)
from bot.views.alerts import (
    ACK_ACTION,
    DECLARE_ACTION,
    HEALTH_ACTION,
    RUN_ACTION,
    SILENCE_ACTIONS,
    SILENCE_UNTIL_ACTION,
    UNSILENCE_ACTION,
    group_name,
)
from bot.views.common import notice, timestamp
from bot.views.incidents import declare_modal
from bot.views.runs import plan_message
from handlers.payloads import URL, MalformedPayload, Ref, read, read_json
from handlers.replies import (
    Click,
    Inbound,
    InChannelReply,
    Reply,
    channel_of,
    handle,
    number_of,
    on_click,
    refuse_form,
)

Body = dict[str, Any]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Picked(_Shape):
    """An input of the "Silence until…" form: the date-time picker's Unix seconds, or the reason's text."""

    selected_date_time: int | None = Field(default=None, ge=0, lt=2**40)
    value: str | None = None


class _FormState(_Shape):
    values: dict[str, dict[str, _Picked]] = {}


class _FormView(_Shape):
    private_metadata: str = ""
    state: _FormState = _FormState()


class UntilSubmission(_Shape):
    user: Ref
    view: _FormView


class UntilForm(_Shape):
    """The form's private metadata: which group, where to answer, and the asker's time zone for its errors."""

    group_id: int = Field(ge=0, lt=2**63)
    channel: str | None = None
    response_url: str | None = Field(default=None, pattern=URL)
    tz: str | None = None


async def list_alerts(ctx: Context, reply: Reply, command: dict[str, Any], args: list[str]) -> None:
    """`/ops alerts`: the groups firing now, with links."""
    await reply.ack(await alerts.firing(ctx))


async def _silenced(ctx: Context, reply: Reply, group_id: int, user: str, ask: SilenceAsk) -> None:
    done = await silencing.silence(ctx, group_id, user, ask)
    if isinstance(done, silencing.Silenced):
        group = done.group
        until = timestamp(group.silenced_until) if group.silenced_until else "its end"
        await reply.ephemeral(notice(f"Silenced in Alertmanager until {until} (silence `{group.silence_id}`)."))
        return
    request = done.request
    await reply.ephemeral(notice(f"Sent for approval in <#{request.channel_id}>: the silence is made once "
                                 f"{request.approvals_needed} other person(s) approve."))


def register(app: AsyncApp, ctx: Context) -> None:
    async def acknowledge(reply: Reply, body: Body, user: str, value: str) -> None:
        if not await alerts.acknowledge(ctx, number_of(value), user):
            await reply.ephemeral(notice("Someone acknowledged this alert already; the message says who."))

    def silence_for(hours: int) -> Click:
        async def silence(reply: Reply, body: Body, user: str, value: str) -> None:
            await _silenced(ctx, reply, number_of(value), user, silencing.ask_for(hours))

        return silence

    async def silence_until(reply: Reply, body: Body, user: str, value: str) -> None:
        group = await group_of(ctx, number_of(value))
        settings = alerts.settings_of(ctx)
        alerts_of = [stored.alert for stored in await ctx.store.group_alerts(group.id)]
        metadata = UntilForm(group_id=group.id, channel=channel_of(body), response_url=reply.response_url,
                             tz=await ctx.chat.user_tz(user)).model_dump_json()
        form = until_form(group_name(group, alerts_of), ctx.clock.now(), settings.silence_max,
                          approvals=silencing.approvals_needed(ctx), metadata=metadata)
        await ctx.chat.open_modal(body["trigger_id"], form)

    def decide(verdict: Verdict) -> Click:
        async def work(reply: Reply, body: Body, user: str, value: str) -> None:
            await reply.ephemeral(notice(await silencing.decide(ctx, number_of(value), user, verdict)))

        return work

    async def unsilence(reply: Reply, body: Body, user: str, value: str) -> None:
        await silencing.unsilence(ctx, number_of(value), user)
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
    on_click(app, ctx, SILENCE_UNTIL_ACTION, silence_until)
    on_click(app, ctx, APPROVE_SILENCE, decide(Verdict.APPROVE))
    on_click(app, ctx, DENY_SILENCE, decide(Verdict.DENY))
    on_click(app, ctx, UNSILENCE_ACTION, unsilence)
    on_click(app, ctx, HEALTH_ACTION, health)
    on_click(app, ctx, RUN_ACTION, run)
    on_click(app, ctx, DECLARE_ACTION, declare)

    @app.view(SILENCE_FORM)
    async def until_given(ack: Any, body: Body) -> None:
        try:
            form = read(UntilSubmission, body, "form")
            metadata = read_json(UntilForm, form.view.private_metadata, "form")
        except MalformedPayload as exc:
            await ack()  # closes the form; the sender is told by a direct message
            refuse_form(ctx, SILENCE_FORM, body, exc)
            return
        values = form.view.state.values
        picked = values.get(UNTIL_BLOCK, {}).get(UNTIL_INPUT)
        seconds = picked.selected_date_time if picked else None
        until = datetime.fromtimestamp(seconds, UTC) if seconds is not None else None
        reason = ((values.get(REASON_BLOCK, {}).get(REASON_INPUT) or _Picked()).value or "").strip()
        # Checked before the ack: Slack keeps the form open and shows each error under its field.
        refused = check_until(until, ctx.clock.now(), alerts.settings_of(ctx).silence_max) if ctx.catalog.alerts else None
        errors = {UNTIL_BLOCK: until_error(refused, metadata.tz)} if refused is not None else {}
        if not reason:
            errors[REASON_BLOCK] = "Say why: it becomes the silence's comment in Alertmanager."
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        user = form.user.id
        reply = (Reply.acknowledged(ctx, metadata.response_url) if metadata.response_url
                 else InChannelReply(ctx, metadata.channel, user))
        inbound = Inbound("action", SILENCE_FORM, user, metadata.channel, json.dumps(
            {"group": metadata.group_id, "until": until.isoformat() if until else None}))
        ask = silencing.ask_for(until=until, comment=reason)

        async def work() -> None:
            await _silenced(ctx, reply, metadata.group_id, user, ask)

        ctx.tasks.spawn(handle(ctx, inbound, reply, work), name=f"silence until {metadata.group_id}")
