"""Thin Slack listeners: parse the payload, call one core function, reply with the core's views.

No SQL, no Docker calls, no business rules here. `register` is the `opsbot.listeners` entry point.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.context import Context
from handlers import (
    actions,
    alerts,
    approvals,
    commands,
    events,
    health_logs,
    incidents,
    runbooks,
)


def register(app: AsyncApp, ctx: Context) -> None:
    events.register(app, ctx)  # first: its middleware drops retried deliveries before anything else
    commands.register(app, ctx)
    actions.register(app, ctx)
    approvals.register(app, ctx)
    incidents.register(app, ctx)
    runbooks.register(app, ctx)
    health_logs.register(app, ctx)
    alerts.register(app, ctx)
