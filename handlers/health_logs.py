"""The health report's "Last errors" (a button, or an entry of a failing line's menu): re-read a log-errors check's
logs and show its last matching lines to the person who asked. Reading and picking lines is the core's."""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.models.blocks import SectionBlock

from bot.checks.last_errors import find, last_errors
from bot.context import Context
from bot.errors import StaleButton
from bot.views import Message, escape
from bot.views.health import ERRORS_ACTION, last_errors_message
from handlers.replies import Reply, on_click


def register(app: AsyncApp, ctx: Context) -> None:
    async def clicked(reply: Reply, body: dict[str, Any], user: str, value: str) -> None:
        await show_last_errors(ctx, reply, value)

    on_click(app, ctx, ERRORS_ACTION, clicked)


async def show_last_errors(ctx: Context, reply: Reply, key: str) -> None:
    """Answer ephemerally with the last matching lines of the check `key` names (see `errors_key`), within the
    check's own timeout: a day of a busy service's logs may take a while, and the person is waiting."""
    named = find(ctx.catalog, key)
    if named is None:
        raise StaleButton("run `/ops health` again")
    service, check = named
    try:
        async with asyncio.timeout(check.timeout):
            found = await last_errors(ctx.catalog, ctx.check_deps, key)
    except TimeoutError:
        text = f"*{service}* · `{escape(check.label)}`: reading the logs timed out after {check.timeout:g} s."
        await reply.ephemeral(Message.of(text, [SectionBlock(text=text)]))
        return
    if found is None:
        raise StaleButton("run `/ops health` again")
    await reply.ephemeral(last_errors_message(found))
