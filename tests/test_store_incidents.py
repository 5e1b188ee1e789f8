"""Store contract for incidents, timelines and follow-up items — on both backends."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

from bot.incidents.models import ActionItem, EntryKind, Incident, IncidentStatus, TimelineEntry
from bot.store import Store

T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


async def an_incident(store: Store, **changes: object) -> Incident:
    fields: dict = dict(title="API is down", severity="P1", declared_by="U1", declared_at=T0, services=("api", "db"),
                        description="5xx everywhere", roles={"commander": "U1"}, last_update_at=T0)
    fields.update(changes)
    incident_id = await store.create_incident(Incident(**fields))
    incident = await store.get_incident(incident_id)
    assert incident is not None
    return incident


async def test_an_incident_round_trips_and_is_found_by_its_channel(store: Store) -> None:
    incident = await an_incident(store)
    assert (incident.key, incident.services, incident.commander, incident.status) == (f"INC-{incident.id}", ("api", "db"), "U1",
                                                                                      IncidentStatus.INVESTIGATING)
    assert await store.update_incident(incident.id or 0, channel_id="C0INC1", channel_name="inc-20261123-api-is-down")
    found = await store.incident_by_channel("C0INC1")
    assert found is not None and found.id == incident.id and found.declared_at == T0
    assert await store.incident_by_channel("C0OTHER") is None


async def test_the_first_acknowledgement_wins(store: Store) -> None:
    incident = await an_incident(store)
    results = await asyncio.gather(*(store.update_incident(incident.id or 0, unless_set="acknowledged_at", acknowledged_at=T0
                                                           + timedelta(minutes=i), acknowledged_by=f"U{i}") for i in range(5)))
    assert results.count(True) == 1
    stored = await store.get_incident(incident.id or 0)
    assert stored is not None and stored.acknowledged_by == f"U{results.index(True)}"


async def test_open_incidents_newest_first(store: Store) -> None:
    old = await an_incident(store)
    new = await an_incident(store, declared_at=T0 + timedelta(hours=1))
    await store.update_incident(old.id or 0, status=IncidentStatus.RESOLVED, resolved_at=T0 + timedelta(hours=2))
    assert [i.id for i in await store.incidents(open_only=True)] == [new.id]
    assert [i.id for i in await store.incidents()] == [new.id, old.id]


async def test_timeline_entries_in_time_order_edited_and_deleted(store: Store) -> None:
    incident = await an_incident(store)
    iid = incident.id or 0
    late = await store.add_entry(TimelineEntry(iid, T0 + timedelta(minutes=10), EntryKind.NOTE, "rolled back", "U2"))
    early = await store.add_entry(TimelineEntry(iid, T0, EntryKind.DECLARED, "declared", "U1"))
    assert [e.id for e in await store.entries(iid)] == [early, late]
    assert await store.edit_entry(late or 0, by="U1", text="rolled back to v41", at=T0 + timedelta(minutes=9))
    edited = await store.get_entry(late or 0)
    assert edited is not None and (edited.text, edited.at, edited.edited_by) == ("rolled back to v41", T0 + timedelta(minutes=9),
                                                                                 "U1")
    assert await store.delete_entry(early or 0, by="U1")
    assert [e.id for e in await store.entries(iid)] == [late]
    assert len(await store.entries(iid, include_deleted=True)) == 2


async def test_a_pinned_message_is_on_the_timeline_once_and_can_be_unpinned(store: Store) -> None:
    incident = await an_incident(store)
    iid = incident.id or 0
    pin = TimelineEntry(iid, T0, EntryKind.PIN, "the cache is cold", "U2", permalink="https://x/p1", source_ts="1.2")
    assert await store.add_entry(pin) is not None
    assert await store.add_entry(pin) is None
    assert await store.delete_pin(iid, "1.2", by="U2") is True
    assert await store.entries(iid) == []
    assert await store.add_entry(pin) is not None  # pinned again after removal


async def test_follow_up_items(store: Store) -> None:
    incident = await an_incident(store)
    item_id = await store.add_action_item(ActionItem(incident.id or 0, "Add an alert on 5xx", "U1", T0, owner="U2",
                                                     due=date(2026, 12, 1)))
    [item] = await store.action_items(incident.id or 0)
    assert (item.id, item.owner, item.due, item.done_at) == (item_id, "U2", date(2026, 12, 1), None)
    assert await store.finish_action_item(item_id, T0) is True
    assert await store.finish_action_item(item_id, T0) is False
