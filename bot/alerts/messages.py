"""Keeping each alert group's one Slack message up to date: posted once, ever, then updated in place, with updates
coalesced so that a storm of deliveries costs one post and a few updates per group, never one per alert.

Coalescing: at most one writer per group at a time (the group's lease, across replicas). A writer renders the group
as stored, writes it, releases the lease and re-reads the group's version: if it grew meanwhile, it writes again. A
caller that finds the lease taken returns at once; the holder's re-read sees its change (the change was stored
before it tried the lease), so the latest state always reaches Slack and nobody waits. Slack's rate limits (429 with
Retry-After) are waited out by the chat port's retry handler while the lease is held; a write that still fails leaves
the group's `shown_version` behind its `version`, and the sender's retry of the delivery writes it again. Not
responsible for what changes a group (service.py) nor for how the message looks (bot/views/alerts.py).
"""

from __future__ import annotations

import logging

from bot.alerts.models import AlertGroup
from bot.context import Context
from bot.errors import StaleButton
from bot.health import HealthRun
from bot.scheduling.posting import post_once
from bot.views.alerts import alert_message

log = logging.getLogger(__name__)

_LEASE_SECONDS = 30.0


async def refresh(ctx: Context, group_id: int) -> None:
    """Post the group's message (once, ever) or update it to the group as stored now; coalesced (above)."""
    while True:
        lease = await ctx.locks.acquire(f"alert-group:{group_id}", _LEASE_SECONDS)
        if lease is None:
            return  # the holder writes again if our change came after its render
        try:
            shown = await _write_message(ctx, group_id)
        finally:
            await lease.release()
        now = await group_of(ctx, group_id)
        if now.version == shown:
            return


async def _write_message(ctx: Context, group_id: int) -> int:
    """Write the message; returns the version of the group it shows (recorded once Slack took it: a write that
    failed leaves the group behind, and the sender's retry of the delivery writes it again)."""
    group = await group_of(ctx, group_id)
    limit = ctx.catalog.alerts.silence_max if ctx.catalog.alerts is not None else None
    message = alert_message(group, await ctx.store.group_alerts(group_id), health=await _health(ctx, group),
                            waiting=await ctx.store.open_silence_request(group_id), now=ctx.clock.now(),
                            silence_max=limit)
    if group.message_ts is not None:
        await ctx.chat.update(group.channel_id, group.message_ts, message)
    else:
        ts, _ = await post_once(ctx, f"alert-group:{group_id}", group.channel_id, message)
        await ctx.store.set_group_message(group_id, ts)
    await ctx.store.set_shown_version(group_id, group.version)
    return group.version


async def group_of(ctx: Context, group_id: int) -> AlertGroup:
    group = await ctx.store.alert_group(group_id)
    if group is None:
        raise StaleButton()
    return group


async def _health(ctx: Context, group: AlertGroup) -> HealthRun | None:
    return await ctx.store.get_health_run(group.health_run_id) if group.health_run_id is not None else None
