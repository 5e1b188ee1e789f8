"""The post-mortem document: an incident, its timeline, metrics and follow-ups as Markdown, from the catalog's
template or the default one beside this module. Not responsible for uploading it or for reading the store.

A catalog template (`incidents.postmortem_template`, Jinja2 in its sandbox, undefined names are errors) gets:

- `incident`: `key` ("INC-42"), `title`, `severity` ("P1"), `severity_label` ("Critical", "" if the catalog no
  longer has that severity), `status` ("Resolved"), `description`, `summary` (the latest status or resolve
  summary), `services` (list of {`name`, `environment`}; environment "" for a service no longer in the catalog),
  `declared_at` ("2026-11-23 09:04 UTC"), `declared_by` ("@Name"), `commander` ("@Name", "" if none),
  `roles` (list of {`role` ("commander", "communications", "scribe"), `title` ("Communications"), `user`}).
- `timeline`: list, oldest first, of {`at_utc` ("2026-11-23 09:04 UTC"), `kind` ("note", "status", "pin", …),
  `text`, `author` ("@Name", "" for the bot's own entries), `permalink` (the pinned message's link, or "")}.
- `metrics`: strings: `time_to_acknowledge`, `time_to_mitigate`, `time_to_resolve`, `impact_window`
  ("1 h 12 min", "—" when not reached), `impact_start`, `impact_end` ("2026-11-23 09:04 UTC"; "ongoing").
- `action_items`: list of {`text`, `owner` ("@Name" or ""), `due` ("2026-12-01" or ""), `done` (bool)}.
- `date` (of the declaration, "2026-11-23"), `duration` ("1 h 12 min", or "ongoing, 40 min so far"),
  `generated_at` ("2026-11-24 10:00 UTC").

Times are UTC. People are "@Name" (or "@U123" without a name). Every text is Markdown-safe on one line and in
a table cell (pipes escaped, line breaks as <br>), except `incident.description` and `incident.summary`,
which are Markdown paragraphs and may span lines.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from importlib.resources import files
from typing import Any

from bot.incidents.metrics import as_utc, format_duration, metrics
from bot.incidents.models import ActionItem, Incident, Role, TimelineEntry
from bot.incidents.settings import IncidentSettings
from bot.incidents.templates import render

log = logging.getLogger(__name__)

# Slack's markup in message text: <@U123>, <#C123|name>, <!here>, <!subteam^S1|@team>, <https://x|label>.
_SLACK_TOKEN = re.compile(r"<([^<>\n]+)>")
_PIPE = re.compile(r"(\\*)\|")
_URL_UNSAFE = str.maketrans({" ": "%20", "|": "%7C", "(": "%28", ")": "%29", "<": "%3C", ">": "%3E"})
# Line starts that would turn a paragraph into a heading, an HTML block or a fence running past it.
_BLOCK_START = re.compile(r"#|<|~~~|(=+|-+)\s*$")


@functools.cache
def default_template() -> str:
    return files("bot.incidents").joinpath("postmortem.md.j2").read_text(encoding="utf-8")


def render_postmortem(incident: Incident, entries: Sequence[TimelineEntry], items: Sequence[ActionItem],
                      settings: IncidentSettings, *, services: Mapping[str, str], now: datetime,
                      names: Mapping[str, str] | None = None) -> str:
    """The document as Markdown. `services` maps service name → environment; `names` user ID → display name.

    A catalog template that fails while rendering does not cost the post-mortem: the default template is used
    and the document opens with a note saying why, so it can still be written at 3 a.m. and fixed later.
    """
    values = postmortem_values(incident, entries, items, settings, services=services, now=now, names=names)
    if settings.postmortem_template is None:
        return render(default_template(), values)
    try:
        return render(settings.postmortem_template, values)
    except Exception as exc:  # noqa: BLE001 - whatever the template does wrong (sandbox, undefined, 1/0), the data is fine
        log.warning("the catalog's post-mortem template failed for %s: %s: %s", incident.key, type(exc).__name__, exc)
        # In a code span, so names like __class__ in the reason are not read as Markdown emphasis.
        reason = _inline(f"{type(exc).__name__}: {exc}".replace("`", "'"))
        note = (f"> **Note:** the catalog's post-mortem template failed (`{reason}`), so this document uses the "
                "default template. Fix `incidents.postmortem_template` in the catalog.\n\n")
        return note + render(default_template(), values)


def postmortem_values(incident: Incident, entries: Sequence[TimelineEntry], items: Sequence[ActionItem],
                      settings: IncidentSettings, *, services: Mapping[str, str], now: datetime,
                      names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What a template is given (see the module docstring); plain dicts, lists and strings only."""
    people = dict(names or {})
    kept = sorted((e for e in entries if not e.deleted), key=lambda e: as_utc(e.at))
    measured = metrics(incident, kept)
    severity = settings.severity(incident.severity)
    if measured.time_to_resolve is not None:
        duration = format_duration(measured.time_to_resolve)
    else:
        duration = f"ongoing, {format_duration(as_utc(now) - as_utc(incident.declared_at))} so far"
    return {
        "incident": {
            "key": incident.key,
            "title": _inline(incident.title, people),
            "severity": incident.severity,
            "severity_label": severity.label if severity else "",
            "status": incident.status.title,
            "description": _block(incident.description, people),
            "summary": _block(incident.summary, people),
            "services": [{"name": name, "environment": _inline(services.get(name, ""))} for name in incident.services],
            "declared_at": _when(incident.declared_at),
            "declared_by": _person(incident.declared_by, people),
            "commander": _person(incident.commander, people),
            "roles": [{"role": role, "title": role.capitalize(), "user": _person(user, people)}
                      for role, user in sorted(incident.roles.items(), key=_role_order)],
        },
        "timeline": [{"at_utc": _when(e.at), "kind": e.kind.value, "text": _inline(e.text, people),
                      "author": _person(e.author, people), "permalink": _url(e.permalink)} for e in kept],
        "metrics": {
            "time_to_acknowledge": format_duration(measured.time_to_acknowledge),
            "time_to_mitigate": format_duration(measured.time_to_mitigate),
            "time_to_resolve": format_duration(measured.time_to_resolve),
            "impact_window": format_duration(measured.impact_window),
            "impact_start": _when(measured.impact_start),
            "impact_end": _when(measured.impact_end) if measured.impact_end else "ongoing",
        },
        "action_items": [{"text": _inline(i.text, people), "owner": _person(i.owner, people),
                          "due": i.due.isoformat() if i.due else "", "done": i.done_at is not None} for i in items],
        "date": as_utc(incident.declared_at).date().isoformat(),
        "duration": duration,
        "generated_at": _when(now),
    }


def _role_order(item: tuple[str, str]) -> tuple[int, str]:
    known = [r.value for r in Role]
    return (known.index(item[0]) if item[0] in known else len(known), item[0])


def _when(moment: datetime) -> str:
    return as_utc(moment).strftime("%Y-%m-%d %H:%M UTC")


def _person(user: str | None, names: Mapping[str, str]) -> str:
    # A file has no Slack to resolve <@U123>, so a person is written as a name a reader can see.
    return _inline(f"@{names.get(user, user)}") if user else ""


def _url(link: str | None) -> str:
    # Slack permalinks are plain, but a stray space, pipe or parenthesis would end the Markdown link or cell.
    if not link or not link.startswith(("https://", "http://")):
        return ""
    return link.translate(_URL_UNSAFE)


def _plain(text: str, names: Mapping[str, str]) -> str:
    """Slack's message markup as plain text a reader of the file understands."""
    def token(match: re.Match[str]) -> str:
        target, _, label = match.group(1).partition("|")
        if target.startswith("@"):
            return "@" + names.get(target[1:], label or target[1:])
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            return label or "@" + target[1:].split("^")[0]
        if target.startswith("mailto:"):
            return label or target[len("mailto:"):]
        return f"{label} ({target})" if label and label != target else target

    text = _SLACK_TOKEN.sub(token, text.replace("\r\n", "\n"))
    # Slack escapes these three in message text; the file is read by people, not by Slack.
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _inline(text: str, names: Mapping[str, str] | None = None) -> str:
    """One line, safe in a table cell and at the start of a line, otherwise untouched so it stays readable."""
    text = _plain(text, names or {}).strip()
    # GFM splits cells on any pipe not escaped; backslashes the user typed before one must not un-escape it.
    text = _PIPE.sub(lambda m: m.group(1) * 2 + "\\|", text)
    text = "<br>".join(line.strip() for line in text.split("\n") if line.strip())
    return "\\" + text if text.startswith("#") else text


def _block(text: str, names: Mapping[str, str]) -> str:
    """Paragraphs that keep the writer's Markdown but cannot open a heading or swallow the sections after them."""
    lines = []
    fences = 0
    for line in _plain(text, names).strip().split("\n"):
        stripped = line.lstrip(" ")
        if stripped.startswith("```"):
            fences += 1
        elif fences % 2 == 0 and _BLOCK_START.match(stripped) and len(line) - len(stripped) < 4:
            # A heading would pose as a section of the document; an HTML block or an unclosed ~~~ fence runs on
            # past the paragraph; a line of = or - turns the line above into a heading.
            line = line[: len(line) - len(stripped)] + "\\" + stripped
        lines.append(line)
    if fences % 2:
        lines.append("```")  # an unclosed code fence would turn the rest of the document into code
    return "\n".join(lines).strip("\n")
