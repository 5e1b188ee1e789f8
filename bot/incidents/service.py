"""Incident flows: acknowledge, roles, severity, status, notes, pins, follow-ups, resolve and reopen (declaring,
step by step and resumable, is bot/incidents/declaring.py). Each change is a row first (incident and
timeline), then the channel, its topic, the pinned header and the announcement are brought in line."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from bot.audit import AuditEntry, Outcome
from bot.catalog import suggest
from bot.context import Context
from bot.errors import OpsbotError
from bot.incidents.metrics import format_duration, metrics
from bot.incidents.models import ActionItem, EntryKind, Incident, IncidentStatus, Role, TimelineEntry
from bot.incidents.timeline import append
from bot.log_context import annotate
from bot.runs.policy import NotAllowed
from bot.views import quiet
from bot.views.incidents import announcement, header, notice_in_channel, status_update

log = logging.getLogger(__name__)

PINNED_REACTION = "white_check_mark"  # opsbot's answer to a 📌: the message is on the timeline


class IncidentInputError(OpsbotError):
    """Bad input to an incident command: the message says what is valid."""


class NotAnIncidentChannel(OpsbotError):
    pass


class IncidentNotFound(OpsbotError):
    pass


def severity_of(ctx: Context, name: str) -> str:
    settings = ctx.catalog.incidents
    found = settings.severity(name)
    if found is None:
        valid = [s.name for s in settings.severities]
        hint = suggest(name.upper(), valid)
        raise IncidentInputError(f"`{name}` is not a severity." + (f" Did you mean `{hint}`?" if hint else "")
                                 + " Valid: " + ", ".join(f"`{s.name}` ({s.label})" for s in settings.severities) + ".")
    return found.name


def status_of(name: str) -> IncidentStatus:
    try:
        return IncidentStatus(name.lower())
    except ValueError:
        raise IncidentInputError(f"`{name}` is not a status. Valid: " + ", ".join(f"`{s.value}`" for s in IncidentStatus)
                                 + ".") from None


async def for_channel(ctx: Context, channel_id: str | None) -> Incident:
    incident = await ctx.store.incident_by_channel(channel_id) if channel_id else None
    if incident is None:
        open_ones = await ctx.store.incidents(open_only=True, limit=10)
        listing = ", ".join(f"{i.key} <#{i.channel_id}>" for i in open_ones if i.channel_id) or "none open"
        raise NotAnIncidentChannel(f"This works in an incident's channel. Open incidents: {listing}. "
                                   "To start one: `/incident declare P1 <title>`.")
    annotate(incident=incident.key)  # the request is about this incident from here on
    return incident


async def get(ctx: Context, incident_id: int) -> Incident:
    incident = await ctx.store.get_incident(incident_id)
    if incident is None:
        raise IncidentNotFound(f"There is no incident INC-{incident_id}.")
    annotate(incident=incident.key)
    return incident


# --- declaring ------------------------------------------------------------------------------------------


def check_declaration(ctx: Context, title: str, severity: str) -> str:
    """The severity's catalog name, once both it and the title are valid: asked before anything is said or made."""
    severity = severity_of(ctx, severity)
    if not title.strip():
        raise IncidentInputError(f"An incident needs a title: `/incident declare {severity} checkout is failing`.")
    return severity


# --- changes ----------------------------------------------------------------------------------------------


async def acknowledge(ctx: Context, incident: Incident, user: str) -> str:
    now = ctx.clock.now()
    if not await ctx.store.update_incident(incident.id or 0, unless_set="acknowledged_at", acknowledged_at=now,
                                           acknowledged_by=user):
        fresh = await get(ctx, incident.id or 0)
        return f"Already acknowledged by <@{fresh.acknowledged_by}>."
    await append(ctx, incident, EntryKind.ACKNOWLEDGED, "Acknowledged", user)
    await _tell_channel(ctx, incident, f"👀 <@{user}> acknowledged {incident.key}.")
    await refresh(ctx, incident.id or 0)
    return "Acknowledged."


async def assign_role(ctx: Context, incident: Incident, role: Role, user: str, by: str) -> None:
    for _ in range(10):  # compare-and-set: a role given at the same moment elsewhere is not overwritten
        current = (await get(ctx, incident.id or 0)).roles
        if current.get(role.value) == user:
            raise IncidentInputError(f"<@{user}> is already {role.value} of {incident.key}.")
        if await ctx.store.replace_roles(incident.id or 0, current, {**current, role.value: user}):
            break
    else:
        raise IncidentInputError("The roles changed under us ten times in a row; try again.")
    await append(ctx, incident, EntryKind.ROLE, f"<@{user}> is {role.value}", by)
    # Everyone in the channel needs to know who leads now, not only the person who pressed the button.
    before = current.get(role.value)
    given = "" if by == user else f" (by <@{by}>)"
    if role is Role.COMMANDER:
        handover = f", taking over from <@{before}>" if before else ""
        text = f"🧑‍🚒 <@{user}> is now commander of {incident.key}{handover}{given}."
    else:
        text = f"🧑‍🚒 <@{user}> is now {role.value} of {incident.key}" + (f" (was <@{before}>)" if before else "") + f"{given}."
    await _tell_channel(ctx, incident, text)
    await refresh(ctx, incident.id or 0)


async def set_severity(ctx: Context, incident: Incident, name: str, user: str) -> None:
    severity = severity_of(ctx, name)
    if severity == incident.severity:
        raise IncidentInputError(f"{incident.key} is already {severity}.")
    await ctx.store.update_incident(incident.id or 0, severity=severity, last_update_at=ctx.clock.now())
    await append(ctx, incident, EntryKind.SEVERITY, f"Severity {incident.severity} → {severity}", user)
    await _broadcast(ctx, await get(ctx, incident.id or 0), f"Severity changed to *{severity}*", user)


async def set_status(ctx: Context, incident: Incident, status: IncidentStatus, summary: str, user: str) -> None:
    if status is IncidentStatus.RESOLVED:
        await resolve(ctx, incident, summary, user)
        return
    if not incident.open:
        raise IncidentInputError(f"{incident.key} is resolved; `/incident reopen` first.")
    now = ctx.clock.now()
    fields: dict[str, Any] = {"status": status, "last_update_at": now, "summary": summary[:3000] or incident.summary}
    if status is IncidentStatus.MONITORING and incident.mitigated_at is None:
        fields["mitigated_at"] = now
    await ctx.store.update_incident(incident.id or 0, **fields)
    text = f"Status {incident.status.value} → {status.value}" + (f": {summary}" if summary else "")
    await append(ctx, incident, EntryKind.STATUS, text, user)
    await _broadcast(ctx, await get(ctx, incident.id or 0), f"Status: *{status.title}*" + (f"\n{summary}" if summary else ""),
                     user)


async def add_note(ctx: Context, incident: Incident, text: str, user: str) -> None:
    text = text.strip()
    if not text:
        raise IncidentInputError("A note needs text: `/incident note <what happened>`.")
    await append(ctx, incident, EntryKind.NOTE, text, user)


async def resolve(ctx: Context, incident: Incident, summary: str, user: str) -> None:
    if not incident.open:
        raise IncidentInputError(f"{incident.key} is already resolved.")
    now = ctx.clock.now()
    mitigated: dict[str, Any] = {"mitigated_at": now} if incident.mitigated_at is None else {}
    await ctx.store.update_incident(incident.id or 0, status=IncidentStatus.RESOLVED, resolved_at=now, last_update_at=now,
                                    summary=summary[:3000] or incident.summary, **mitigated)
    await append(ctx, incident, EntryKind.RESOLVED, "Resolved" + (f": {summary}" if summary else ""), user)
    await _broadcast(ctx, await get(ctx, incident.id or 0), "✅ *Resolved*" + (f"\n{summary}" if summary else "")
                     + "\nNext: `/incident postmortem` within 48 hours.", user)


async def reopen(ctx: Context, incident: Incident, user: str) -> None:
    if incident.open:
        raise IncidentInputError(f"{incident.key} is still open.")
    await ctx.store.update_incident(incident.id or 0, status=IncidentStatus.INVESTIGATING, resolved_at=None,
                                    last_update_at=ctx.clock.now())
    await append(ctx, incident, EntryKind.REOPENED, "Reopened", user)
    await _broadcast(ctx, await get(ctx, incident.id or 0), "🔁 *Reopened*: investigating again", user)


async def add_follow_up(ctx: Context, incident: Incident, text: str, owner: str | None, due: date | None,
                        user: str) -> ActionItem:
    item = ActionItem(incident.id or 0, text.strip()[:500], user, ctx.clock.now(), owner=owner, due=due)
    item = replace(item, id=await ctx.store.add_action_item(item))
    who = f" — <@{owner}>" if owner else ""
    await append(ctx, incident, EntryKind.FOLLOW_UP, f"Follow-up: {item.text}{who}" + (f", due {due.isoformat()}" if due else ""),
                 user)
    return item


# --- corrections and follow-ups ------------------------------------------------------------------------


async def correct_entry(ctx: Context, entry_id: int, user: str, *, text: str | None = None,
                        at: datetime | None = None, delete: bool = False) -> Incident:
    """The commander fixes the record: an entry's text or time, or removes it. The change is audited."""
    entry = await ctx.store.get_entry(entry_id)
    if entry is None or entry.deleted:
        raise IncidentInputError("That timeline entry is gone; open the timeline again.")
    incident = await get(ctx, entry.incident_id)
    if user != incident.commander:
        raise NotAllowed(f"Only the commander (<@{incident.commander}>) can correct the timeline of {incident.key}.")
    if delete:
        await ctx.store.delete_entry(entry_id, by=user)
        change = f"deleted entry {entry_id} ({entry.at:%Y-%m-%d %H:%M} UTC): {entry.text[:200]}"
    else:
        if text is not None and not text.strip():
            raise IncidentInputError("An entry needs text; to remove it, delete it.")
        await ctx.store.edit_entry(entry_id, by=user, text=text.strip() if text else None, at=at)
        change = (f"edited entry {entry_id}: {entry.text[:200]!r} at {entry.at:%Y-%m-%d %H:%M} UTC → "
                  f"{(text or entry.text)[:200]!r} at {(at or entry.at):%Y-%m-%d %H:%M} UTC")
    await ctx.store.record_audit(AuditEntry(at=ctx.clock.now(), kind="incident", name=incident.key, outcome=Outcome.OK,
                                            actor_id=user, channel_id=incident.channel_id, args="timeline correction",
                                            detail=change))
    return incident


async def entry_for_correction(ctx: Context, entry_id: int, user: str) -> TimelineEntry:
    """Before opening the edit form: the entry exists and `user` is the commander."""
    entry = await ctx.store.get_entry(entry_id)
    if entry is None or entry.deleted:
        raise IncidentInputError("That timeline entry is gone; open the timeline again.")
    incident = await get(ctx, entry.incident_id)
    if user != incident.commander:
        raise NotAllowed(f"Only the commander (<@{incident.commander}>) can correct the timeline of {incident.key}.")
    return entry


def metrics_line(incident: Incident, entries: Sequence[TimelineEntry]) -> str:
    found = metrics(incident, entries)
    return (f"Time to acknowledge *{format_duration(found.time_to_acknowledge)}* · to mitigate "
            f"*{format_duration(found.time_to_mitigate)}*"
            f" · to resolve *{format_duration(found.time_to_resolve)}* · impact window *{format_duration(found.impact_window)}*")


async def finish_follow_up(ctx: Context, incident: Incident, item_id: int, user: str) -> str:
    items = {item.id: item for item in await ctx.store.action_items(incident.id or 0)}
    if item_id not in items:
        raise IncidentInputError(f"{incident.key} has no follow-up #{item_id}.")
    if not await ctx.store.finish_action_item(item_id, ctx.clock.now()):
        return "Already done."
    await append(ctx, incident, EntryKind.FOLLOW_UP, f"Follow-up done: {items[item_id].text}", user)
    return "Marked done."


# --- pins -------------------------------------------------------------------------------------------------


async def pin(ctx: Context, channel: str, ts: str, user: str) -> bool:
    """A message marked with the pin reaction joins its incident's timeline (once). False outside incidents."""
    incident = await ctx.store.incident_by_channel(channel)
    if incident is None:
        return False
    found = await ctx.chat.message_text(channel, ts)
    text = quiet(found[0]) if found else "(message not readable)"
    author = (found[1] if found else None) or user
    await append(ctx, incident, EntryKind.PIN, text, author, permalink=await ctx.chat.permalink(channel, ts), source_ts=ts)
    # The 📌 alone says nothing about whether opsbot saw it: a reaction of its own says "on the timeline".
    await ctx.chat.react(channel, ts, PINNED_REACTION)
    return True


async def unpin(ctx: Context, channel: str, ts: str, user: str) -> bool:
    incident = await ctx.store.incident_by_channel(channel)
    removed = incident is not None and await ctx.store.delete_pin(incident.id or 0, ts, by=user)
    if removed:
        await ctx.chat.unreact(channel, ts, PINNED_REACTION)
    return removed


# --- keeping Slack in line with the store -----------------------------------------------------------------


async def refresh(ctx: Context, incident_id: int) -> None:
    """Re-render the pinned header, the topic and the announcement from the stored incident."""
    incident = await get(ctx, incident_id)
    try:
        if incident.channel_id and incident.header_ts:
            await ctx.chat.update(incident.channel_id, incident.header_ts,
                                  header(incident, ctx.catalog.incidents, _runbooks(ctx, incident)))
        await _set_topic(ctx, incident)
        if incident.announce_channel and incident.announce_ts:
            await ctx.chat.update(incident.announce_channel, incident.announce_ts, announcement(incident, ctx.catalog.incidents))
    except Exception:
        log.exception("could not bring Slack in line with %s", incident.key)


async def _set_topic(ctx: Context, incident: Incident) -> None:
    if incident.channel_id:
        commander = f"<@{incident.commander}>" if incident.commander else "no commander"
        await ctx.chat.set_topic(incident.channel_id,
                                 f"{incident.key} · {incident.severity} · {incident.status.title} · Commander: {commander}")


async def _tell_channel(ctx: Context, incident: Incident, text: str) -> None:
    """A change everyone in the incident channel should see (an acknowledgement, a new commander): a post there.
    The change is already stored; a post that fails is logged, not raised."""
    if not incident.channel_id:
        return
    try:
        await ctx.chat.post(incident.channel_id, notice_in_channel(text))
    except Exception:
        log.exception("could not tell the channel of %s: %s", incident.key, text)


async def _broadcast(ctx: Context, incident: Incident, text: str, user: str) -> None:
    """A status-like update: posted in the incident channel and mirrored under the announcement."""
    message = status_update(incident, text, user)
    if incident.channel_id:
        await ctx.chat.post(incident.channel_id, message)
    if incident.announce_channel and incident.announce_ts:
        try:
            await ctx.chat.post(incident.announce_channel, message, thread_ts=incident.announce_ts)
        except OpsbotError as exc:
            log.warning("could not mirror an update of %s: %s", incident.key, exc)
    await refresh(ctx, incident.id or 0)


def _runbooks(ctx: Context, incident: Incident) -> list[str]:
    """The runbooks the incident's services offer, each once, in catalog order."""
    offered = ctx.catalog.offers(list(incident.services))
    return list(dict.fromkeys(name for names in offered.values() for name in names))
