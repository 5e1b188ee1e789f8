"""The buttons of every run and the modals of the run flow: send or drop a plan, approve, deny (with a reason),
Cancel a running run, answer a step a person does (Done / Skip / Failed), Resume / Roll back / mark done one that
stopped for people; and the buttons that plan a built-in action (restart from a health report, back up, restore,
roll back to). Each button's value is a run id, a backup id, `<run id>:<step position>` or a catalog service name,
never a command."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.context import Context
from bot.errors import StaleButton
from bot.runs import follow_ups, manual_answers, requests
from bot.runs.models import ActionKind, Decision
from bot.views.backups import BACKUP_ACTION, RESTORE_ACTION
from bot.views.common import notice
from bot.views.health import RESTART_ACTION
from bot.views.manual_steps import ANSWER_OF
from bot.views.modals import DENY_CALLBACK, REASON_BLOCK, REASON_INPUT, REQUEST_CALLBACK, deny_modal, reason_modal
from bot.views.runs import (
    APPROVE_ACTION,
    CANCEL_ACTION,
    CANCEL_RUN_ACTION,
    DENY_ACTION,
    MARK_DONE_ACTION,
    REQUEST_ACTION,
    RESUME_ACTION,
    ROLL_BACK_ACTION,
    ROLLBACK_ACTION,
    plan_message,
)
from handlers.ops_actions import REVISION
from handlers.payloads import MalformedPayload, RunForm, Submission, read, read_json
from handlers.replies import Click, Inbound, InChannelReply, Reply, handle, number_of, on_click, refuse_form

Body = dict[str, Any]


def register(app: AsyncApp, ctx: Context) -> None:
    async def sent(run_id: int, user: str, reason: str | None, response_url: str) -> None:
        run = await requests.request(ctx, run_id, user, reason)
        note = ("Sent for approval: the request is in the channel." if run.approvals_needed
                else "Running: follow it in the channel.")
        await ctx.chat.respond(response_url, notice(note), replace_original=True)

    async def send(reply: Reply, body: Body, user: str, value: str) -> None:
        run = await requests.draft(ctx, number_of(value), user)
        if run.approvals_needed and not run.reason:
            metadata = json.dumps({"run_id": run.id, "channel": (body.get("channel") or {}).get("id"),
                                   "response_url": body["response_url"]})
            await ctx.chat.open_modal(body["trigger_id"], reason_modal(run, metadata))
            return
        await sent(run.id or 0, user, None, body["response_url"])

    async def drop(reply: Reply, body: Body, user: str, value: str) -> None:
        await requests.cancel(ctx, number_of(value), user)
        await ctx.chat.respond(body["response_url"], notice("Plan dropped; nothing was touched."), replace_original=True)

    async def approve(reply: Reply, body: Body, user: str, value: str) -> None:
        await reply.ephemeral(notice(await requests.decide(ctx, number_of(value), user, Decision.APPROVE)))

    async def deny(reply: Reply, body: Body, user: str, value: str) -> None:
        run = await requests.may_decide(ctx, number_of(value), user, Decision.DENY)
        metadata = json.dumps({"run_id": run.id, "channel": (body.get("channel") or {}).get("id")})
        await ctx.chat.open_modal(body["trigger_id"], deny_modal(run, metadata))

    async def planned(body: Body, user: str, service: str, kind: ActionKind, params: dict[str, Any], reason: str = "") -> None:
        ctx.catalog.service(service)  # a button from an older catalog: refuse with the current list
        run = await requests.plan(ctx, service, kind, requested_by=user, channel_id=(body.get("channel") or {}).get("id"),
                                 params=params, reason=reason)
        await ctx.chat.respond(body["response_url"], plan_message(run))

    async def restart_from_health(reply: Reply, body: Body, user: str, value: str) -> None:
        await planned(body, user, value, ActionKind.RESTART, {}, "failing in a health report")

    async def backup_now(reply: Reply, body: Body, user: str, value: str) -> None:
        await planned(body, user, value, ActionKind.BACKUP, {})

    async def restore_this(reply: Reply, body: Body, user: str, value: str) -> None:
        record = await ctx.store.get_backup(number_of(value))
        if record is None:
            raise StaleButton("list the backups again")
        await planned(body, user, record.service, ActionKind.RESTORE, {"backup_id": record.id})

    async def rollback_to(reply: Reply, body: Body, user: str, value: str) -> None:
        service, _, revision = value.partition(" ")
        if not REVISION.match(revision):
            raise StaleButton(f"see `/ops history {service}` again")
        await planned(body, user, service, ActionKind.ROLLBACK, {"to": revision})

    async def cancel_running(reply: Reply, body: Body, user: str, value: str) -> None:
        await reply.ephemeral(notice(await follow_ups.cancel_run(ctx, number_of(value), user)))

    def follow_up(mode: str) -> Click:
        async def work(reply: Reply, body: Body, user: str, value: str) -> None:
            await reply.ephemeral(plan_message(await follow_ups.follow_up(ctx, number_of(value), user, mode)))
        return work

    def manual(action_id: str) -> Click:
        async def work(reply: Reply, body: Body, user: str, value: str) -> None:
            run, _, position = value.partition(":")
            said = await manual_answers.answer(ctx, number_of(run), number_of(position), ANSWER_OF[action_id], user)
            await reply.ephemeral(notice(said))
        return work

    for action_id in ANSWER_OF:
        on_click(app, ctx, action_id, manual(action_id))
    on_click(app, ctx, REQUEST_ACTION, send)
    on_click(app, ctx, CANCEL_ACTION, drop)
    on_click(app, ctx, APPROVE_ACTION, approve)
    on_click(app, ctx, DENY_ACTION, deny)
    on_click(app, ctx, RESTART_ACTION, restart_from_health)
    on_click(app, ctx, BACKUP_ACTION, backup_now)
    on_click(app, ctx, RESTORE_ACTION, restore_this)
    on_click(app, ctx, ROLLBACK_ACTION, rollback_to)
    on_click(app, ctx, CANCEL_RUN_ACTION, cancel_running)
    on_click(app, ctx, RESUME_ACTION, follow_up("resume"))
    on_click(app, ctx, ROLL_BACK_ACTION, follow_up("rollback"))
    on_click(app, ctx, MARK_DONE_ACTION, follow_up("done"))

    @app.view(REQUEST_CALLBACK)
    async def reason_given(ack: Any, body: Body) -> None:
        await ack()
        try:
            form = read(Submission, body, "form")
            metadata = read_json(RunForm, form.view.private_metadata, "form")
        except MalformedPayload as exc:
            refuse_form(ctx, REQUEST_CALLBACK, body, exc)
            return
        user, response_url = form.user.id, metadata.response_url
        reason = (_input(form) or "").strip()
        inbound = Inbound("action", REQUEST_CALLBACK, user, metadata.channel, str(metadata.run_id))

        async def work() -> None:
            if not response_url:
                raise StaleButton("press *Request approval* on the plan again")
            await sent(metadata.run_id, user, reason or None, response_url)

        # The plan's response_url still works for the requester, even where the bot cannot post.
        reply = Reply.acknowledged(ctx, response_url) if response_url else InChannelReply(ctx, metadata.channel, user)
        ctx.tasks.spawn(handle(ctx, inbound, reply, work), name=f"request {metadata.run_id}")

    @app.view(DENY_CALLBACK)
    async def denied(ack: Any, body: Body) -> None:
        await ack()  # closes the modal; the outcome shows on the request's message
        try:
            form = read(Submission, body, "form")
            metadata = read_json(RunForm, form.view.private_metadata, "form")
        except MalformedPayload as exc:
            refuse_form(ctx, DENY_CALLBACK, body, exc)
            return
        user, value, channel = form.user.id, _input(form) or "", metadata.channel
        inbound = Inbound("action", DENY_CALLBACK, user, channel, str(metadata.run_id))

        async def work() -> None:
            text = await requests.decide(ctx, metadata.run_id, user, Decision.DENY, value.strip())
            if channel:
                await ctx.chat.ephemeral(channel, user, notice(text))

        ctx.tasks.spawn(handle(ctx, inbound, InChannelReply(ctx, channel, user), work), name=f"deny {metadata.run_id}")



def _input(form: Submission) -> str | None:
    found = form.view.state.values.get(REASON_BLOCK, {}).get(REASON_INPUT)
    return found.value if found else None
