"""Runbook buttons and the parameters modal: offer (from `/ops runbooks`, health reports, incidents) and the form.
Values are runbook names the core looks up, never commands. A run's own buttons are `handlers.approvals`'."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.context import Context
from bot.errors import StaleButton
from bot.runbooks.params import ParametersInvalid, coerce
from bot.runs import requests
from bot.runs.models import ActionKind
from bot.views.health import MORE_ACTION
from bot.views.runbooks import OFFER_ACTION, PARAMS_CALLBACK, modal_values
from bot.views.runs import plan_message
from handlers.health_logs import show_last_errors
from handlers.ops_runbooks import plan_or_ask
from handlers.payloads import MalformedPayload, RunbookForm, Submission, read, read_json, ref_of
from handlers.replies import Inbound, InChannelReply, Reply, channel_of, handle, on_click, refuse

Body = dict[str, Any]


def register(app: AsyncApp, ctx: Context) -> None:
    async def offer(reply: Reply, body: Body, user: str, value: str) -> None:
        if value not in ctx.catalog.runbooks:
            raise StaleButton("`/ops runbooks` lists the runbooks there are now")
        # A button carries no values: planning asks for them in the form when the runbook needs some.
        await plan_or_ask(ctx, reply, value, {}, user=user, channel=channel_of(body), trigger_id=body.get("trigger_id"),
                          response_url=body.get("response_url"))

    async def more(reply: Reply, body: Body, user: str, value: str) -> None:
        what, _, name = value.partition(":")
        if what == "runbook":
            await offer(reply, body, user, name)
        elif what == "errors":
            await show_last_errors(ctx, reply, name)
        elif what == "restart" and name in ctx.catalog.services:
            run = await requests.plan(ctx, name, ActionKind.RESTART, requested_by=user, channel_id=channel_of(body),
                                     reason="failing in a health report")
            await reply.ephemeral(plan_message(run))
        else:
            raise StaleButton("run `/ops health` again")

    on_click(app, ctx, OFFER_ACTION, offer)
    on_click(app, ctx, MORE_ACTION, more)

    @app.view(PARAMS_CALLBACK)
    async def submitted(ack: Any, body: Body, view: Body) -> None:
        try:
            form = read(Submission, body, "form")
            metadata = read_json(RunbookForm, form.view.private_metadata, "form")
        except MalformedPayload as exc:
            await ack()  # closes the form; the sender is told by a direct message
            who = ref_of(body.get("user")) or ""
            ctx.tasks.spawn(handle(ctx, Inbound("view", PARAMS_CALLBACK, who or None, None), InChannelReply(ctx, None, who),
                                   refuse(exc)), name="runbook form malformed")
            return
        user, name, channel = form.user.id, metadata.runbook, metadata.channel
        runbook = ctx.catalog.runbooks.get(name)
        given = modal_values(view)  # its shape was checked with the form's
        if runbook is not None:
            try:
                await coerce(name, runbook, given, ctx.store)  # quick: inline errors must come back in the ack
            except ParametersInvalid as exc:
                errors = {f"param.{p.parameter}": p.message[:150] for p in exc.problems if p.parameter in runbook.parameters}
                if errors:
                    await ack(response_action="errors", errors=errors)
                    return
        await ack()
        reply = Reply.acknowledged(ctx, metadata.response_url) if metadata.response_url else InChannelReply(ctx, channel, user)
        inbound = Inbound("view", PARAMS_CALLBACK, user, channel, name)

        async def work() -> None:
            await plan_or_ask(ctx, reply, name, given, user=user, channel=channel, trigger_id=None,
                              response_url=metadata.response_url, reason=metadata.reason or "")

        ctx.tasks.spawn(handle(ctx, inbound, reply, work), name=f"runbook {name}")
