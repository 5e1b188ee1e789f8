"""The post-mortem document and the metrics in it: what is filled in, what is left to people, and what a
broken or hostile catalog template cannot take away."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from bot.incidents.metrics import format_duration, metrics
from bot.incidents.models import (
    ActionItem,
    EntryKind,
    Incident,
    IncidentStatus,
    TimelineEntry,
)
from bot.incidents.postmortem import render_postmortem
from bot.incidents.settings import IncidentSettings

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=1, hours=1)
SERVICES = {"api": "production", "db": "production"}
NAMES = {"U1": "alice", "U2": "bob", "U3": "carol"}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def an_incident(**changes: object) -> Incident:
    fields: dict = dict(id=42, title="API is down", severity="P1", declared_by="U1", declared_at=T0,
                        services=("api", "db"), description="5xx on every request", roles={"commander": "U2"})
    fields.update(changes)
    return Incident(**fields)


def a_resolved_incident(**changes: object) -> Incident:
    fields: dict = dict(status=IncidentStatus.RESOLVED, acknowledged_at=at(4), acknowledged_by="U2",
                        mitigated_at=at(30), resolved_at=at(72), summary="Rolled back to v41.")
    fields.update(changes)
    return an_incident(**fields)


def an_entry(minutes: float, text: str = "a note", kind: EntryKind = EntryKind.NOTE, author: str | None = "U2",
             **changes: object) -> TimelineEntry:
    return TimelineEntry(42, at(minutes), kind, text, author, **changes)  # type: ignore[arg-type]


def an_item(text: str, owner: str | None = None, due: date | None = None, done: bool = False) -> ActionItem:
    return ActionItem(42, text, "U1", at(80), owner=owner, due=due, done_at=at(90) if done else None)


def document(incident: Incident | None = None, entries: list[TimelineEntry] | None = None,
             items: list[ActionItem] | None = None, template: str | None = None,
             names: dict[str, str] | None = NAMES) -> str:
    return render_postmortem(incident or a_resolved_incident(), entries or [], items or [],
                             IncidentSettings(postmortem_template=template), services=SERVICES, now=NOW, names=names)


def section(text: str, heading: str) -> str:
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


# --- metrics --------------------------------------------------------------------------------------------------


def test_each_duration_is_measured_from_the_declaration() -> None:
    measured = metrics(a_resolved_incident(), [an_entry(0, kind=EntryKind.DECLARED), an_entry(10)])
    assert measured.time_to_acknowledge == timedelta(minutes=4)
    assert measured.time_to_mitigate == timedelta(minutes=30)
    assert measured.time_to_resolve == timedelta(minutes=72)
    assert (measured.impact_start, measured.impact_end, measured.impact_window) == (T0, at(72), timedelta(minutes=72))


def test_milestones_not_reached_have_no_duration() -> None:
    measured = metrics(an_incident(acknowledged_at=at(4)), [an_entry(10)])
    assert measured.time_to_acknowledge == timedelta(minutes=4)
    assert (measured.time_to_mitigate, measured.time_to_resolve) == (None, None)
    assert (measured.impact_start, measured.impact_end, measured.impact_window) == (T0, None, None)


def test_a_backdated_entry_extends_the_impact_window() -> None:
    measured = metrics(a_resolved_incident(), [an_entry(-25, "errors started (from the graphs)"), an_entry(10)])
    assert measured.impact_start == at(-25)
    assert measured.impact_window == timedelta(minutes=97)
    assert measured.time_to_resolve == timedelta(minutes=72)  # response times still count from the declaration


def test_deleted_entries_are_ignored() -> None:
    measured = metrics(a_resolved_incident(), [an_entry(-600, "wrong time", deleted=True), an_entry(10)])
    assert measured.impact_start == T0
    assert measured.impact_window == timedelta(minutes=72)


@pytest.mark.parametrize(("delta", "shown"), [
    (None, "—"),
    (timedelta(0), "< 1 min"),
    (timedelta(seconds=59), "< 1 min"),
    (timedelta(minutes=4, seconds=59), "4 min"),
    (timedelta(hours=1), "1 h"),
    (timedelta(hours=1, minutes=12), "1 h 12 min"),
    (timedelta(days=2, hours=3, minutes=40), "2 d 3 h"),
    (timedelta(days=1), "1 d"),
])
def test_format_duration(delta: timedelta | None, shown: str) -> None:
    assert format_duration(delta) == shown


# --- the default document -------------------------------------------------------------------------------------


def test_the_default_document_follows_the_runbooks_report() -> None:
    text = document()
    assert text.startswith("# Post-mortem: INC-42 — API is down\n")
    headings = re.findall(r"^## (.+)$", text, re.MULTILINE)
    assert headings == ["Summary", "Impact", "Timeline", "Metrics", "Root cause", "Resolution", "Action items",
                        "Lessons learned"]
    for row in ["| **Date** | 2026-11-23 |", "| **Duration** | 1 h 12 min |", "| **Severity** | P1 (Critical) |",
                "| **Status** | Resolved |", "| **Commander** | @bob |",
                "| **Affected services** | api (production), db (production) |",
                "| **Declared by** | @alice, 2026-11-23 09:00 UTC |"]:
        assert row in text
    assert "5xx on every request" in section(text, "Summary")


def test_other_roles_are_listed_beside_the_commander() -> None:
    text = document(a_resolved_incident(roles={"scribe": "U3", "commander": "U2", "communications": "U1"}))
    assert "| **Commander** | @bob |" in text
    assert "| **Other roles** | Communications: @alice, Scribe: @carol |" in text


def test_timeline_rows_are_in_time_order_in_utc_with_links_to_pinned_messages() -> None:
    paris = timezone(timedelta(hours=1))
    entries = [
        an_entry(10, "restarting the api pods"),
        an_entry(0, "Declared P1: API is down", EntryKind.DECLARED, "U1"),
        TimelineEntry(42, datetime(2026, 11, 23, 10, 20, tzinfo=paris), EntryKind.PIN, "error rate back to 0.1%",
                      "U3", permalink="https://acme.slack.com/archives/C1/p1700000000000100"),
        an_entry(5, "not acknowledged in 15 min", EntryKind.REMINDER, None),
        an_entry(7, "this was a mistake", deleted=True),
    ]
    rows = [line for line in section(document(entries=entries), "Timeline").splitlines() if line.startswith("| 2026")]
    assert rows == [
        "| 2026-11-23 09:00 UTC | @alice | Declared P1: API is down |",
        "| 2026-11-23 09:05 UTC | opsbot | not acknowledged in 15 min |",
        "| 2026-11-23 09:10 UTC | @bob | restarting the api pods |",
        ("| 2026-11-23 09:20 UTC | @carol | error rate back to 0.1% "
         "([message](https://acme.slack.com/archives/C1/p1700000000000100)) |"),
    ]


def test_metrics_section_shows_each_duration() -> None:
    text = document(entries=[an_entry(-20, "it started here")])
    metrics_part = section(text, "Metrics")
    for row in ["| Time to acknowledge | 4 min |", "| Time to mitigate | 30 min |", "| Time to resolve | 1 h 12 min |",
                "| Impact window | 1 h 32 min |"]:
        assert row in metrics_part
    assert "2026-11-23 08:40 UTC → 2026-11-23 10:12 UTC (1 h 32 min)" in section(text, "Impact")


def test_an_open_incident_reads_as_ongoing() -> None:
    text = document(an_incident())
    assert "| **Duration** | ongoing, 1 d 1 h so far |" in text
    assert "| Time to resolve | — |" in text
    assert "→ ongoing (—)" in section(text, "Impact")
    assert "_To fill:" in section(text, "Resolution")


def test_action_items_are_checkboxes_with_owner_and_due_date() -> None:
    items = [an_item("Alert on pool saturation", "U3", date(2026, 12, 1)), an_item("Restart runbook", done=True),
             an_item("Load test", due=date(2026, 12, 15))]
    assert section(document(items=items), "Action items").strip().splitlines() == [
        "- [ ] Alert on pool saturation — owner @carol, due 2026-12-01",
        "- [x] Restart runbook",
        "- [ ] Load test — due 2026-12-15",
    ]
    assert "None recorded yet" in section(document(items=[]), "Action items")


def test_what_only_people_know_is_marked_to_fill() -> None:
    text = document()
    assert "_To fill:" in section(text, "Root cause")
    assert "**Users affected:** _To fill:" in section(text, "Impact")
    assert section(text, "Lessons learned").count("_To fill") == 3
    assert "Rolled back to v41." in section(text, "Resolution") and "To fill" not in section(text, "Resolution")
    assert "_To fill:" in section(document(a_resolved_incident(summary="")), "Resolution")


def test_people_are_written_as_names_never_as_slack_mentions() -> None:
    entries = [an_entry(3, "<@U2> is commander", EntryKind.ROLE, "U1")]
    named = document(entries=entries)
    assert "| @alice | @bob is commander |" in named and "<@" not in named
    unnamed = document(entries=entries, names=None)
    assert "| **Commander** | @U2 |" in unnamed and "| @U1 | @U2 is commander |" in unnamed


def test_markdown_in_notes_cannot_break_the_timeline_table() -> None:
    entries = [an_entry(10, "# pool exhausted | see graphs\nsecond line"), an_entry(11, r"grep 'a\|b' logs")]
    text = document(a_resolved_incident(description="Errors.\n## Root cause\nDNS, obviously"), entries=entries)
    rows = [line for line in section(text, "Timeline").splitlines() if line.startswith("| 2026")]
    # A row keeps its three cells: every pipe in the text is escaped, and a backslash typed before one does not
    # un-escape it.
    assert [len(re.findall(r"(?<!\\)(?:\\\\)*\|", row)) for row in rows] == [4, 4]
    assert rows[0] == r"| 2026-11-23 09:10 UTC | @bob | \# pool exhausted \| see graphs<br>second line |"
    assert not re.search(r"^#+ pool", text, re.MULTILINE)
    assert re.findall(r"^## Root cause$", text, re.MULTILINE) == ["## Root cause"]


# --- catalog templates ----------------------------------------------------------------------------------------

CUSTOM = """\
{{ incident.key }} {{ incident.severity }}/{{ incident.severity_label }} {{ incident.status }} by {{ incident.commander }}
services: {% for s in incident.services %}{{ s.name }}@{{ s.environment }} {% endfor %}

{% for e in timeline %}
{{ e.at_utc }} {{ e.kind }} {{ e.author }}: {{ e.text }}
{% endfor %}
ack {{ metrics.time_to_acknowledge }}, resolve {{ metrics.time_to_resolve }}, window {{ metrics.impact_window }}
{% for a in action_items %}
{{ a.text }} / {{ a.owner }} / {{ a.due }} / {{ a.done }}
{% endfor %}
{{ date }} {{ duration }} {{ generated_at }}
"""


def test_a_catalog_template_is_rendered_with_the_documented_values() -> None:
    text = document(entries=[an_entry(10, "restarting")], items=[an_item("Alert", "U3", date(2026, 12, 1))],
                    template=CUSTOM)
    assert text == (
        "INC-42 P1/Critical Resolved by @bob\n"
        "services: api@production db@production \n"
        "2026-11-23 09:10 UTC note @bob: restarting\n"
        "ack 4 min, resolve 1 h 12 min, window 1 h 12 min\n"
        "Alert / @carol / 2026-12-01 / False\n"
        "2026-11-23 1 h 12 min 2026-11-24 10:00 UTC\n"
    )


@pytest.mark.parametrize("template", ["{{ incident.__class__.__mro__ }}", "{{ ''.__class__.__subclasses__() }}"])
def test_a_template_escaping_the_sandbox_falls_back_to_the_default_with_a_note(template: str) -> None:
    text = document(template=template)
    note, rest = text.split("\n\n", 1)
    assert note.startswith("> **Note:** the catalog's post-mortem template failed (`SecurityError")
    assert "uses the default template" in note
    assert rest.startswith("# Post-mortem: INC-42 — API is down\n") and "## Lessons learned" in rest
    assert "object at 0x" not in text and "<class" not in text


def test_an_undefined_variable_falls_back_to_the_default_with_a_note() -> None:
    text = document(template="# {{ incident.key }}\n{{ incident.customer_count }} customers\n")
    assert text.startswith("> **Note:** the catalog's post-mortem template failed (`UndefinedError")
    assert "customer_count" in text.split("\n\n", 1)[0]
    assert "## Timeline" in text and "| **Commander** | @bob |" in text
