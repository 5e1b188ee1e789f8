"""`/ops digest [name]` and `/ops schedule`: parse, then one core call each; both answer only the asker."""

from __future__ import annotations

from typing import Any

from bot import digests
from bot.catalog import suggest
from bot.context import Context
from bot.scheduling.jobs import schedule_lines
from bot.views.common import notice
from bot.views.digests import digest_message
from bot.views.schedule import schedule_message
from handlers.ops_actions import Usage
from handlers.replies import Reply


async def digest(ctx: Context, reply: Reply, command: dict[str, Any], args: list[str]) -> None:
    names = sorted(ctx.catalog.schedules.digests)
    if len(args) > 1:
        raise Usage("digest [name]", f"name one digest: {', '.join(f'`{n}`' for n in names)}.")
    name = args[0].lower() if args else ("daily" if "daily" in names else names[0] if names else "daily")
    if name not in names:
        raise digests.UnknownDigest(name, names, suggest(name, names))
    await reply.ack(notice(f"⏳ Gathering the `{name}` digest (a fresh health check runs first)…"))
    built = await digests.build(ctx, name, requested_by=command["user_id"])
    await reply.replace(digest_message(built, ctx.catalog.incidents, preview=True))


async def schedule(ctx: Context, reply: Reply, command: dict[str, Any], args: list[str]) -> None:
    await reply.ack(schedule_message(await schedule_lines(ctx), ctx.catalog.schedules.grace_minutes))
