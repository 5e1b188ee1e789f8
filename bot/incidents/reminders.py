"""What nags when nobody acts: an incident not acknowledged within its severity's response time pings the
escalation group; an open P1/P2 with no status update for a while nudges its commander. State is in the
incident's row (ack_reminded_at, nudged_at), so a restart neither repeats nor forgets a reminder."""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.context import Context
from bot.incidents.models import EntryKind, Incident
from bot.incidents.timeline import append
from bot.log_context import bound
from bot.runs.policy import mention
from bot.views.incidents import reminder

log = logging.getLogger(__name__)


async def remind_due(ctx: Context) -> int:
    """Send every reminder that is due; returns how many were sent."""
    sent = 0
    for incident in await ctx.store.incidents(open_only=True, limit=200):
        try:
            with bound(incident=incident.key):
                sent += await _acknowledgement(ctx, incident) + await _update(ctx, incident)
        except Exception:
            log.exception("reminders for %s failed; will try again", incident.key)
    return sent


async def _acknowledgement(ctx: Context, incident: Incident) -> int:
    settings = ctx.catalog.incidents
    severity = settings.severity(incident.severity)
    if incident.acknowledged_at or incident.ack_reminded_at or severity is None or not incident.channel_id:
        return 0
    if ctx.clock.now() < incident.declared_at + timedelta(minutes=severity.response_minutes):
        return 0
    # Claim the reminder first: on two replicas, only one sends it.
    if not await ctx.store.update_incident(incident.id or 0, unless_set="ack_reminded_at", ack_reminded_at=ctx.clock.now()):
        return 0
    who = mention(settings.escalation) if settings.escalation else f"<@{incident.declared_by}>"
    text = f"not acknowledged after {severity.response_minutes:g} min ({severity.name} target). {who}, please take a look."
    try:
        if settings.escalation:  # a group mentioned in a channel it is not in would not hear it
            members = [m for group in settings.escalation for m in
                       ((await ctx.chat.usergroup_members(group)) if group.startswith("S") else {group})]
            await ctx.chat.invite(incident.channel_id, sorted(set(members)))
        await ctx.chat.post(incident.channel_id, reminder(incident, text))
    except BaseException:
        # Not sent: release the claim so the next pass (here or on another replica) sends it.
        await ctx.store.update_incident(incident.id or 0, ack_reminded_at=None)
        raise
    await append(ctx, incident, EntryKind.REMINDER, f"Reminder: {text}", None)
    return 1


async def _update(ctx: Context, incident: Incident) -> int:
    settings = ctx.catalog.incidents
    if incident.severity.upper() not in {s.upper() for s in settings.nudge_severities} or not incident.channel_id:
        return 0
    interval = timedelta(minutes=settings.update_interval_minutes)
    last = max(t for t in (incident.last_update_at, incident.nudged_at, incident.declared_at) if t is not None)
    now = ctx.clock.now()
    if now - last < interval:
        return 0
    # Compare-and-set on nudged_at so replicas do not both nudge for the same quiet spell.
    if incident.nudged_at is None:
        claimed = await ctx.store.update_incident(incident.id or 0, unless_set="nudged_at", nudged_at=now)
    else:
        claimed = await ctx.store.update_incident_nudge(incident.id or 0, previous=incident.nudged_at, at=now)
    if not claimed:
        return 0
    who = f"<@{incident.commander}>" if incident.commander else f"<@{incident.declared_by}>"
    minutes = int((now - (incident.last_update_at or incident.declared_at)).total_seconds() // 60)
    text = f"no status update for {minutes} min. {who}, a quick `/incident status …` keeps everyone in step."
    try:
        await ctx.chat.post(incident.channel_id, reminder(incident, text))
    except BaseException:
        await ctx.store.update_incident(incident.id or 0, nudged_at=incident.nudged_at)  # let the next pass retry
        raise
    return 1
