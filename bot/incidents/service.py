"""Incident flows: declare (channel, invites, topic, pinned header, announcement), acknowledge, roles,
severity, status, notes, pins, follow-ups, resolve and reopen. Each change is a row first (incident and
timeline), then the channel, its topic, the pinned header and the announcement are brought in line."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from bot.actions.policy import NotAllowed
from bot.audit import AuditEntry, Outcome
from bot.catalog import suggest
from bot.chat import NameTaken
from bot.context import Context
from bot.errors import OpsbotError
from bot.incidents import naming
from bot.incidents.metrics import format_duration, metrics
from bot.incidents.models import ActionItem, EntryKind, Incident, IncidentStatus, Role, TimelineEntry
from bot.incidents.timeline import append
from bot.views import escape, quiet
from bot.views.incidents import announcement, header, status_update

log = logging.getLogger(__name__)

NAME_ATTEMPTS = 20


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
        raise IncidentInputError(f"`{name}` is not a status. Valid: " + ", ".join(f"`{s.value}`" for s in IncidentStatus) + ".") from None


async def for_channel(ctx: Context, channel_id: str | None) -> Incident:
    incident = await ctx.store.incident_by_channel(channel_id) if channel_id else None
    if incident is None:
        open_ones = await ctx.store.incidents(open_only=True, limit=10)
        listing = ", ".join(f"{i.key} <#{i.channel_id}>" for i in open_ones if i.channel_id) or "none open"
        raise NotAnIncidentChannel(f"This works in an incident's channel. Open incidents: {listing}. "
                                   "To start one: `/incident declare P1 <title>`.")
    return incident


async def get(ctx: Context, incident_id: int) -> Incident:
    incident = await ctx.store.get_incident(incident_id)
    if incident is None:
        raise IncidentNotFound(f"There is no incident INC-{incident_id}.")
    return incident


# --- declaring ------------------------------------------------------------------------------------------


async def declare(ctx: Context, *, title: str, severity: str, declared_by: str, services: Sequence[str] = (),
                  description: str = "") -> tuple[Incident, list[str]]:
    """Declare an incident; returns it and the steps that did not work (invites, pin, topic, announcement),
    which are worth telling the declarer but not worth failing the declaration for."""
    title = " ".join(title.split())
    if not title:
        raise IncidentInputError("An incident needs a title: `/incident declare P1 checkout is failing`.")
    severity = severity_of(ctx, severity)
    for name in services:
        ctx.catalog.service(name)
    now = ctx.clock.now()
    incident = Incident(title=title[:150], severity=severity, declared_by=declared_by, declared_at=now,
                        services=tuple(dict.fromkeys(services)), description=description[:3000],
                        roles={Role.COMMANDER.value: declared_by}, last_update_at=now)
    incident = replace(incident, id=await ctx.store.create_incident(incident))
    await append(ctx, incident, EntryKind.DECLARED, f"Declared {severity}: {escape(incident.title)}", declared_by)
    try:
        channel_id, name = await _create_channel(ctx, incident)
    except BaseException:
        await ctx.store.delete_incident(incident.id or 0)  # no channel, no incident: nothing half-made stays behind
        raise
    await ctx.store.update_incident(incident.id or 0, channel_id=channel_id, channel_name=name)
    incident = replace(incident, channel_id=channel_id, channel_name=name)

    problems: list[str] = []
    refused = await _attempt(problems, "invite people", _invite(ctx, incident))
    if refused:
        problems.append("could not invite " + ", ".join(f"<@{u}>" for u in refused))
    ts = await _attempt(problems, "post the incident header", ctx.chat.post(channel_id, header(incident, ctx.catalog.incidents, _runbooks(ctx, incident))))
    if ts:
        await ctx.store.update_incident(incident.id or 0, header_ts=ts)
        incident = replace(incident, header_ts=ts)
        await _attempt(problems, "pin the header", ctx.chat.pin(channel_id, ts))
    await _attempt(problems, "set the channel topic", _set_topic(ctx, incident))
    announce = ctx.catalog.incidents.announce_channel
    if announce:
        announce_ts = await _attempt(problems, f"announce it in <#{announce}>", ctx.chat.post(announce, announcement(incident, ctx.catalog.incidents)))
        if announce_ts:
            await ctx.store.update_incident(incident.id or 0, announce_channel=announce, announce_ts=announce_ts)
            incident = replace(incident, announce_channel=announce, announce_ts=announce_ts)
    return incident, problems


async def _attempt(problems: list[str], what: str, work: Any) -> Any:
    try:
        return await work
    except Exception as exc:
        log.warning("declaring: could not %s: %s", what, exc)
        reason = str(exc) if isinstance(exc, OpsbotError) else type(exc).__name__
        problems.append(f"could not {what} ({reason})")
        return None


async def _invite(ctx: Context, incident: Incident) -> list[str]:
    return await ctx.chat.invite(incident.channel_id or "", await _people_to_invite(ctx, incident))


async def _create_channel(ctx: Context, incident: Incident) -> tuple[str, str]:
    settings = ctx.catalog.incidents
    base = naming.channel_name(settings.channel_name, incident_id=incident.id or 0, severity=incident.severity,
                               title=incident.title, at=incident.declared_at)
    for attempt in range(1, NAME_ATTEMPTS + 1):
        name = naming.with_suffix(base, attempt)
        try:
            return await ctx.chat.create_channel(name, private=settings.private_channels), name
        except NameTaken:
            continue
    raise IncidentInputError(f"Channels #{base} to #{naming.with_suffix(base, NAME_ATTEMPTS)} all exist; "
                             "change `incidents.channel_name` in the catalog.")


async def _people_to_invite(ctx: Context, incident: Incident) -> list[str]:
    ids: list[str] = [incident.declared_by, *ctx.catalog.incidents.responders]
    for service in incident.services:
        ids.extend(ctx.catalog.services[service].owners)
    people: list[str] = []
    for value in ids:
        members = [value] if not value.startswith("S") else sorted(await ctx.chat.usergroup_members(value))
        people.extend(m for m in members if m not in people)
    return people


# --- changes ----------------------------------------------------------------------------------------------


async def acknowledge(ctx: Context, incident: Incident, user: str) -> str:
    now = ctx.clock.now()
    if not await ctx.store.update_incident(incident.id or 0, unless_set="acknowledged_at", acknowledged_at=now, acknowledged_by=user):
        fresh = await get(ctx, incident.id or 0)
        return f"Already acknowledged by <@{fresh.acknowledged_by}>."
    await append(ctx, incident, EntryKind.ACKNOWLEDGED, "Acknowledged", user)
    await refresh(ctx, incident.id or 0)
    return "Acknowledged."


async def assign_role(ctx: Context, incident: Incident, role: Role, user: str, by: str) -> None:
    for _ in range(10):  # compare-and-set: a role given at the same moment elsewhere is not overwritten
        current = (await get(ctx, incident.id or 0)).roles
        if await ctx.store.replace_roles(incident.id or 0, current, {**current, role.value: user}):
            break
    else:
        raise IncidentInputError("The roles changed under us ten times in a row; try again.")
    await append(ctx, incident, EntryKind.ROLE, f"<@{user}> is {role.value}", by)
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
    fields: dict[str, object] = {"status": status, "last_update_at": now, "summary": summary[:3000] or incident.summary}
    if status is IncidentStatus.MONITORING and incident.mitigated_at is None:
        fields["mitigated_at"] = now
    await ctx.store.update_incident(incident.id or 0, **fields)
    text = f"Status {incident.status.value} → {status.value}" + (f": {summary}" if summary else "")
    await append(ctx, incident, EntryKind.STATUS, text, user)
    await _broadcast(ctx, await get(ctx, incident.id or 0), f"Status: *{status.title}*" + (f"\n{summary}" if summary else ""), user)


async def add_note(ctx: Context, incident: Incident, text: str, user: str) -> None:
    text = text.strip()
    if not text:
        raise IncidentInputError("A note needs text: `/incident note <what happened>`.")
    await append(ctx, incident, EntryKind.NOTE, text, user)


async def resolve(ctx: Context, incident: Incident, summary: str, user: str) -> None:
    if not incident.open:
        raise IncidentInputError(f"{incident.key} is already resolved.")
    now = ctx.clock.now()
    await ctx.store.update_incident(incident.id or 0, status=IncidentStatus.RESOLVED, resolved_at=now, last_update_at=now,
                                    summary=summary[:3000] or incident.summary,
                                    **({"mitigated_at": now} if incident.mitigated_at is None else {}))
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


async def add_follow_up(ctx: Context, incident: Incident, text: str, owner: str | None, due: date | None, user: str) -> ActionItem:
    item = ActionItem(incident.id or 0, text.strip()[:500], user, ctx.clock.now(), owner=owner, due=due)
    item = replace(item, id=await ctx.store.add_action_item(item))
    who = f" — <@{owner}>" if owner else ""
    await append(ctx, incident, EntryKind.FOLLOW_UP, f"Follow-up: {item.text}{who}" + (f", due {due.isoformat()}" if due else ""), user)
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
                                            actor_id=user, channel_id=incident.channel_id, args="timeline correction", detail=change))
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
    return (f"Time to acknowledge *{format_duration(found.time_to_acknowledge)}* · to mitigate *{format_duration(found.time_to_mitigate)}*"
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
    return True


async def unpin(ctx: Context, channel: str, ts: str, user: str) -> bool:
    incident = await ctx.store.incident_by_channel(channel)
    return incident is not None and await ctx.store.delete_pin(incident.id or 0, ts, by=user)


# --- keeping Slack in line with the store -----------------------------------------------------------------


async def refresh(ctx: Context, incident_id: int) -> None:
    """Re-render the pinned header, the topic and the announcement from the stored incident."""
    incident = await get(ctx, incident_id)
    try:
        if incident.channel_id and incident.header_ts:
            await ctx.chat.update(incident.channel_id, incident.header_ts, header(incident, ctx.catalog.incidents, _runbooks(ctx, incident)))
        await _set_topic(ctx, incident)
        if incident.announce_channel and incident.announce_ts:
            await ctx.chat.update(incident.announce_channel, incident.announce_ts, announcement(incident, ctx.catalog.incidents))
    except Exception:
        log.exception("could not bring Slack in line with %s", incident.key)


async def _set_topic(ctx: Context, incident: Incident) -> None:
    if incident.channel_id:
        commander = f"<@{incident.commander}>" if incident.commander else "no commander"
        await ctx.chat.set_topic(incident.channel_id, f"{incident.key} · {incident.severity} · {incident.status.title} · Commander: {commander}")


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
