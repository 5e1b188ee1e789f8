"""An alert group's incident: the group is linked when an incident declared from it is declared, and the incident
hears of it afterwards: its alerts firing (dated at their start, so the post-mortem's impact window starts at the
group's first startsAt) and resolving, its acknowledgement, and, when every alert resolved, a timeline entry and a
"Resolve the incident?" button in the incident's channel. The incident is never resolved automatically.

Not responsible for declaring (bot/incidents/declaring.py calls `declared` once a declaration finishes), nor for
recording deliveries (service.py calls `delivered` with what a delivery changed, each change exactly once).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from bot.alerts.messages import group_of, refresh
from bot.alerts.models import AlertGroup, Recorded
from bot.alerts.payloads import Alert, AlertStatus
from bot.context import Context
from bot.incidents.models import EntryKind, Incident, TimelineEntry
from bot.views import escape
from bot.views.alerts import group_name, resolve_offer

log = logging.getLogger(__name__)

_LISTED = 5  # alerts named in one timeline entry; the rest are counted


async def declared(ctx: Context, incident: Incident) -> None:
    """Link the groups `incident` was declared from and put what they did so far on its timeline."""
    for group_id in await ctx.store.finish_group_links(incident.id or 0):
        group = await group_of(ctx, group_id)
        alerts = [stored.alert for stored in await ctx.store.group_alerts(group_id)]
        name = group_name(group, alerts)
        await _entries(ctx, incident, name, alerts)
        if group.acked_by:
            await _add(ctx, incident, group.acked_at or ctx.clock.now(),
                       f"Alert *{escape(name)}* acknowledged by <@{group.acked_by}>", group.acked_by)
        if group.status is AlertStatus.RESOLVED:
            await _all_resolved(ctx, incident, group, name)
        await refresh(ctx, group_id)


async def delivered(ctx: Context, recorded: Recorded) -> None:
    """What a delivery changed, on the linked incident's timeline (never fails the delivery)."""
    group = recorded.group
    if group.incident_id is None or not recorded.new:
        return
    try:
        incident = await ctx.store.get_incident(group.incident_id)
        if incident is None:
            return
        alerts = [stored.alert for stored in await ctx.store.group_alerts(group.id)]
        name = group_name(group, alerts)
        await _entries(ctx, incident, name, list(recorded.new))
        if recorded.turned is AlertStatus.FIRING and group.flaps:
            await _add(ctx, incident, ctx.clock.now(), f"Alert *{escape(name)}* fired again (flap {group.flaps})", None)
        if recorded.turned is AlertStatus.RESOLVED:
            await _all_resolved(ctx, incident, group, name)
    except Exception:
        log.exception("could not tell incident %s about alert group %s", group.incident_id, group.id)


async def acknowledged(ctx: Context, group: AlertGroup, user: str) -> None:
    if group.incident_id is None:
        return
    incident = await ctx.store.get_incident(group.incident_id)
    if incident is not None:
        alerts = [stored.alert for stored in await ctx.store.group_alerts(group.id)]
        await _add(ctx, incident, ctx.clock.now(), f"Alert *{escape(group_name(group, alerts))}* acknowledged by "
                                                   f"<@{user}>", user)


async def _entries(ctx: Context, incident: Incident, name: str, alerts: Sequence[Alert]) -> None:
    """One entry for the alerts firing (at the first start) and one for those resolved (at the last end)."""
    firing = [a for a in alerts if a.status is AlertStatus.FIRING]
    resolved = [a for a in alerts if a.status is AlertStatus.RESOLVED]
    if firing:
        await _add(ctx, incident, min(a.starts_at for a in firing),
                   f"Alert *{escape(name)}* firing: {_listed(firing)}", None)
    if resolved:
        await _add(ctx, incident, max(a.ends_at or ctx.clock.now() for a in resolved),
                   f"Alert *{escape(name)}* resolved: {_listed(resolved)}", None)


async def _all_resolved(ctx: Context, incident: Incident, group: AlertGroup, name: str) -> None:
    await _add(ctx, incident, group.resolved_at or ctx.clock.now(),
               f"Every alert of *{escape(name)}* resolved", None)
    if incident.open and incident.channel_id:
        await ctx.chat.post(incident.channel_id, resolve_offer(incident, name))


def _listed(alerts: Sequence[Alert]) -> str:
    named = "; ".join(escape(a.summary) for a in alerts[:_LISTED])
    return named + (f" and {len(alerts) - _LISTED} more" if len(alerts) > _LISTED else "")


async def _add(ctx: Context, incident: Incident, at: datetime, text: str, author: str | None) -> None:
    assert incident.id is not None  # stored
    await ctx.store.add_entry(TimelineEntry(incident_id=incident.id, at=at, kind=EntryKind.ALERT, text=text[:3000],
                                            author=author))
