"""Buttons. The button's value is an id the core looks up, never a command to run."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.context import Context
from bot.reports import rerun_health
from bot.views.health import RERUN_ACTION
from handlers.payloads import id_of
from handlers.replies import Reply, channel_of, on_click


def register(app: AsyncApp, ctx: Context) -> None:
    async def rerun(reply: Reply, body: dict[str, Any], user: str, value: str) -> None:
        # A button's ack carries nothing; the message itself shows progress.
        await rerun_health(ctx, id_of(value, "run `/ops health` again"), requested_by=user, channel_id=channel_of(body),
                           response_url=body["response_url"])

    on_click(app, ctx, RERUN_ACTION, rerun)
