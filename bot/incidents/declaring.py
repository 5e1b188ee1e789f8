"""Declaring an incident, resumably: the row first (stage `creating`), then the channel, the invites, the pinned
header and topic, the announcement, each step recorded on the row once done (`Incident.declare_stage`).

A declaration the store or the process cut short is finished by the chores (`finish_declarations`), or rolled back
when its channel cannot be made: no incident is left without its channel, nor a channel without its incident.
Not responsible for changes after the declaration (bot/incidents/service.py).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from bot.alerts import incidents as alert_links
from bot.audit import Outcome, current_request
from bot.chat import NameTaken
from bot.context import Context
from bot.errors import OpsbotError, store_down
from bot.incidents import naming
from bot.incidents.models import DeclareStage, EntryKind, Incident, Role
from bot.incidents.service import IncidentInputError, _runbooks, _set_topic, check_declaration
from bot.incidents.timeline import append
from bot.locks import Lease, LockUnavailable
from bot.log_context import annotate
from bot.scheduling.posting import post_once
from bot.views import escape
from bot.views.common import notice
from bot.views.incidents import announcement, header

log = logging.getLogger(__name__)

NAME_ATTEMPTS = 20
T = TypeVar("T")


class DeclarationBusy(OpsbotError):
    """Another replica is finishing this declaration right now."""


def _lease_name(incident_id: int) -> str:
    return f"incident-declare:{incident_id}"


async def declare(ctx: Context, *, title: str, severity: str, declared_by: str, services: Sequence[str] = (),
                  description: str = "", alert_group: int | None = None) -> tuple[Incident, list[str]]:
    """Declare an incident; returns it and the steps that did not work (invites, pin, topic, announcement), worth
    telling the declarer but not worth failing the declaration for.

    Once the row exists, a store outage does not fail the request: the declaration is recorded as far as it got and
    the chores finish it when the store answers again; the declarer is told so."""
    title = " ".join(title.split())
    severity = check_declaration(ctx, title, severity)
    for name in services:
        ctx.catalog.service(name)
    now = ctx.clock.now()
    incident = Incident(title=title[:150], severity=severity, declared_by=declared_by, declared_at=now,
                        services=tuple(dict.fromkeys(services)), description=description[:3000],
                        roles={Role.COMMANDER.value: declared_by}, last_update_at=now,
                        declare_stage=DeclareStage.CREATING, audit_id=current_request())
    incident = replace(incident, id=await ctx.store.create_incident(incident))  # nothing made yet if this fails
    annotate(incident=incident.key)  # the declaring request's lines name the incident from here on
    if alert_group is not None:  # linked once declared (bot/alerts/incidents.py), by whichever attempt finishes it
        await ctx.store.link_group(alert_group, declaring_incident_id=incident.id)
    lease: Lease | None = None
    try:
        lease = await ctx.locks.acquire(_lease_name(incident.id or 0), ctx.settings.lease_seconds)
        if lease is None:  # a chore on another replica took it already (only after a very slow start): it finishes it
            return incident, [f"another opsbot replica is finishing {incident.key}'s set-up"]
        return await _carry_on(ctx, incident, lease)
    except Exception as exc:
        if isinstance(exc, LockUnavailable) and lease is None and not store_down(exc):
            # Redis is down, but the row exists: "nothing was run" would be false, the chores finish it once it answers.
            later = (f"opsbot cannot reach its lock store right now; it makes {incident.key}'s channel, invites, header and "
                     "announcement as soon as it answers again (no need to declare it again)")
            return incident, [later]
        if not store_down(exc):
            raise
        later = (f"opsbot lost its database midway; it finishes {incident.key}'s channel, invites, header and announcement "
                 "as soon as the database answers again (no need to declare it again)")
        return incident, [later]
    finally:
        if lease is not None:
            await _release(lease)


async def finish_declarations(ctx: Context) -> int:
    """A chore: finish the declarations cut short (or roll back those whose channel cannot be made). Each is taken
    under its lease, so a declaration still in progress elsewhere is left alone. Returns how many it finished."""
    done = 0
    for incident in await ctx.store.unfinished_declarations():
        lease = await ctx.locks.acquire(_lease_name(incident.id or 0), ctx.settings.lease_seconds)
        if lease is None:
            continue
        try:
            fresh = await ctx.store.get_incident(incident.id or 0)
            if fresh is None or fresh.declare_stage.finished:
                continue
            if fresh.declare_stage is DeclareStage.ROLLING_BACK:
                await _roll_back(ctx, fresh, "its channel could not be made")
                continue
            try:
                finished, problems = await _carry_on(ctx, fresh, lease)
            except Exception as exc:
                if store_down(exc):
                    raise
                log.warning("could not finish declaring %s: %s", fresh.key, exc)  # rolled back, or tried again next time
                continue
            log.info("finished declaring %s (cut short before)%s", finished.key,
                     f"; {'; '.join(problems)}" if problems else "")
            await _tell_declarer(ctx, finished, problems)
            done += 1
        finally:
            await _release(lease)
    return done


async def _carry_on(ctx: Context, incident: Incident, lease: Lease) -> tuple[Incident, list[str]]:
    """Do the steps the row says are not done yet, recording each one; returns the incident and what did not work."""
    problems: list[str] = []
    iid = incident.id or 0
    if not incident.declare_stage.reached(DeclareStage.CHANNEL):
        if not any(e.kind is EntryKind.DECLARED for e in await ctx.store.entries(iid)):
            await append(ctx, incident, EntryKind.DECLARED, f"Declared {incident.severity}: {escape(incident.title)}",
                         incident.declared_by)
        try:
            channel_id, name = await _channel(ctx, incident)
        except DeclarationBusy:
            raise  # another attempt linked its channel: the declaration is its to finish, not to roll back
        except Exception as exc:
            if store_down(exc):
                raise
            await _roll_back(ctx, incident, str(exc) if isinstance(exc, OpsbotError) else type(exc).__name__)
            raise
        # Only the first channel linked counts: an attempt that outlasted its lease (Slack's Retry-After, a paused
        # process) may run beside the chore that took it over, and each may have made a channel.
        if not await ctx.store.update_incident(iid, unless_set="channel_id", channel_id=channel_id, channel_name=name,
                                               declare_stage=DeclareStage.CHANNEL):
            linked = await ctx.store.get_incident(iid)
            if linked is None or linked.channel_id != channel_id:
                await _attempt(problems, "archive a second channel", ctx.chat.archive(channel_id))
            raise DeclarationBusy(f"another replica linked {incident.key}'s channel first; it finishes the declaration")
        incident = replace(incident, channel_id=channel_id, channel_name=name, declare_stage=DeclareStage.CHANNEL)
    channel_id = incident.channel_id or ""

    if not incident.declare_stage.reached(DeclareStage.INVITED):
        await _renew(ctx, lease)
        refused = await _attempt(problems, "invite people", _invite(ctx, incident))
        if refused:
            problems.append("could not invite " + ", ".join(f"<@{u}>" for u in refused))
        await ctx.store.update_incident(iid, declare_stage=DeclareStage.INVITED)
        incident = replace(incident, declare_stage=DeclareStage.INVITED)

    if not incident.declare_stage.reached(DeclareStage.PINNED):
        await _renew(ctx, lease)
        # Posted once even if the ts is lost with the store: the key rides in the message (bot/scheduling/posting.py).
        posted = await _attempt(problems, "post the incident header", post_once(
            ctx, f"incident:{iid}:header", channel_id, header(incident, ctx.catalog.incidents, _runbooks(ctx, incident))))
        if posted:
            ts = posted[0]
            await ctx.store.update_incident(iid, header_ts=ts)
            incident = replace(incident, header_ts=ts)
            await _attempt(problems, "pin the header", ctx.chat.pin(channel_id, ts))
        await _attempt(problems, "set the channel topic", _set_topic(ctx, incident))
        await ctx.store.update_incident(iid, declare_stage=DeclareStage.PINNED)
        incident = replace(incident, declare_stage=DeclareStage.PINNED)

    await _renew(ctx, lease)
    fields: dict[str, Any] = {"declare_stage": DeclareStage.DECLARED}
    announce = ctx.catalog.incidents.announce_channel
    if announce:
        posted = await _attempt(problems, f"announce it in <#{announce}>", post_once(
            ctx, f"incident:{iid}:announce", announce, announcement(incident, ctx.catalog.incidents)))
        if posted:
            fields |= {"announce_channel": announce, "announce_ts": posted[0]}
    await ctx.store.update_incident(iid, **fields)
    incident = replace(incident, **fields)
    await _attempt(problems, "link the alert group it was declared from", alert_links.declared(ctx, incident))
    return incident, problems


async def _channel(ctx: Context, incident: Incident) -> tuple[str, str]:
    """The incident's channel: the one an earlier attempt made (found by the name it recorded), or a new one.
    Each name is recorded before it is tried, so an attempt cut short between Slack's answer and the store's
    write leaves the name to find the channel by."""
    if incident.channel_name:
        found = await ctx.chat.channel_named(incident.channel_name)
        if found is not None:
            owner = await ctx.store.incident_by_channel(found.id)
            if owner is None or owner.id == incident.id:
                return found.id, found.name
    settings = ctx.catalog.incidents
    base = naming.channel_name(settings.channel_name, incident_id=incident.id or 0, severity=incident.severity,
                               title=incident.title, at=incident.declared_at)
    for attempt in range(1, NAME_ATTEMPTS + 1):
        name = naming.with_suffix(base, attempt)
        if not await ctx.store.update_incident(incident.id or 0, unless_set="channel_id", channel_name=name):
            # Another attempt linked a channel meanwhile (or the row is gone): no second channel.
            raise DeclarationBusy(f"another replica linked {incident.key}'s channel first; it finishes the declaration")
        try:
            return await ctx.chat.create_channel(name, private=settings.private_channels), name
        except NameTaken:
            continue
    raise IncidentInputError(f"Channels #{base} to #{naming.with_suffix(base, NAME_ATTEMPTS)} all exist; "
                             "change `incidents.channel_name` in the catalog.")


async def _roll_back(ctx: Context, incident: Incident, why: str) -> None:
    """No channel could be made: mark the row rolling back (so a chore completes this if the store fails now),
    archive any channel an earlier attempt made under the recorded name, then delete the row."""
    iid = incident.id or 0
    await ctx.store.update_incident(iid, declare_stage=DeclareStage.ROLLING_BACK)
    if incident.channel_name:
        found = await ctx.chat.channel_named(incident.channel_name)
        owner = await ctx.store.incident_by_channel(found.id) if found is not None else None
        if found is not None and (owner is None or owner.id == incident.id):
            await ctx.chat.archive(found.id)
    if incident.audit_id is not None:
        await ctx.store.finish_audit(incident.audit_id, Outcome.ERROR,
                                     f"{incident.key} rolled back: {why}"[:1000], None)
    await ctx.store.delete_incident(iid)
    log.warning("declaring %s rolled back: %s", incident.key, why)


async def _tell_declarer(ctx: Context, incident: Incident, problems: list[str]) -> None:
    """The declarer was told the set-up would finish later: say it has (a direct message)."""
    text = f"{incident.key}'s channel <#{incident.channel_id}> is ready (its set-up was cut short and is now finished)."
    if problems:
        text += " Some steps did not work: " + "; ".join(problems) + "."
    try:
        await ctx.chat.post(incident.declared_by, notice(text))
    except Exception:  # noqa: BLE001 - the incident is whole; a lost direct message must not undo that
        log.warning("could not tell %s that %s is ready", incident.declared_by, incident.key)


async def _attempt(problems: list[str], what: str, work: Awaitable[T]) -> T | None:
    """A Slack step of declaring is best effort: reported, never fatal. A store outage is not a Slack step: it
    stops the declaration where it is, for the chores to finish."""
    try:
        return await work
    except Exception as exc:  # each Slack step is best effort (see above)
        if store_down(exc):
            raise
        log.warning("declaring: could not %s: %s", what, exc)
        reason = str(exc) if isinstance(exc, OpsbotError) else type(exc).__name__
        problems.append(f"could not {what} ({reason})")
        return None


async def _renew(ctx: Context, lease: Lease) -> None:
    """Between steps: a declaration slower than a lease (Slack answering slowly) keeps it; one that lost it stops."""
    if not await lease.renew(ctx.settings.lease_seconds):
        raise DeclarationBusy("this declaration's lease lapsed; another replica finishes it")


async def _release(lease: Lease) -> None:
    try:
        await lease.release()
    except Exception:  # noqa: BLE001 - an unreleased lease lapses by itself
        log.debug("could not release %s", lease)


async def _invite(ctx: Context, incident: Incident) -> list[str]:
    return await ctx.chat.invite(incident.channel_id or "", await _people_to_invite(ctx, incident))


async def _people_to_invite(ctx: Context, incident: Incident) -> list[str]:
    ids: list[str] = [incident.declared_by, *ctx.catalog.incidents.responders]
    for service in incident.services:
        ids.extend(ctx.catalog.services[service].owners)
    people: list[str] = []
    for value in ids:
        members = [value] if not value.startswith("S") else sorted(await ctx.chat.usergroup_members(value))
        people.extend(m for m in members if m not in people)
    return people
