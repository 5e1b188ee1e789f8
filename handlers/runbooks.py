"""Runbook buttons and the parameters modal: offer (from `/ops runbooks`, health reports, incidents), Cancel,
Resume, Roll back. Values are runbook names or run ids the core looks up, never commands."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.actions import service as actions
from bot.actions.models import ActionKind
from bot.context import Context
from bot.errors import StaleButton
from bot.runbooks import service as runbooks
from bot.runbooks.params import ParametersInvalid, coerce
from bot.views.actions import plan_message
from bot.views.common import notice
from bot.views.health import MORE_ACTION
from bot.views.runbooks import (
    CANCEL_RUN_ACTION, OFFER_ACTION, PARAMS_CALLBACK, RESUME_ACTION, ROLL_BACK_ACTION, modal_values,
)
from handlers.ops_runbooks import plan_or_ask
from handlers.replies import Inbound, Reply, handle

Body = dict[str, Any]


def _run_id(value: str) -> int:
    if not value.isdigit():
        raise StaleButton()
    return int(value)


def register(app: AsyncApp, ctx: Context) -> None:
    def clicked(action_id: str, work: Any) -> None:
        @app.action(action_id)
        async def listener(ack: Any, body: Body, action: Body) -> None:
            reply = Reply(ctx, ack, body.get("response_url"), ack_carries_message=False)
            await reply.ack()
            user = body.get("user", {}).get("id", "")
            channel = (body.get("channel") or {}).get("id")
            # A button carries `value`; the health report's overflow and the incident's select a selected option.
            value = str(action.get("value") or (action.get("selected_option") or {}).get("value") or "")
            inbound = Inbound("action", action_id, user, channel, value)
            ctx.tasks.spawn(handle(ctx, inbound, reply, lambda: work(reply, body, user, channel, value)),
                            name=f"{action_id} {value}")

    async def offer(reply: Reply, body: Body, user: str, channel: str | None, value: str) -> None:
        if value not in ctx.catalog.runbooks:
            raise StaleButton("`/ops runbooks` lists the runbooks there are now")
        runbook = ctx.catalog.runbook(value)
        problems = None
        if runbooks.needs_values(runbook):
            # Straight to the form (a button cannot carry values), with what is missing said in case it cannot open.
            try:
                await coerce(value, runbook, {}, ctx.store)
            except ParametersInvalid as exc:
                problems = exc.problems
        await plan_or_ask(ctx, reply, value, {}, user=user, channel=channel, trigger_id=body.get("trigger_id"),
                          response_url=body.get("response_url"), problems=problems)

    async def cancel(reply: Reply, body: Body, user: str, channel: str | None, value: str) -> None:
        await reply.ephemeral(notice(await runbooks.cancel_run(ctx, _run_id(value), user)))

    def follow_up(mode: str) -> Any:
        async def work(reply: Reply, body: Body, user: str, channel: str | None, value: str) -> None:
            await reply.ephemeral(plan_message(await runbooks.follow_up(ctx, _run_id(value), user, mode)))
        return work

    async def more(reply: Reply, body: Body, user: str, channel: str | None, value: str) -> None:
        what, _, name = value.partition(":")
        if what == "runbook":
            await offer(reply, body, user, channel, name)
        elif what == "restart" and name in ctx.catalog.services:
            run = await actions.plan(ctx, name, ActionKind.RESTART, requested_by=user, channel_id=channel,
                                     reason="failing in a health report")
            await reply.ephemeral(plan_message(run))
        else:
            raise StaleButton("run `/ops health` again")

    clicked(OFFER_ACTION, offer)
    clicked(MORE_ACTION, more)
    clicked(CANCEL_RUN_ACTION, cancel)
    clicked(RESUME_ACTION, follow_up("resume"))
    clicked(ROLL_BACK_ACTION, follow_up("rollback"))

    @app.view(PARAMS_CALLBACK)
    async def submitted(ack: Any, body: Body, view: Body) -> None:
        user = body.get("user", {}).get("id", "")
        metadata = json.loads(view.get("private_metadata") or "{}")
        name, channel = str(metadata.get("runbook", "")), metadata.get("channel")
        runbook = ctx.catalog.runbooks.get(name)
        given = modal_values(view)
        if runbook is not None:
            try:
                await coerce(name, runbook, given, ctx.store)  # quick: inline errors must come back in the ack
            except ParametersInvalid as exc:
                errors = {f"param.{p.parameter}": p.message[:150] for p in exc.problems if p.parameter in runbook.parameters}
                if errors:
                    await ack(response_action="errors", errors=errors)
                    return
        await ack()
        reply = Reply.acknowledged(ctx, metadata.get("response_url"))
        inbound = Inbound("view", PARAMS_CALLBACK, user, channel, name)

        async def work() -> None:
            await plan_or_ask(ctx, reply, name, given, user=user, channel=channel, trigger_id=None,
                              response_url=metadata.get("response_url"), reason=str(metadata.get("reason") or ""))

        ctx.tasks.spawn(handle(ctx, inbound, reply, work), name=f"runbook {name}")
