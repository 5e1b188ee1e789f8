"""`/ops restart|backup|backups|restore|rollback|history|approvals`: parse, then one core call each.

Requests come back as a plan only the requester sees; nothing is touched until they press its button.
"""

from __future__ import annotations

import re
from typing import Any

from bot.context import Context
from bot.errors import OpsbotError
from bot.runs import listing, requests, revisions
from bot.runs.backup_ref import explain_backup_ref, parse_backup_ref
from bot.runs.models import ActionKind, ActionState
from bot.views.backups import backups_message
from bot.views.runs import approvals_message, history_message, plan_message
from handlers.replies import Reply

# A revision number or an image tag/reference: it only ever reaches an API as a value, never argv.
REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,199}$")


class Usage(OpsbotError):
    """The words after `/ops <subcommand>` do not fit its usage."""

    def __init__(self, usage: str, detail: str) -> None:
        super().__init__(f"Usage: `/ops {usage}`: {detail}")


def _service(ctx: Context, args: list[str], usage: str) -> str:
    if not args:
        names = ", ".join(f"`{name}`" for name in ctx.catalog.service_names[:30]) or "none in the catalog"
        raise Usage(usage, f"name a service. Services: {names}.")
    name = args[0].lower()
    ctx.catalog.service(name)  # UnknownService with a did-you-mean
    return name


async def _plan(ctx: Context, reply: Reply, command: dict[str, Any], service: str, kind: ActionKind,
                params: dict[str, Any], reason: str) -> None:
    await reply.ack()
    run = await requests.plan(ctx, service, kind, requested_by=command["user_id"], channel_id=command.get("channel_id"),
                             params=params, reason=reason)
    await reply.ephemeral(plan_message(run))


async def restart(ctx: Context, reply: Reply, command: dict[str, Any], args: list[str]) -> None:
    service = _service(ctx, args, "restart <service> [reason]")
    await _plan(ctx, reply, command, service, ActionKind.RESTART, {}, " ".join(args[1:]))


async def backup(ctx: Context, reply: Reply, command: dict[str, Any], args: list[str]) -> None:
    service = _service(ctx, args, "backup <service> [reason]")
    await _plan(ctx, reply, command, service, ActionKind.BACKUP, {}, " ".join(args[1:]))


async def restore(ctx: Context, reply: Reply, command: dict[str, Any], args: list[str]) -> None:
    usage = "restore <service> <backup-id|latest> [reason]"
    service = _service(ctx, args, usage)
    backup = parse_backup_ref(args[1]) if len(args) > 1 else None  # the rule runbook parameters follow too
    if backup is None:
        raise Usage(usage, f"name {explain_backup_ref(service)}.")
    await _plan(ctx, reply, command, service, ActionKind.RESTORE, {"backup_id": backup}, " ".join(args[2:]))


async def rollback(ctx: Context, reply: Reply, command: dict[str, Any], args: list[str]) -> None:
    usage = "rollback <service> [to <revision|tag>] [reason]"
    service = _service(ctx, args, usage)
    rest, params = args[1:], {}
    if rest and rest[0].lower() == "to":
        if len(rest) < 2 or not REVISION.match(rest[1]):
            raise Usage(usage, f"after `to`, a revision number or an image tag (see `/ops history {service}`).")
        params, rest = {"to": rest[1]}, rest[2:]
    await _plan(ctx, reply, command, service, ActionKind.ROLLBACK, params, " ".join(rest))


async def backups(ctx: Context, reply: Reply, command: dict[str, Any], args: list[str]) -> None:
    service = _service(ctx, args, "backups <service>")
    records = await ctx.store.backups(service, limit=25)
    await reply.ack(backups_message(service, records, ctx.clock.now()))


async def history(ctx: Context, reply: Reply, command: dict[str, Any], args: list[str]) -> None:
    if not args:
        await reply.ack(history_message(None, await listing.history(ctx, None), []))
        return
    service = _service(ctx, args, "history [service]")
    await reply.ack()  # listing revisions asks Docker or Kubernetes: may take a moment
    runs = await listing.history(ctx, service)
    await reply.ephemeral(history_message(service, runs, await revisions.of_service(ctx, service)))


async def approvals(ctx: Context, reply: Reply, command: dict[str, Any], args: list[str]) -> None:
    await reply.ack()  # a permalink per request: a few Web API calls
    runs = await ctx.store.actions(states=[ActionState.PENDING], limit=25)
    links = {run.id or 0: link for run in runs if (link := await listing.message_link(ctx, run))}
    await reply.ephemeral(approvals_message(runs, links))
