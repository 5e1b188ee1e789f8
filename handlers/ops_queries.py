"""`/ops query` (the catalog's named queries) and `/ops query <name>` (run one, rows posted in the channel).

No approval: a named query only reads (judged at load, run in a READ ONLY transaction that is rolled back). Not
responsible for running it (`bot.queries`) nor for the table (`bot.views.queries`).
"""

from __future__ import annotations

from typing import Any

from bot.catalog import suggest
from bot.context import Context
from bot.errors import OpsbotError
from bot.queries import QueryFailed, run_named
from bot.views.common import notice
from bot.views.queries import csv_text, failed_message, needs_csv, queries_message, query_message
from handlers.ops_actions import Usage
from handlers.replies import Reply

USAGE = "query [name]"


class UnknownQuery(OpsbotError):
    def __init__(self, given: str, valid: list[str], suggestion: str | None) -> None:
        self.given, self.valid, self.suggestion = given, valid, suggestion
        hint = f" Did you mean `{suggestion}`?" if suggestion else ""
        listing = ", ".join(f"`{v}`" for v in valid[:25]) if valid else "none (the catalog has no `queries:`)"
        super().__init__(f"No query named `{given}`.{hint} Queries: {listing} (`/ops query` lists them).")


async def query(ctx: Context, reply: Reply, command: dict[str, Any], args: list[str]) -> None:
    queries = ctx.catalog.queries
    if not args:
        await reply.ack(queries_message(queries))
        return
    if len(args) > 1:
        raise Usage(USAGE, "name one query; queries take no values (they are written out in the catalog).")
    name = args[0].lower()
    if name not in queries:
        valid = sorted(queries)
        raise UnknownQuery(name, valid, suggest(name, valid))
    chosen = queries[name]
    await reply.ack(notice(f"⏳ Running query `{name}` on {chosen.service} (read-only)…"))
    result = await run_named(chosen, ctx.environ)
    if isinstance(result, QueryFailed):
        await reply.ephemeral(failed_message(name, chosen, result))
        return
    channel = command.get("channel_id")
    uploaded = False
    if needs_csv(result) and channel:
        stamp = ctx.clock.now().strftime("%Y%m%d-%H%M%S")
        await ctx.chat.upload(channel, filename=f"{name}-{stamp}.csv", title=f"Query {name}",
                              content=csv_text(result.columns, result.rows),
                              comment=f"All {len(result.rows)} rows of query `{name}`, run by <@{command['user_id']}>.")
        uploaded = True
    message = query_message(name, chosen, result, uploaded=uploaded)
    if reply.response_url:  # answers in the channel even where opsbot is not a member (the CSV needs membership)
        await ctx.chat.respond(reply.response_url, message, in_channel=True)
    elif channel:
        await ctx.chat.post(channel, message)
    else:
        await reply.ephemeral(message)
