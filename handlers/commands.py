"""Slash commands: `/ops …` (and `/incident`, answered until incidents land). Parse, validate, hand to the core."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.catalog import suggest
from bot.context import Context
from bot.errors import UnknownSubcommand
from bot.health import resolve_scope
from bot.reports import describe_scope, report_health
from bot.views.common import notice
from bot.views.help import help_message
from handlers import alerts, ops_actions, ops_queries, ops_runbooks, ops_schedule
from handlers.payloads import Command, read
from handlers.replies import Reply, for_command, handle

Subcommand = Callable[[Context, Reply, dict[str, Any], list[str]], Awaitable[None]]


async def _help(ctx: Context, reply: Reply, command: dict[str, Any], args: list[str]) -> None:
    await reply.ack(help_message("/ops", [(usage, text) for _, usage, text in _TABLE], ctx.catalog.service_names,
                                 notes=[("Incidents: `/incident declare P1 <title>` opens a channel; "
                                         "`/incident help` lists the rest.")]))


async def _health(ctx: Context, reply: Reply, command: dict[str, Any], args: list[str]) -> None:
    scope = resolve_scope(ctx.catalog, args)  # unknown names are refused before anything runs
    await reply.ack(notice(f"⏳ Running {describe_scope(ctx, scope)}…"))
    await report_health(
        ctx,
        scope,
        requested_by=command["user_id"],
        channel_id=command.get("channel_id"),
        response_url=command["response_url"],
    )


_TABLE: list[tuple[Subcommand, str, str]] = [
    (_health, "health [service …|all]", "Run the health checks (all services by default) and post the result here."),
    (ops_actions.restart, "restart <service> [reason]", "Plan a restart; approved ones run and report each step."),
    (ops_actions.rollback, "rollback <service> [to <revision|tag>] [reason]",
     "Plan a rollback to the previous (or a given) revision."),
    (ops_actions.backup, "backup <service> [reason]", "Plan a backup (verified before it counts)."),
    (ops_actions.backups, "backups <service>", "List backups: id, time, size, checksum, verified, age."),
    (ops_actions.restore, "restore <service> <backup-id|latest> [reason]", "Plan a restore (a safety backup is taken first)."),
    (ops_actions.history, "history [service]", "Recent actions (all services, or one with its deploy revisions)."),
    (ops_actions.approvals, "approvals", "Requests waiting for approval."),
    (ops_runbooks.list_runbooks, "runbooks [service]", "The catalog's runbooks (those touching a service)."),
    (ops_runbooks.run, "run <runbook> [name=value …] [reason]", "Plan a runbook: every step shown before approval."),
    (ops_queries.query, "query [name]", "List the named read-only queries, or run one and post its rows here."),
    (ops_schedule.digest, "digest [daily|weekly|name]", "Preview a digest now, only to you."),
    (ops_schedule.schedule, "schedule", "Scheduled digests and backups, their next run and last result."),
    (alerts.list_alerts, "alerts", "Alert groups firing now, with links to their messages."),
    (_help, "help", "This list."),
]
SUBCOMMANDS: dict[str, Subcommand] = {usage.split()[0]: fn for fn, usage, _ in _TABLE}


def register(app: AsyncApp, ctx: Context) -> None:
    @app.command("/ops")
    async def ops(ack: Any, command: dict[str, Any]) -> None:
        inbound, reply, text = for_command(ctx, ack, command)

        async def work() -> None:
            read(Command, command, "command")  # every field the subcommands read is there, as text
            words = text.split()
            name = words[0].lower() if words else "help"
            subcommand = SUBCOMMANDS.get(name)
            if subcommand is None:
                raise UnknownSubcommand("/ops", name, list(SUBCOMMANDS), suggest(name, list(SUBCOMMANDS)))
            await subcommand(ctx, reply, command, words[1:])

        # Owned by the core's task set: the flow acks within milliseconds and goes on after Slack has its answer.
        ctx.tasks.spawn(handle(ctx, inbound, reply, work), name=f"/ops {text[:40]}")
