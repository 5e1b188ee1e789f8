"""Appending to an incident's timeline, including from other features (health checks and action runs
started in an incident channel). Entries are rows first; views read them back."""

from __future__ import annotations

import logging
from typing import Protocol

from bot.clock import Clock
from bot.incidents.models import EntryKind, Incident, TimelineEntry

log = logging.getLogger(__name__)


class _Timelines(Protocol):
    async def incident_by_channel(self, channel_id: str) -> Incident | None: ...

    async def add_entry(self, entry: TimelineEntry) -> int | None: ...


class TimelineDeps(Protocol):
    """What appending needs (the bot's `Context` has it; so do the run flows' narrow ports)."""

    @property
    def store(self) -> _Timelines: ...

    @property
    def clock(self) -> Clock: ...


async def append(ctx: TimelineDeps, incident: Incident, kind: EntryKind, text: str, author: str | None, *,
                 permalink: str | None = None, source_ts: str | None = None) -> int | None:
    return await ctx.store.add_entry(TimelineEntry(
        incident_id=incident.id or 0, at=ctx.clock.now(), kind=kind, text=text[:3000], author=author,
        permalink=permalink, source_ts=source_ts))


async def from_channel(ctx: TimelineDeps, channel_id: str | None, kind: EntryKind, text: str, author: str | None) -> None:
    """Record something that happened in a channel, if that channel is an incident's. Never fails the caller."""
    if not channel_id:
        return
    try:
        incident = await ctx.store.incident_by_channel(channel_id)
        if incident is not None:
            await append(ctx, incident, kind, text, author)
    except Exception:
        log.exception("could not add to the timeline of the incident in %s", channel_id)
