"""`/incident …`, the incident header's buttons and selects, its modals, and the 📌 reaction.

Parsing only: each one calls a function of bot.incidents.service and answers with its views.
"""

from __future__ import annotations

import html
import re
import shlex
from datetime import date, datetime, timedelta, timezone
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.catalog import suggest
from bot.context import Context
from bot.errors import UnknownSubcommand
from bot.incidents import service as incidents
from bot.incidents.models import Role
from bot.views import escape, quiet
from bot.views.common import notice
from bot.views.incidents import (
    ACK, COMMANDER, DECLARE_CALLBACK, ENTRY_CALLBACK, ENTRY_MENU, FOLLOW_UP_DONE, HEALTH, NOTE, NOTE_CALLBACK, PAGE_NEXT,
    POSTMORTEM, REOPEN, RESOLVE, RESOLVE_CALLBACK, ROLE, SEVERITY, STATUS, declare_modal, entry_modal, follow_ups, incident_list,
    text_modal, timeline_message,
)
from handlers.replies import InChannelReply, Inbound, Reply, for_command, handle, on_click

Body = dict[str, Any]
MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")

USAGE = [
    ("declare [P1 <title>]", "Declare an incident: a channel, invites, a pinned header (no arguments: a form)."),
    ("list", "Incidents that are open."),
    ("ack", "Acknowledge (in the incident channel, as everything below)."),
    ("status <investigating|identified|monitoring|resolved> [summary]", "Post a status update."),
    ("severity <P1…>", "Change the severity."),
    ("role @user <commander|communications|scribe>", "Give someone a role."),
    ("note <text>", "Add to the timeline."),
    ("action \"<follow-up>\" [@owner] [YYYY-MM-DD]", "Track a follow-up action item."),
    ("resolve [summary]", "Resolve it; `reopen` undoes."),
    ("timeline", "Show the timeline (the commander can correct entries there)."),
    ("actions", "List the follow-ups, with a Done button each."),
    ("postmortem", "Write the post-mortem into the channel as a file."),
]


def register(app: AsyncApp, ctx: Context) -> None:
    @app.command("/incident")
    async def incident_command(ack: Any, command: Body) -> None:
        inbound, reply, text = for_command(ctx, ack, command)
        ctx.tasks.spawn(handle(ctx, inbound, reply, lambda: _dispatch(ctx, reply, command, text)), name=f"/incident {text[:40]}")

    async def by_id(value: str) -> Any:
        incident_id = value.split(":", 1)[0]
        if not incident_id.isdigit():
            raise incidents.IncidentInputError("This button is out of date.")
        return await incidents.get(ctx, int(incident_id))

    async def acknowledged(reply: Reply, body: Body, user: str, value: str) -> None:
        await reply.ephemeral(notice(await incidents.acknowledge(ctx, await by_id(value), user)))

    async def commander(reply: Reply, body: Body, user: str, value: str) -> None:
        await incidents.assign_role(ctx, await by_id(value), Role.COMMANDER, user, user)

    async def note_form(reply: Reply, body: Body, user: str, value: str) -> None:
        await ctx.chat.open_modal(body["trigger_id"], text_modal(NOTE_CALLBACK, "Add a note", "Note", await by_id(value), optional=False))

    async def resolve_form(reply: Reply, body: Body, user: str, value: str) -> None:
        await ctx.chat.open_modal(body["trigger_id"], text_modal(RESOLVE_CALLBACK, "Resolve", "Summary (what fixed it)", await by_id(value), optional=True))

    async def health(reply: Reply, body: Body, user: str, value: str) -> None:
        from bot.reports import report_health_in_channel

        incident = await by_id(value)
        await report_health_in_channel(ctx, incident.services, requested_by=user, channel_id=incident.channel_id or "")

    async def postmortem(reply: Reply, body: Body, user: str, value: str) -> None:
        from bot.incidents.documents import share_postmortem

        await share_postmortem(ctx, await by_id(value), user)

    async def severity(reply: Reply, body: Body, user: str, value: str) -> None:
        await incidents.set_severity(ctx, await by_id(value), value.split(":", 1)[1], user)

    async def status(reply: Reply, body: Body, user: str, value: str) -> None:
        await incidents.set_status(ctx, await by_id(value), incidents.status_of(value.split(":", 1)[1]), "", user)

    async def take_role(reply: Reply, body: Body, user: str, value: str) -> None:
        await incidents.assign_role(ctx, await by_id(value), Role(value.split(":", 1)[1]), user, user)

    async def reopened(reply: Reply, body: Body, user: str, value: str) -> None:
        await incidents.reopen(ctx, await by_id(value), user)

    async def next_page(reply: Reply, body: Body, user: str, value: str) -> None:
        incident = await by_id(value)
        entries = await ctx.store.entries(incident.id or 0)
        message = timeline_message(incident, entries, await ctx.chat.user_tz(user), int(value.split(":")[1]),
                                   editable=user == incident.commander, metrics_line=incidents.metrics_line(incident, entries))
        await ctx.chat.respond(body["response_url"], message, replace_original=True)

    async def entry_menu(reply: Reply, body: Body, user: str, value: str) -> None:
        what, _, entry_id = value.partition(":")
        if not entry_id.isdigit():
            raise incidents.IncidentInputError("This menu is out of date; open the timeline again.")
        if what == "delete":
            incident = await incidents.correct_entry(ctx, int(entry_id), user, delete=True)
            await reply.ephemeral(notice(f"Removed from the timeline of {incident.key} (the audit log keeps what it said)."))
        else:
            entry = await incidents.entry_for_correction(ctx, int(entry_id), user)
            await ctx.chat.open_modal(body["trigger_id"], entry_modal(entry))

    async def follow_up_done(reply: Reply, body: Body, user: str, value: str) -> None:
        if not value.isdigit():
            raise incidents.IncidentInputError("This button is out of date.")
        incident = await incidents.for_channel(ctx, (body.get("channel") or {}).get("id"))
        await reply.ephemeral(notice(await incidents.finish_follow_up(ctx, incident, int(value), user)))

    for action_id, work in [(ACK, acknowledged), (COMMANDER, commander), (NOTE, note_form), (RESOLVE, resolve_form),
                            (HEALTH, health), (POSTMORTEM, postmortem), (SEVERITY, severity), (STATUS, status), (PAGE_NEXT, next_page),
                            (ENTRY_MENU, entry_menu), (FOLLOW_UP_DONE, follow_up_done), (ROLE, take_role), (REOPEN, reopened)]:
        on_click(app, ctx, action_id, work)

    def modal(callback_id: str, work: Any) -> None:
        @app.view(callback_id)
        async def submitted(ack: Any, body: Body, view: Body) -> None:
            values = {block: next(iter(inputs.values()), {}) for block, inputs in (view.get("state", {}).get("values") or {}).items()}
            problems = _form_problems(callback_id, values)
            if problems:  # Slack keeps the form open and shows each message under its field
                await ack(response_action="errors", errors=problems)
                return
            await ack()
            user = body.get("user", {}).get("id", "")
            metadata = view.get("private_metadata") or ""
            if callback_id == ENTRY_CALLBACK:  # its metadata is an entry id: answer in that entry's incident channel
                entry = await ctx.store.get_entry(int(metadata)) if metadata.isdigit() else None
                incident = await ctx.store.get_incident(entry.incident_id) if entry else None
            else:
                incident = await ctx.store.get_incident(int(metadata)) if metadata.isdigit() else None
            channel = incident.channel_id if incident else (metadata or None)
            inbound = Inbound("action", callback_id, user, channel, metadata)
            ctx.tasks.spawn(handle(ctx, inbound, InChannelReply(ctx, channel, user), lambda: work(user, values, incident, metadata)), name=callback_id)

    async def declared(user: str, values: Body, incident: Any, channel: str) -> None:
        made, problems = await incidents.declare(ctx, title=(values.get("title") or {}).get("value") or "",
                                severity=((values.get("severity") or {}).get("selected_option") or {}).get("value") or "",
                                services=[o["value"] for o in (values.get("services") or {}).get("selected_options") or []],
                                description=escape((values.get("description") or {}).get("value") or ""), declared_by=user)
        # A form has no response_url; a direct message reaches the declarer wherever they typed /incident.
        await ctx.chat.post(user, notice(_declared_text(made, problems)))

    async def noted(user: str, values: Body, incident: Any, metadata: str) -> None:
        await incidents.add_note(ctx, incident, escape((values.get("text") or {}).get("value") or ""), user)

    async def resolved(user: str, values: Body, incident: Any, metadata: str) -> None:
        await incidents.resolve(ctx, incident, escape(((values.get("text") or {}).get("value") or "").strip()), user)

    async def corrected(user: str, values: Body, incident: Any, metadata: str) -> None:
        raw = ((values.get("at") or {}).get("value") or "").strip()
        try:
            at = datetime.strptime(raw, "%Y-%m-%d %H:%M").replace(tzinfo=timezone.utc)
        except ValueError:
            raise incidents.IncidentInputError(f"`{raw}` is not a time: write it as YYYY-MM-DD HH:MM, in UTC.") from None
        await incidents.correct_entry(ctx, int(metadata), user, text=escape((values.get("text") or {}).get("value") or ""), at=at)

    modal(DECLARE_CALLBACK, declared)
    modal(ENTRY_CALLBACK, corrected)
    modal(NOTE_CALLBACK, noted)
    modal(RESOLVE_CALLBACK, resolved)

    @app.event("reaction_added")
    async def reaction_added(event: Body) -> None:
        await _reaction(ctx, event, added=True)

    @app.event("reaction_removed")
    async def reaction_removed(event: Body) -> None:
        await _reaction(ctx, event, added=False)


async def _reaction(ctx: Context, event: Body, *, added: bool) -> None:
    item = event.get("item") or {}
    if event.get("reaction") != ctx.catalog.incidents.pin_reaction or item.get("type") != "message":
        return  # any other reaction, anywhere, means nothing to opsbot
    inbound = Inbound("event", event.get("type", "reaction"), event.get("user"), item.get("channel"), str(item.get("ts")))

    async def work() -> None:
        if added:
            await incidents.pin(ctx, item["channel"], item["ts"], event.get("user", ""))
        else:
            await incidents.unpin(ctx, item["channel"], item["ts"], event.get("user", ""))

    ctx.tasks.spawn(handle(ctx, inbound, None, work), name="incident pin")


async def _dispatch(ctx: Context, reply: Reply, command: Body, text: str) -> None:
    words = text.split()
    name = words[0].lower() if words else "help"
    args = words[1:]
    rest = text.split(None, 1)[1] if len(words) > 1 else ""
    user, channel = command["user_id"], command.get("channel_id")
    if name == "help":
        await reply.ack(notice("\n".join(f"`/incident {usage}`  {what}" for usage, what in USAGE)))
        return
    if name == "declare":
        if not args:
            await reply.ack()
            await ctx.chat.open_modal(command["trigger_id"], declare_modal(ctx.catalog.incidents, ctx.catalog.service_names, channel))
            return
        incidents.severity_of(ctx, args[0])  # refuse a bad severity before anything is created
        await reply.ack(notice(f"⏳ Declaring {args[0].upper()}: {' '.join(args[1:])}…"))
        # Titles are stored as plain text (headers are plain_text); Slack sent the command's text entity-escaped.
        incident, problems = await incidents.declare(ctx, title=html.unescape(quiet(" ".join(args[1:]))), severity=args[0], declared_by=user)
        await reply.ephemeral(notice(_declared_text(incident, problems)))
        return
    if name == "list":
        await reply.ack(incident_list(await ctx.store.incidents(open_only=True), ctx.catalog.incidents))
        return
    valid = [usage.split()[0] for usage, _ in USAGE] + ["reopen", "help"]
    if name not in valid:
        raise UnknownSubcommand("/incident", name, valid, suggest(name, valid))
    incident = await incidents.for_channel(ctx, channel)
    await reply.ack()
    if name == "ack":
        await reply.ephemeral(notice(await incidents.acknowledge(ctx, incident, user)))
    elif name == "status":
        if not args:
            raise incidents.IncidentInputError("Usage: `/incident status <investigating|identified|monitoring|resolved> [summary]`.")
        await incidents.set_status(ctx, incident, incidents.status_of(args[0]), quiet(rest.split(None, 1)[1]) if len(args) > 1 else "", user)
    elif name == "severity":
        if not args:
            raise incidents.IncidentInputError("Usage: `/incident severity <P1…>`.")
        await incidents.set_severity(ctx, incident, args[0], user)
    elif name == "role":
        who = next((m.group(1) for a in args if (m := MENTION.match(a))), None)
        role_name = next((a.lower() for a in args if not MENTION.match(a)), "")
        roles = [r.value for r in Role]
        if who is None or role_name not in roles:
            raise incidents.IncidentInputError(f"Usage: `/incident role @user <{'|'.join(roles)}>`.")
        await incidents.assign_role(ctx, incident, Role(role_name), who, user)
    elif name == "note":
        await incidents.add_note(ctx, incident, quiet(rest), user)
        await reply.ephemeral(notice("Added to the timeline."))
    elif name == "resolve":
        await incidents.resolve(ctx, incident, quiet(rest), user)
    elif name == "reopen":
        await incidents.reopen(ctx, incident, user)
    elif name == "timeline":
        entries = await ctx.store.entries(incident.id or 0)
        await reply.ephemeral(timeline_message(incident, entries, await ctx.chat.user_tz(user), editable=user == incident.commander,
                                               metrics_line=incidents.metrics_line(incident, entries)))
    elif name == "actions":
        await reply.ephemeral(follow_ups(incident, await ctx.store.action_items(incident.id or 0)))
    elif name == "postmortem":
        from bot.incidents.documents import share_postmortem

        await share_postmortem(ctx, incident, user)
    elif name == "action":
        text_, owner, due = _follow_up(rest, ctx.clock.now().date())
        item = await incidents.add_follow_up(ctx, incident, text_, owner, due, user)
        await reply.ephemeral(notice(f"Tracked follow-up #{item.id}: {item.text}"))


def _form_problems(callback_id: str, values: Body) -> dict[str, str]:
    """What to fix in a submitted form before anything happens, by the field's block id."""
    problems = {}
    if callback_id == DECLARE_CALLBACK and not ((values.get("title") or {}).get("value") or "").strip():
        problems["title"] = "Give the incident a title people will recognise, e.g. “checkout is failing”."
    if callback_id == ENTRY_CALLBACK:
        raw = ((values.get("at") or {}).get("value") or "").strip()
        try:
            datetime.strptime(raw, "%Y-%m-%d %H:%M")
        except ValueError:
            problems["at"] = "Write the time as YYYY-MM-DD HH:MM, in UTC."
    return problems


def _declared_text(incident: Any, problems: list[str]) -> str:
    text = f"{incident.key} declared: <#{incident.channel_id}>"
    if problems:
        text += "\n:warning: Some steps did not work: " + "; ".join(problems) + ". The channel works; do them by hand or with the header's buttons."
    return text


def _follow_up(rest: str, today: date) -> tuple[str, str | None, date | None]:
    """`"<text>" [@owner] [YYYY-MM-DD|tomorrow|in N days]` → (text, owner, due)."""
    try:
        parts = shlex.split(rest)
    except ValueError:
        raise incidents.IncidentInputError('Put the follow-up in quotes: `/incident action "Add an alert on 5xx" @alice 2026-12-01`.') from None
    if not parts:
        raise incidents.IncidentInputError('Usage: `/incident action "<follow-up>" [@owner] [YYYY-MM-DD]`.')
    text, owner, due = quiet(parts[0]), None, None
    for part in parts[1:]:
        if m := MENTION.match(part):
            owner = m.group(1)
        elif re.match(r"^\d{4}-\d{2}-\d{2}$", part):
            try:
                due = date.fromisoformat(part)
            except ValueError:
                raise incidents.IncidentInputError(f"`{part}` is not a date (YYYY-MM-DD).") from None
        elif part.lower() == "tomorrow":
            due = today + timedelta(days=1)
        else:
            raise incidents.IncidentInputError(f"`{part}` is neither an @owner nor a due date (YYYY-MM-DD). "
                                               'Quote the follow-up text: `/incident action "…" @owner 2026-12-01`.')
    return text, owner, due

