"""Incident messages: the pinned header with its buttons, the announcement, status updates, the timeline,
the list of incidents, reminders, and the declare / note / resolve modals."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    OverflowMenuElement,
    PlainTextInputElement,
    SectionBlock,
    StaticMultiSelectElement,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.incidents.models import ActionItem, DeclareDraft, EntryKind, Incident, IncidentStatus, TimelineEntry
from bot.incidents.settings import IncidentSettings
from bot.views import MAX_BLOCKS, MAX_HEADER_TEXT, MAX_SECTION_TEXT, Message, clip, escape, placeholders
from bot.views.common import timestamp
from bot.views.runbooks import OFFER_ACTION

ACK, COMMANDER, NOTE, HEALTH, RESOLVE, POSTMORTEM = (
    "incident.ack", "incident.commander", "incident.note", "incident.health", "incident.resolve", "incident.postmortem")
ROLE, REOPEN = "incident.role", "incident.reopen"
SEVERITY, STATUS = "incident.severity", "incident.status"
DECLARE_CALLBACK, NOTE_CALLBACK, RESOLVE_CALLBACK = "incident.declare", "incident.note.text", "incident.resolve.summary"
PAGE_NEXT = "incident.timeline.page"
ENTRY_MENU, ENTRY_CALLBACK, FOLLOW_UP_DONE = "incident.entry", "incident.entry.edit", "incident.followup.done"

# The dot is the severity's (most severe first): how bad it is must not look milder because work has progressed.
_SEVERITY_DOTS = ("🔴", "🟠", "🟡", "🔵")
RESOLVED_MARK = "✅"
_ENTRY_EMOJI = {EntryKind.DECLARED: "🚨", EntryKind.ACKNOWLEDGED: "👀", EntryKind.STATUS: "🔁", EntryKind.SEVERITY: "📶",
                EntryKind.ROLE: "🧑‍🚒", EntryKind.NOTE: "📝", EntryKind.PIN: "📌", EntryKind.HEALTH: "🩺",
                EntryKind.ACTION: "🛠️",
                EntryKind.RESOLVED: "✅", EntryKind.REOPENED: "🔁", EntryKind.REMINDER: "⏰", EntryKind.FOLLOW_UP: "📋",
                EntryKind.ALERT: "📟"}


def label(incident: Incident, settings: IncidentSettings) -> str:
    return severity_label(incident.severity, settings)


def severity_label(name: str, settings: IncidentSettings) -> str:
    """`P1 Critical`; just the name when the catalog no longer defines it."""
    severity = settings.severity(name)
    return f"{name} {severity.label}" if severity else name


def mark(incident: Incident, settings: IncidentSettings) -> str:
    """The incident's dot: its severity's colour while open (🔴 the most severe, then 🟠 🟡, 🔵 the rest), ✅ once
    resolved. A severity the catalog no longer defines keeps the loudest colour rather than a calm one."""
    if not incident.open:
        return RESOLVED_MARK
    names = [s.name.upper() for s in settings.severities]
    rank = names.index(incident.severity.upper()) if incident.severity.upper() in names else 0
    return _SEVERITY_DOTS[min(rank, len(_SEVERITY_DOTS) - 1)]


def headline(incident: Incident, settings: IncidentSettings) -> str:
    """`🔴 INC-1 · P1 Critical · Identified: API is down`: colour from the severity, the status in words."""
    return f"{mark(incident, settings)} {incident.key} · {label(incident, settings)} · {incident.status.title}: {incident.title}"


def header(incident: Incident, settings: IncidentSettings, runbooks: list[str] | None = None) -> Message:
    """The pinned header; `runbooks` are those the affected services offer, in a menu while it is open."""
    title = headline(incident, settings)
    roles = ", ".join(f"{role}: <@{user}>" for role, user in incident.roles.items() if role != "commander") or "—"
    ack = f"<@{incident.acknowledged_by}> {timestamp(incident.acknowledged_at)}" if incident.acknowledged_at else "*not yet*"
    fields = [
        MarkdownTextObject(text=f"*Status*\n{incident.status.title}"),
        MarkdownTextObject(text=f"*Severity*\n{label(incident, settings)}"),
        MarkdownTextObject(text="*Commander*\n" + (f"<@{incident.commander}>" if incident.commander else "*none*")),
        MarkdownTextObject(text=f"*Acknowledged*\n{ack}"),
        MarkdownTextObject(text=f"*Declared*\n<@{incident.declared_by}> {timestamp(incident.declared_at)}"),
        MarkdownTextObject(text="*Services*\n" + (", ".join(f"`{s}`" for s in incident.services) or "—")),
        MarkdownTextObject(text=f"*Other roles*\n{roles}"),
    ]
    blocks: list[Block] = [HeaderBlock(text=clip(title, MAX_HEADER_TEXT)), SectionBlock(fields=fields)]
    # description and summary are stored as mrkdwn, made safe where they were typed (handlers/incidents.py)
    if incident.description:
        blocks.append(SectionBlock(text=clip(incident.description, MAX_SECTION_TEXT)))
    if incident.summary:
        blocks.append(SectionBlock(text=clip(f"*Latest:* {incident.summary}", MAX_SECTION_TEXT)))
    value = str(incident.id)
    if incident.open:
        buttons = [ButtonElement(text="Acknowledge", action_id=ACK, value=value,
                                 style="primary")] if not incident.acknowledged_at else []
        buttons += [
            ButtonElement(text="I'm commander", action_id=COMMANDER, value=value),
            ButtonElement(text="Add note", action_id=NOTE, value=value),
            ButtonElement(text="Health check", action_id=HEALTH, value=value),
            ButtonElement(text="Resolve", action_id=RESOLVE, value=value, style="danger"),
            ButtonElement(text="Post-mortem", action_id=POSTMORTEM, value=value),
        ]
    else:
        buttons = [ButtonElement(text="Post-mortem", action_id=POSTMORTEM, value=value, style="primary"),
                   ButtonElement(text="Reopen", action_id=REOPEN, value=value)]
    blocks.append(ActionsBlock(block_id="incident.buttons", elements=buttons))
    blocks.append(ActionsBlock(block_id="incident.selects", elements=[
        StaticSelectElement(placeholder="Change severity", action_id=SEVERITY,
                            options=[Option(text=f"{s.name} {s.label}", value=f"{incident.id}:{s.name}") for s
                                     in settings.severities]),
        StaticSelectElement(placeholder="Update status", action_id=STATUS,
                            options=[Option(text=s.title, value=f"{incident.id}:{s.value}") for s in IncidentStatus]),
        StaticSelectElement(placeholder="Take a role", action_id=ROLE,
                            options=[Option(text=f"I'm {r}", value=f"{incident.id}:{r}") for r in ("communications", "scribe")]),
    ]))
    if incident.open and runbooks:
        blocks.append(ActionsBlock(block_id="incident.runbooks", elements=[StaticSelectElement(
            placeholder="Run a runbook…", action_id=OFFER_ACTION,
            options=[Option(text=clip(name, 75), value=name) for name in runbooks[:100]])]))
    return Message.of(escape(title), blocks)


def announcement(incident: Incident, settings: IncidentSettings) -> Message:
    text = (f"{mark(incident, settings)} *{incident.key}* · {label(incident, settings)}: *{escape(incident.title)}*\n"
            f"Status: {incident.status.title} · Commander: " + (f"<@{incident.commander}>" if incident.commander else "none")
            + (f" · Channel: <#{incident.channel_id}>" if incident.channel_id else ""))
    return Message.of(f"{incident.key} {incident.severity}: {escape(incident.title)}",
                      [SectionBlock(text=clip(text, MAX_SECTION_TEXT))])


def status_update(incident: Incident, text: str, user: str) -> Message:
    body = f"*{incident.key}* · {text}\n_by <@{user}>_"
    return Message.of(f"{incident.key}: {text}", [SectionBlock(text=clip(body, MAX_SECTION_TEXT))])


def notice_in_channel(text: str) -> Message:
    return Message.of(text, [SectionBlock(text=clip(text, MAX_SECTION_TEXT))])


def local_time(at: datetime, tz: str | None) -> str:
    """`09:04 (10:04 Europe/Paris)`: UTC always, the reader's own time beside it when known."""
    utc = at.astimezone(UTC)
    text = f"{utc:%Y-%m-%d %H:%M} UTC"
    if tz and tz != "UTC":
        try:
            local = at.astimezone(ZoneInfo(tz))
            text += f" ({local:%H:%M} {tz})"
        except (KeyError, ValueError):
            pass
    return text


def timeline_message(incident: Incident, entries: list[TimelineEntry], tz: str | None, page: int = 0, *,
                     editable: bool = False, metrics_line: str = "") -> Message:
    """The timeline, a page at a time: pages are cut by blocks and characters, never silently truncated.
    The commander's copy has an Edit/Delete menu on each entry."""
    sections: list[SectionBlock] = []
    if editable:
        for entry in entries:
            menu = OverflowMenuElement(action_id=ENTRY_MENU, options=[Option(text="Edit", value=f"edit:{entry.id}"),
                                                                      Option(text="Delete", value=f"delete:{entry.id}")])
            sections.append(SectionBlock(text=clip(_entry_line(entry, tz), MAX_SECTION_TEXT), accessory=menu))
    else:
        chunk: list[str] = []
        for line in (_entry_line(entry, tz) for entry in entries):  # sections of up to 3,000 characters
            if chunk and len("\n".join([*chunk, line])) > MAX_SECTION_TEXT:
                sections.append(SectionBlock(text="\n".join(chunk)))
                chunk = []
            chunk.append(clip(line, MAX_SECTION_TEXT))
        if chunk:
            sections.append(SectionBlock(text="\n".join(chunk)))
    per_page = MAX_BLOCKS - 5  # header, metrics, footer, next-page button, one spare
    total_pages = max(1, -(-len(sections) // per_page))
    page = min(max(page, 0), total_pages - 1)
    blocks: list[Block] = [HeaderBlock(text=clip(f"Timeline of {incident.key}: {incident.title}", MAX_HEADER_TEXT))]
    if metrics_line:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=metrics_line)]))
    blocks += sections[page * per_page:(page + 1) * per_page] or [SectionBlock(text="_Nothing on the timeline yet._")]
    note = " · use ⋯ to correct an entry" if editable else ""
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"Page {page + 1} of {total_pages} · {len(entries)} entries · "
                                                                 f"UTC, your time beside{note}")]))
    if page + 1 < total_pages:
        blocks.append(ActionsBlock(elements=[ButtonElement(text="Next page", action_id=PAGE_NEXT,
                                                           value=f"{incident.id}:{page + 1}")]))
    return Message.of(f"Timeline of {incident.key}", blocks)


def _entry_line(entry: TimelineEntry, tz: str | None) -> str:
    who = f"<@{entry.author}>" if entry.author else "opsbot"
    link = f" (<{entry.permalink}|message>)" if entry.permalink else ""
    edited = " _(edited)_" if entry.edited_by else ""
    # Entries are stored as mrkdwn, made safe where they were typed: not escaped again here.
    return f"{_ENTRY_EMOJI.get(entry.kind, '•')} `{local_time(entry.at, tz)}` {who}: {clip(entry.text, 600)}{link}{edited}"


def entry_modal(entry: TimelineEntry) -> dict[str, Any]:
    return View(type="modal", callback_id=ENTRY_CALLBACK, title="Correct the timeline", submit="Save", close="Cancel",
                private_metadata=str(entry.id), blocks=[
                    InputBlock(block_id="text", label="What happened", element=PlainTextInputElement(
                        action_id="text.input", multiline=True, initial_value=html.unescape(entry.text)[:3000], max_length=3000)),
                    InputBlock(block_id="at", label="When (UTC, YYYY-MM-DD HH:MM)", element=PlainTextInputElement(
                        action_id="at.input", initial_value=f"{entry.at.astimezone(UTC):%Y-%m-%d %H:%M}", max_length=16)),
                ]).to_dict()


def follow_ups(incident: Incident, items: list[ActionItem]) -> Message:
    if not items:
        text = placeholders(f'No follow-ups for {incident.key} yet: `/incident action "<what>" @owner YYYY-MM-DD`.')
        return Message.of("No follow-ups.", [SectionBlock(text=text)])
    blocks: list[Block] = [HeaderBlock(text=clip(f"Follow-ups of {incident.key}", MAX_HEADER_TEXT))]
    if len(items) > MAX_BLOCKS - 2:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"Showing the first {MAX_BLOCKS - 2} of {len(items)}.")]))
    for item in items[:MAX_BLOCKS - 2]:
        owner = f" — <@{item.owner}>" if item.owner else ""
        due = f", due {item.due.isoformat()}" if item.due else ""
        done = "✅" if item.done_at else "⬜"
        accessory = None if item.done_at else ButtonElement(text="Done", action_id=FOLLOW_UP_DONE, value=str(item.id))
        blocks.append(SectionBlock(text=clip(f"{done} #{item.id} {item.text}{owner}{due}", MAX_SECTION_TEXT),
                                   accessory=accessory))
    return Message.of(f"Follow-ups of {incident.key}", blocks)


def incident_list(incidents: list[Incident], settings: IncidentSettings) -> Message:
    if not incidents:
        return Message.of("No incidents.", [SectionBlock(text="No open incidents. :sunny:")])
    room = MAX_BLOCKS - 2
    blocks: list[Block] = [HeaderBlock(text=f"Open incidents ({len(incidents)})")]
    for i in incidents[:room]:
        line = (f"{mark(i, settings)} *{i.key}* · {label(i, settings)} · {escape(i.title)} · {i.status.title} · "
                + (f"<#{i.channel_id}>" if i.channel_id else "") + f" · {timestamp(i.declared_at)}")
        blocks.append(SectionBlock(text=clip(line, MAX_SECTION_TEXT)))
    if len(incidents) > room:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"…and {len(incidents) - room} older ones not shown.")]))
    return Message.of(f"{len(incidents)} open incident(s)", blocks)


def _text_input(block_id: str, label_text: str, *, multiline: bool = False, optional: bool = False, max_length: int = 3000,
                initial: str = "") -> InputBlock:
    return InputBlock(block_id=block_id, label=label_text, optional=optional,
                      element=PlainTextInputElement(action_id=f"{block_id}.input", multiline=multiline, max_length=max_length,
                                                    initial_value=clip(initial, max_length) if initial else None))


def declare_modal(settings: IncidentSettings, services: list[str], channel: str | None,
                  draft: DeclareDraft | None = None) -> dict[str, Any]:
    """The declare form; a `draft` (from a red health report or a failed run) prefills it, every field editable."""
    draft = draft or DeclareDraft()
    severities = [Option(text=f"{s.name} {s.label} (ack within {s.response_minutes:g} min)", value=s.name)
                  for s in settings.severities]
    blocks: list[Block] = [
        _text_input("title", "Title", max_length=150, initial=draft.title),
        InputBlock(block_id="severity", label="Severity",
                   hint="Suggested from what failed: change it if it is worse." if draft.severity else None,
                   element=StaticSelectElement(
            action_id="severity.input", placeholder="Pick one", options=severities,
            initial_option=next((o for o in severities if o.value == draft.severity), None))),
    ]
    if services:
        offered = [Option(text=s, value=s) for s in services[:100]]
        chosen = [o for o in offered if o.value in draft.services]
        blocks.append(InputBlock(block_id="services", label="Affected services", optional=True, element=StaticMultiSelectElement(
            action_id="services.input", placeholder="Services", options=offered, initial_options=chosen or None)))
    blocks.append(_text_input("description", "What is happening?", multiline=True, optional=True, initial=draft.description))
    return View(type="modal", callback_id=DECLARE_CALLBACK, title="Declare an incident", submit="Declare", close="Cancel",
                private_metadata=declare_metadata(channel, draft.alert_group), blocks=blocks).to_dict()


_ALERT_GROUP = "|alert-group:"


def declare_metadata(channel: str | None, alert_group: int | None) -> str:
    """The declare form's metadata: the channel it was asked in, and the alert group it was asked from."""
    return f"{channel or ''}{_ALERT_GROUP}{alert_group}" if alert_group is not None else channel or ""


def read_declare_metadata(metadata: str) -> tuple[str | None, int | None]:
    """(channel, alert group) from `declare_metadata`; a form opened before alerts carried the channel alone."""
    channel, _, group = metadata.partition(_ALERT_GROUP)
    return channel or None, int(group) if group.isdigit() else None


def text_modal(callback_id: str, title: str, prompt: str, incident: Incident, *, optional: bool) -> dict[str, Any]:
    return View(type="modal", callback_id=callback_id, title=title[:24], submit="Save", close="Cancel",
                private_metadata=str(incident.id), blocks=[
                    SectionBlock(text=f"*{incident.key}*: {escape(incident.title)}"),
                    _text_input("text", prompt, multiline=True, optional=optional),
                ]).to_dict()


def reminder(incident: Incident, text: str) -> Message:
    return Message.of(f"{incident.key}: {text}", [SectionBlock(text=clip(f"⏰ *{incident.key}* · {text}", MAX_SECTION_TEXT))])
