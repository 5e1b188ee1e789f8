"""`/incident …`, the incident header's buttons and selects, its modals, and the 📌 reaction.

Parsing only: each one calls a function of bot.incidents.service (or .declaring) and answers with its views.
"""

from __future__ import annotations

import html
import re
import shlex
from datetime import UTC, date, datetime, timedelta
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.catalog import suggest
from bot.context import Context
from bot.errors import StaleButton, UnknownSubcommand
from bot.ids import parse_id
from bot.incidents import declaring
from bot.incidents import service as incidents
from bot.incidents.models import IncidentStatus, Role
from bot.incidents.offers import draft_from
from bot.incidents.settings import IncidentSettings
from bot.views import Message, escape, quiet
from bot.views.common import notice
from bot.views.help import help_message
from bot.views.incidents import (
    ACK,
    COMMANDER,
    DECLARE_CALLBACK,
    ENTRY_CALLBACK,
    ENTRY_MENU,
    FOLLOW_UP_DONE,
    HEALTH,
    NOTE,
    NOTE_CALLBACK,
    PAGE_NEXT,
    POSTMORTEM,
    REOPEN,
    RESOLVE,
    RESOLVE_CALLBACK,
    ROLE,
    SEVERITY,
    STATUS,
    declare_modal,
    entry_modal,
    follow_ups,
    incident_list,
    read_declare_metadata,
    text_modal,
    timeline_message,
)
from bot.views.offers import DECLARE_OFFER
from handlers.payloads import Command, MalformedPayload, Reaction, Submission, id_and_part, id_of, read, ref_of
from handlers.replies import Inbound, InChannelReply, Reply, for_command, handle, on_click, refuse, refuse_form

Body = dict[str, Any]
STALE = "open the incident's channel and use its header"
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
    ("resolve [summary]", "Resolve it."),
    ("reopen", "Reopen a resolved incident (investigating again)."),
    ("timeline", "Show the timeline (the commander can correct entries there)."),
    ("actions", "List the follow-ups, with a Done button each."),
    ("postmortem", "Write the post-mortem into the channel as a file."),
]


def incident_help(settings: IncidentSettings, services: list[str]) -> Message:
    """`/incident help`: every usage, then the statuses and severities it accepts."""
    statuses = " → ".join(f"`{s.value}`" for s in IncidentStatus)
    severities = ", ".join(f"`{s.name}` {s.label}" for s in settings.severities)
    return help_message("/incident", USAGE, services, notes=[
        f"Statuses, in order: {statuses}. Severities: {severities}.",
        "Health checks and actions: `/ops help`."])


def register(app: AsyncApp, ctx: Context) -> None:
    @app.command("/incident")
    async def incident_command(ack: Any, command: Body) -> None:
        inbound, reply, text = for_command(ctx, ack, command)
        ctx.tasks.spawn(handle(ctx, inbound, reply, lambda: _dispatch(ctx, reply, command, text)), name=f"/incident {text[:40]}")

    async def by_id(value: str) -> Any:
        return await incidents.get(ctx, id_of(value.split(":", 1)[0], STALE))

    async def with_part(value: str) -> tuple[Any, str]:
        incident_id, part = id_and_part(value, STALE)  # `<incident>:<severity|status|role|page>`, both there
        return await incidents.get(ctx, incident_id), part

    async def acknowledged(reply: Reply, body: Body, user: str, value: str) -> None:
        await reply.ephemeral(notice(await incidents.acknowledge(ctx, await by_id(value), user)))

    async def commander(reply: Reply, body: Body, user: str, value: str) -> None:
        await incidents.assign_role(ctx, await by_id(value), Role.COMMANDER, user, user)

    async def note_form(reply: Reply, body: Body, user: str, value: str) -> None:
        await ctx.chat.open_modal(body["trigger_id"],
                                  text_modal(NOTE_CALLBACK, "Add a note", "Note", await by_id(value), optional=False))

    async def resolve_form(reply: Reply, body: Body, user: str, value: str) -> None:
        await ctx.chat.open_modal(body["trigger_id"],
                                  text_modal(RESOLVE_CALLBACK, "Resolve", "Summary (what fixed it)", await by_id(value),
                                             optional=True))

    async def health(reply: Reply, body: Body, user: str, value: str) -> None:
        from bot.reports import report_health_in_channel

        incident = await by_id(value)
        await report_health_in_channel(ctx, incident.services, requested_by=user, channel_id=incident.channel_id or "")

    async def postmortem(reply: Reply, body: Body, user: str, value: str) -> None:
        from bot.incidents.documents import share_postmortem

        await share_postmortem(ctx, await by_id(value), user)

    async def severity(reply: Reply, body: Body, user: str, value: str) -> None:
        incident, name = await with_part(value)
        await incidents.set_severity(ctx, incident, name, user)

    async def status(reply: Reply, body: Body, user: str, value: str) -> None:
        incident, name = await with_part(value)
        await incidents.set_status(ctx, incident, incidents.status_of(name), "", user)

    async def take_role(reply: Reply, body: Body, user: str, value: str) -> None:
        incident, name = await with_part(value)
        if name not in {role.value for role in Role}:
            raise StaleButton(STALE)
        await incidents.assign_role(ctx, incident, Role(name), user, user)

    async def reopened(reply: Reply, body: Body, user: str, value: str) -> None:
        await incidents.reopen(ctx, await by_id(value), user)

    async def next_page(reply: Reply, body: Body, user: str, value: str) -> None:
        incident, part = await with_part(value)
        entries = await ctx.store.entries(incident.id or 0)
        message = timeline_message(incident, entries, await ctx.chat.user_tz(user), id_of(part, STALE),
                                   editable=user == incident.commander, metrics_line=incidents.metrics_line(incident, entries))
        await ctx.chat.respond(body["response_url"], message, replace_original=True)

    async def entry_menu(reply: Reply, body: Body, user: str, value: str) -> None:
        what, _, part = value.partition(":")
        entry_id = id_of(part, "open the timeline again")
        if what == "delete":
            incident = await incidents.correct_entry(ctx, entry_id, user, delete=True)
            await reply.ephemeral(notice(f"Removed from the timeline of {incident.key} (the audit log keeps what it said)."))
        else:
            entry = await incidents.entry_for_correction(ctx, entry_id, user)
            await ctx.chat.open_modal(body["trigger_id"], entry_modal(entry))

    async def follow_up_done(reply: Reply, body: Body, user: str, value: str) -> None:
        item_id = id_of(value, STALE)
        incident = await incidents.for_channel(ctx, (body.get("channel") or {}).get("id"))
        await reply.ephemeral(notice(await incidents.finish_follow_up(ctx, incident, item_id, user)))

    async def declare_offered(reply: Reply, body: Body, user: str, value: str) -> None:
        channel = (body.get("channel") or {}).get("id")
        already = await ctx.store.incident_by_channel(channel) if channel else None
        if already is not None:
            raise incidents.IncidentInputError(f"This is the channel of {already.key} already: `/incident status …` or "
                                               "`/incident note …` keep its timeline.")
        draft = await draft_from(ctx, value)
        form = declare_modal(ctx.catalog.incidents, ctx.catalog.service_names, channel, draft)
        await ctx.chat.open_modal(body["trigger_id"], form)

    for action_id, work in [(DECLARE_OFFER, declare_offered), (ACK, acknowledged), (COMMANDER, commander), (NOTE, note_form),
                            (RESOLVE, resolve_form), (HEALTH, health), (POSTMORTEM, postmortem), (SEVERITY, severity),
                            (STATUS, status), (PAGE_NEXT, next_page),
                            (ENTRY_MENU, entry_menu), (FOLLOW_UP_DONE, follow_up_done), (ROLE, take_role), (REOPEN, reopened)]:
        on_click(app, ctx, action_id, work)

    def modal(callback_id: str, work: Any) -> None:
        @app.view(callback_id)
        async def submitted(ack: Any, body: Body) -> None:
            try:
                form = read(Submission, body, "form")
            except MalformedPayload as exc:
                await ack()  # closes the form; the sender is told by a direct message
                refuse_form(ctx, callback_id, body, exc)
                return
            values = {block: next(iter(inputs.values())).model_dump() if inputs else {} for block, inputs
                      in form.view.state.values.items()}
            problems = _form_problems(callback_id, values)
            if problems:  # Slack keeps the form open and shows each message under its field
                await ack(response_action="errors", errors=problems)
                return
            await ack()
            user, metadata = form.user.id, form.view.private_metadata

            async def respond() -> None:
                incident, channel = await _form_incident(ctx, callback_id, metadata)

                async def run() -> None:
                    if callback_id != DECLARE_CALLBACK and incident is None:
                        raise incidents.IncidentInputError("This form belongs to an incident opsbot no longer has; nothing "
                                                           "was done. `/incident list` shows the open ones.")
                    await work(user, values, incident, metadata)

                await handle(ctx, Inbound("action", callback_id, user, channel, metadata),
                             InChannelReply(ctx, channel, user), run)

            # Spawned at once after the ack, before anything is awaited: the work is the task set's from the moment
            # Slack has its answer (the form's incident is read inside it).
            ctx.tasks.spawn(respond(), name=callback_id)

    async def declared(user: str, values: Body, incident: Any, metadata: str) -> None:
        made, problems = await declaring.declare(ctx, title=(values.get("title") or {}).get("value") or "",
                                severity=((values.get("severity") or {}).get("selected_option") or {}).get("value") or "",
                                services=[o["value"] for o in (values.get("services") or {}).get("selected_options") or []],
                                description=escape((values.get("description") or {}).get("value") or ""), declared_by=user,
                                alert_group=read_declare_metadata(metadata)[1])
        # A form has no response_url; a direct message reaches the declarer wherever they typed /incident.
        await ctx.chat.post(user, notice(_declared_text(made, problems)))

    async def noted(user: str, values: Body, incident: Any, metadata: str) -> None:
        await incidents.add_note(ctx, incident, escape((values.get("text") or {}).get("value") or ""), user)
        if incident is not None and incident.channel_id:  # the form has closed: say where the note went
            await ctx.chat.ephemeral(incident.channel_id, user, notice(f"Added to the timeline of {incident.key}."))

    async def resolved(user: str, values: Body, incident: Any, metadata: str) -> None:
        await incidents.resolve(ctx, incident, escape(((values.get("text") or {}).get("value") or "").strip()), user)

    async def corrected(user: str, values: Body, incident: Any, metadata: str) -> None:
        raw = ((values.get("at") or {}).get("value") or "").strip()
        try:
            at = datetime.strptime(raw, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
        except ValueError:
            raise incidents.IncidentInputError(f"`{raw}` is not a time: write it as YYYY-MM-DD HH:MM, in UTC.") from None
        await incidents.correct_entry(ctx, id_of(metadata, STALE), user,
                                      text=escape((values.get("text") or {}).get("value") or ""), at=at)

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
    if event.get("reaction") != ctx.catalog.incidents.pin_reaction:
        return  # any other reaction means nothing to opsbot
    try:
        reaction = read(Reaction, event, "reaction")
    except MalformedPayload as exc:
        inbound = Inbound("event", "reaction", ref_of({"id": event.get("user")}), None)
        ctx.tasks.spawn(handle(ctx, inbound, None, refuse(exc)), name="incident pin malformed")
        return
    item = reaction.item
    if item.type != "message" or not item.channel or not item.ts:
        return  # a reaction to a file or a message Slack did not name means nothing to opsbot
    channel, ts = item.channel, item.ts
    inbound = Inbound("event", reaction.type, reaction.user or None, channel, ts)

    async def work() -> None:
        if added:
            await incidents.pin(ctx, channel, ts, reaction.user)
        else:
            await incidents.unpin(ctx, channel, ts, reaction.user)

    ctx.tasks.spawn(handle(ctx, inbound, None, work), name="incident pin")


async def _dispatch(ctx: Context, reply: Reply, command: Body, text: str) -> None:
    read(Command, command, "command")  # every field read below is there, as text
    words = text.split()
    name = words[0].lower() if words else "help"
    args = words[1:]
    rest = text.split(None, 1)[1] if len(words) > 1 else ""
    user, channel = command["user_id"], command.get("channel_id")
    if name == "help":
        await reply.ack(incident_help(ctx.catalog.incidents, ctx.catalog.service_names))
        return
    if name == "declare":
        if not args:
            await reply.ack()
            await ctx.chat.open_modal(command["trigger_id"],
                                      declare_modal(ctx.catalog.incidents, ctx.catalog.service_names, channel))
            return
        # Titles are stored as plain text (headers are plain_text); Slack sent the command's text entity-escaped.
        title = html.unescape(quiet(" ".join(args[1:])))
        severity = incidents.check_declaration(ctx, title, args[0])  # refused before anything is said or created
        await reply.ack(notice(f"⏳ Declaring {severity}: {escape(title)}…"))
        incident, problems = await declaring.declare(ctx, title=title, severity=severity, declared_by=user)
        await reply.replace(notice(_declared_text(incident, problems)))  # in place of its "⏳ Declaring …"
        return
    if name == "list":
        await reply.ack(incident_list(await ctx.store.incidents(open_only=True), ctx.catalog.incidents))
        return
    valid = [usage.split()[0] for usage, _ in USAGE] + ["help"]
    if name not in valid:
        raise UnknownSubcommand("/incident", name, valid, suggest(name, valid))
    incident = await incidents.for_channel(ctx, channel)
    await reply.ack()
    if name == "ack":
        await reply.ephemeral(notice(await incidents.acknowledge(ctx, incident, user)))
    elif name == "status":
        if not args:
            raise incidents.IncidentInputError("Usage: `/incident status <investigating|identified|monitoring|resolved> "
                                               "[summary]`.")
        await incidents.set_status(ctx, incident, incidents.status_of(args[0]), quiet(rest.split(None, 1)[1]) if len(args) > 1
                                   else "", user)
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
        await reply.ephemeral(timeline_message(incident, entries, await ctx.chat.user_tz(user),
                                               editable=user == incident.commander,
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


async def _form_incident(ctx: Context, callback_id: str, metadata: str) -> tuple[Any, str | None]:
    """The incident a submitted form belongs to (None when opsbot no longer has it) and the channel to answer in: the
    declare form's is where it was asked; a correction's metadata holds its entry's id, the others the incident's."""
    if callback_id == DECLARE_CALLBACK:
        return None, read_declare_metadata(metadata)[0]
    record_id = parse_id(metadata)
    if callback_id == ENTRY_CALLBACK:
        entry = await ctx.store.get_entry(record_id) if record_id is not None else None
        incident = await ctx.store.get_incident(entry.incident_id) if entry else None
    else:
        incident = await ctx.store.get_incident(record_id) if record_id is not None else None
    return incident, incident.channel_id if incident else None


def _form_problems(callback_id: str, values: Body) -> dict[str, str]:
    """What to fix in a submitted form before anything happens, by the field's block id."""
    problems = {}
    if callback_id == DECLARE_CALLBACK and not ((values.get("title") or {}).get("value") or "").strip():
        problems["title"] = "Give the incident a title people will recognise, e.g. “checkout is failing”."
    if callback_id == NOTE_CALLBACK and not ((values.get("text") or {}).get("value") or "").strip():
        problems["text"] = "Write what happened: a note of only spaces would add nothing to the timeline."
    if callback_id == ENTRY_CALLBACK:
        raw = ((values.get("at") or {}).get("value") or "").strip()
        try:
            datetime.strptime(raw, "%Y-%m-%d %H:%M")  # noqa: DTZ007 - only the format is checked here; it is UTC
        except ValueError:
            problems["at"] = "Write the time as YYYY-MM-DD HH:MM, in UTC."
    return problems


def _declared_text(incident: Any, problems: list[str]) -> str:
    if not incident.channel_id:  # the store went away midway: the chores finish it
        return f"{incident.key} declared; " + "; ".join(problems) + "."
    text = f"{incident.key} declared: <#{incident.channel_id}>"
    if problems:
        text += ("\n:warning: Some steps did not work: " + "; ".join(problems)
                 + ". The channel works; do them by hand or with the header's buttons.")
    return text


def _follow_up(rest: str, today: date) -> tuple[str, str | None, date | None]:
    """`"<text>" [@owner] [YYYY-MM-DD|tomorrow|in N days]` → (text, owner, due)."""
    try:
        parts = shlex.split(rest)
    except ValueError:
        raise incidents.IncidentInputError('Put the follow-up in quotes: `/incident action "Add an alert on 5xx" @alice '
                                           '2026-12-01`.') from None
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

