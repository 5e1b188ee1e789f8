"""`/ops runbooks [service]` and `/ops run <runbook> [name=value …] [reason]`: parse, then one core call each.

Missing or invalid values open the parameters modal (typed inputs, what was wrong said under each); a complete
request comes back as a plan only the requester sees.
"""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.context import Context
from bot.runbooks.params import ParametersInvalid, parse_assignments
from bot.runs import runbook_plans
from bot.views.runbooks import params_modal, runbooks_message
from bot.views.runs import plan_message
from handlers.ops_actions import Usage
from handlers.replies import Reply


async def list_runbooks(ctx: Context, reply: Reply, command: dict[str, Any], args: list[str]) -> None:
    service = None
    if args:
        service = args[0].lower()
        ctx.catalog.service(service)  # UnknownService with a did-you-mean
    await reply.ack(runbooks_message(ctx.catalog.runbooks, service))


async def run(ctx: Context, reply: Reply, command: dict[str, Any], args: list[str]) -> None:
    usage = "run <runbook> [name=value …] [reason]"
    if not args:
        names = ", ".join(f"`{name}`" for name in sorted(ctx.catalog.runbooks)) or "none in the catalog"
        raise Usage(usage, f"name a runbook. Runbooks: {names}.")
    name = args[0].lower()
    ctx.catalog.runbook(name)  # UnknownRunbook with a did-you-mean
    given, stray = parse_assignments(args[1:])
    await reply.ack()
    await plan_or_ask(ctx, reply, name, given, user=command["user_id"], channel=command.get("channel_id"),
                      trigger_id=command.get("trigger_id"), response_url=command.get("response_url"),
                      reason=" ".join(stray))


async def plan_or_ask(ctx: Context, reply: Reply, name: str, given: dict[str, str], *, user: str, channel: str | None,
                      trigger_id: str | None, response_url: str | None, reason: str = "") -> None:
    """Plan the runbook, or open the parameters modal when values are missing or wrong."""
    runbook = ctx.catalog.runbook(name)
    try:
        planned = await runbook_plans.plan(ctx, name, given, requested_by=user, channel_id=channel, reason=reason)
    except ParametersInvalid as exc:
        if not trigger_id:
            raise
        metadata = json.dumps({"runbook": name, "channel": channel, "reason": reason[:500], "response_url": response_url})
        try:
            await ctx.chat.open_modal(trigger_id, params_modal(name, runbook, exc.given, exc.problems,
                                                               await runbook_plans.backup_choices(ctx, runbook), metadata))
        except SlackApiError:
            raise exc from None  # the trigger lapsed (3 s): say what is wrong in words instead
        return
    await reply.ephemeral(plan_message(planned))
