"""An incident's response metrics (time to acknowledge, mitigate, resolve; impact window) and how durations read.

Pure arithmetic on the stored records: no store, no clock, no rendering beyond `format_duration`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.incidents.models import EntryKind, Incident, TimelineEntry
from bot.views.words import duration

_ZERO = timedelta(0)


@dataclass(frozen=True)
class IncidentMetrics:
    time_to_acknowledge: timedelta | None  # declared → acknowledged
    time_to_mitigate: timedelta | None  # declared → first Monitoring
    time_to_resolve: timedelta | None  # declared → resolved
    impact_start: datetime  # the declaration, or an earlier timeline entry (a backdated "it started at")
    impact_end: datetime | None  # resolved, or None while the incident is open
    impact_window: timedelta | None


def as_utc(moment: datetime) -> datetime:
    """The same instant in UTC; a naive time is taken to be UTC already, as the store writes them."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _between(start: datetime, end: datetime | None) -> timedelta | None:
    if end is None:
        return None
    # An edited timestamp can put a milestone before the declaration; a negative duration would read as nonsense.
    return max(as_utc(end) - start, _ZERO)


def metrics(incident: Incident, entries: Sequence[TimelineEntry]) -> IncidentMetrics:
    """Milestones come from the timeline, so the commander's corrections (a time edited, a wrong entry
    deleted) change them; the incident's own columns stand in only where the timeline has no such entry."""
    declared = as_utc(incident.declared_at)
    live = [entry for entry in entries if not entry.deleted]
    times = [as_utc(entry.at) for entry in live]
    start = min([declared, *times])
    acknowledged = _milestone(entries, lambda e: e.kind is EntryKind.ACKNOWLEDGED, incident.acknowledged_at, first=True)
    resolved = _milestone(entries, lambda e: e.kind is EntryKind.RESOLVED, incident.resolved_at, first=False)
    if incident.open:
        resolved = None  # reopened: the earlier resolution no longer ends it
    mitigated = _milestone(entries, lambda e: (e.kind is EntryKind.STATUS and "→ monitoring" in e.text)
                           or e.kind is EntryKind.RESOLVED,
                           incident.mitigated_at, first=True)
    end = as_utc(resolved) if resolved is not None else None
    return IncidentMetrics(
        time_to_acknowledge=_between(declared, acknowledged),
        time_to_mitigate=_between(declared, mitigated),
        time_to_resolve=_between(declared, resolved),
        impact_start=start,
        impact_end=end,
        impact_window=_between(start, end),
    )


def _milestone(entries: Sequence[TimelineEntry], matches: Callable[[TimelineEntry], bool], column: datetime | None,
               *, first: bool) -> datetime | None:
    found = [entry for entry in entries if matches(entry)]
    live = sorted(as_utc(entry.at) for entry in found if not entry.deleted)
    if live:
        return live[0] if first else live[-1]
    return None if found else column  # every such entry deleted: the milestone was a mistake


def format_duration(delta: timedelta | None) -> str:
    """'4 min', '1 h 12 min', '2 d 3 h' (`bot.views.words.duration`, the one way messages say how long)."""
    return duration(delta)
