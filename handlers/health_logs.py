"""The health report's "Last errors" (a button, or an entry of a failing line's menu): re-read a log-errors check's
logs and show its last matching lines to the person who asked. Reading and picking lines is the core's."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.checks.log_errors import last_errors
from bot.context import Context
from bot.errors import StaleButton
from bot.views.health import ERRORS_ACTION, last_errors_message
from handlers.replies import Reply, on_click


def register(app: AsyncApp, ctx: Context) -> None:
    async def clicked(reply: Reply, body: dict[str, Any], user: str, value: str) -> None:
        await show_last_errors(ctx, reply, value)

    on_click(app, ctx, ERRORS_ACTION, clicked)


async def show_last_errors(ctx: Context, reply: Reply, key: str) -> None:
    """Answer ephemerally with the last matching lines of the check `key` names (see `errors_key`)."""
    found = await last_errors(ctx.catalog, ctx.check_deps, key)
    if found is None:
        raise StaleButton("run `/ops health` again")
    await reply.ephemeral(last_errors_message(found))
