"""Queries for incidents, timeline entries and follow-up action items, written once for both backends."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from bot.incidents.models import ActionItem, DeclareStage, EntryKind, Incident, IncidentStatus, TimelineEntry
from bot.store.sql import SqlBase

_TIMES = {"declared_at", "acknowledged_at", "mitigated_at", "resolved_at", "last_update_at", "ack_reminded_at", "nudged_at"}
_FIELDS = _TIMES | {"title", "severity", "status", "description", "channel_id", "channel_name", "header_ts",
                    "announce_channel", "announce_ts", "roles", "acknowledged_by", "summary", "declare_stage"}


class IncidentQueries(SqlBase):
    async def create_incident(self, incident: Incident) -> int:
        return await self._insert("incidents", {
            "title": incident.title, "severity": incident.severity, "status": incident.status.value,
            "description": incident.description, "services": json.dumps(list(incident.services)),
            "declared_by": incident.declared_by, "declared_at": self._enc(incident.declared_at),
            "roles": json.dumps(incident.roles, sort_keys=True), "last_update_at": self._enc(incident.last_update_at),
            "declare_stage": incident.declare_stage.value, "audit_id": incident.audit_id,
        })

    async def delete_incident(self, incident_id: int) -> None:
        """Only for a declaration that never got its channel: nothing else refers to it yet."""
        await self._execute("DELETE FROM timeline_entries WHERE incident_id = ?", [incident_id])
        await self._execute("DELETE FROM incidents WHERE id = ?", [incident_id])

    async def replace_roles(self, incident_id: int, old: dict[str, str], new: dict[str, str]) -> bool:
        """Compare-and-set on the whole roles map, so two role changes at once do not lose one."""
        return await self._execute("UPDATE incidents SET roles = ? WHERE id = ? AND roles = ?",
                                   [json.dumps(new, sort_keys=True), incident_id, json.dumps(old, sort_keys=True)]) == 1

    async def get_incident(self, incident_id: int) -> Incident | None:
        rows = await self._rows("SELECT * FROM incidents WHERE id = ?", [incident_id])
        return self._incident(rows[0]) if rows else None

    async def incident_by_channel(self, channel_id: str) -> Incident | None:
        rows = await self._rows("SELECT * FROM incidents WHERE channel_id = ?", [channel_id])
        return self._incident(rows[0]) if rows else None

    async def incidents(self, *, open_only: bool = False, limit: int = 50, since: datetime | None = None) -> list[Incident]:
        """Newest first; with `since`, those still open or declared or resolved at or after it."""
        where, args = ("WHERE status <> ?", [IncidentStatus.RESOLVED.value]) if open_only else ("", [])
        if since is not None:
            where = "WHERE (status <> ? OR declared_at >= ? OR resolved_at >= ?)" + (" AND status <> ?" if open_only else "")
            args = [IncidentStatus.RESOLVED.value, self._enc(since), self._enc(since), *args]
        rows = await self._rows(f"SELECT * FROM incidents {where} ORDER BY declared_at DESC, id DESC LIMIT ?", [*args, limit])
        return [self._incident(row) for row in rows]

    async def update_incident(self, incident_id: int, *, unless_set: str | None = None, **fields: Any) -> bool:
        """Set fields; with `unless_set`, only while that column is still empty (compare-and-set, e.g. the
        first acknowledgement wins). True when the row changed."""
        unknown = set(fields) - _FIELDS
        if unknown or (unless_set and unless_set not in _FIELDS):
            raise ValueError(f"not incident fields: {sorted(unknown) or unless_set}")
        sets, args = [], []
        for name, value in fields.items():
            sets.append(f"{name} = ?")
            if name in _TIMES:
                value = self._enc(value)
            elif name == "roles":
                value = json.dumps(value, sort_keys=True)
            elif name in ("status", "declare_stage"):
                value = value.value
            args.append(value)
        condition = f" AND {unless_set} IS NULL" if unless_set else ""
        return await self._execute(f"UPDATE incidents SET {', '.join(sets)} WHERE id = ?{condition}", [*args, incident_id]) == 1

    async def unfinished_declarations(self) -> list[Incident]:
        """Incidents whose declaration has not reached its last stage (being declared, cut short, or rolling back)."""
        rows = await self._rows("SELECT * FROM incidents WHERE declare_stage <> ? ORDER BY id",
                                [DeclareStage.DECLARED.value])
        return [self._incident(row) for row in rows]

    async def update_incident_nudge(self, incident_id: int, *, previous: datetime, at: datetime) -> bool:
        """Move nudged_at from `previous` to `at`; False when another replica already did."""
        return await self._execute("UPDATE incidents SET nudged_at = ? WHERE id = ? AND nudged_at = ?",
                                   [self._enc(at), incident_id, self._enc(previous)]) == 1

    def _incident(self, row: dict[str, Any]) -> Incident:
        return Incident(
            id=int(row["id"]), title=row["title"], severity=row["severity"], status=IncidentStatus(row["status"]),
            description=row["description"], services=tuple(json.loads(row["services"])), declared_by=row["declared_by"],
            declared_at=self._at(row["declared_at"]),
            channel_id=row["channel_id"], channel_name=row["channel_name"], header_ts=row["header_ts"],
            announce_channel=row["announce_channel"], announce_ts=row["announce_ts"], roles=json.loads(row["roles"]),
            acknowledged_at=self._dec(row["acknowledged_at"]), acknowledged_by=row["acknowledged_by"],
            mitigated_at=self._dec(row["mitigated_at"]), resolved_at=self._dec(row["resolved_at"]),
            last_update_at=self._dec(row["last_update_at"]), summary=row["summary"],
            ack_reminded_at=self._dec(row["ack_reminded_at"]), nudged_at=self._dec(row["nudged_at"]),
            declare_stage=DeclareStage(row["declare_stage"]), audit_id=row["audit_id"],
        )

    # --- timeline -------------------------------------------------------------------------------------

    async def add_entry(self, entry: TimelineEntry) -> int | None:
        """Append; None when it is a pin already on the timeline (a reaction delivered twice)."""
        [rows] = await self._atomic([(
            ("INSERT INTO timeline_entries (incident_id, at, kind, text, author, permalink, source_ts, deleted) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id"),
            [entry.incident_id, self._enc(entry.at), entry.kind.value, entry.text, entry.author, entry.permalink,
             entry.source_ts, False],
        )])
        return int(rows[0]["id"]) if rows else None

    async def entries(self, incident_id: int, *, include_deleted: bool = False) -> list[TimelineEntry]:
        """In time order."""
        rows = await self._rows(
            "SELECT * FROM timeline_entries WHERE incident_id = ? AND (deleted = ? OR ?) ORDER BY at, id",
            [incident_id, False, include_deleted],
        )
        return [self._entry(row) for row in rows]

    async def get_entry(self, entry_id: int) -> TimelineEntry | None:
        rows = await self._rows("SELECT * FROM timeline_entries WHERE id = ?", [entry_id])
        return self._entry(rows[0]) if rows else None

    async def edit_entry(self, entry_id: int, *, by: str, text: str | None = None, at: datetime | None = None) -> bool:
        sets, args = ["edited_by = ?"], [by]
        if text is not None:
            sets.append("text = ?")
            args.append(text)
        if at is not None:
            sets.append("at = ?")
            args.append(self._enc(at))
        return await self._execute(f"UPDATE timeline_entries SET {', '.join(sets)} WHERE id = ? AND deleted = ?",
                                   [*args, entry_id, False]) == 1

    async def delete_entry(self, entry_id: int, *, by: str) -> bool:
        return await self._execute("UPDATE timeline_entries SET deleted = ?, edited_by = ? WHERE id = ? AND deleted = ?",
                                   [True, by, entry_id, False]) == 1

    async def delete_pin(self, incident_id: int, source_ts: str, *, by: str) -> bool:
        return await self._execute(
            "UPDATE timeline_entries SET deleted = ?, edited_by = ? WHERE incident_id = ? AND source_ts = ? AND deleted = ?",
            [True, by, incident_id, source_ts, False]) >= 1

    def _entry(self, row: dict[str, Any]) -> TimelineEntry:
        return TimelineEntry(
            id=int(row["id"]), incident_id=int(row["incident_id"]), at=self._at(row["at"]),
            kind=EntryKind(row["kind"]), text=row["text"], author=row["author"], permalink=row["permalink"],
            source_ts=row["source_ts"], edited_by=row["edited_by"], deleted=bool(row["deleted"]),
        )

    # --- follow-up action items -----------------------------------------------------------------------

    async def add_action_item(self, item: ActionItem) -> int:
        return await self._insert("incident_action_items", {
            "incident_id": item.incident_id, "text": item.text, "owner": item.owner,
            "due": item.due.isoformat() if item.due else None, "created_by": item.created_by,
            "created_at": self._enc(item.created_at),
        })

    async def action_items(self, incident_id: int) -> list[ActionItem]:
        rows = await self._rows("SELECT * FROM incident_action_items WHERE incident_id = ? ORDER BY id", [incident_id])
        return [
            ActionItem(id=int(r["id"]), incident_id=int(r["incident_id"]), text=r["text"], owner=r["owner"],
                       due=date.fromisoformat(r["due"]) if r["due"] else None, created_by=r["created_by"],
                       created_at=self._at(r["created_at"]), done_at=self._dec(r["done_at"]))
            for r in rows
        ]

    async def finish_action_item(self, item_id: int, at: datetime) -> bool:
        return await self._execute("UPDATE incident_action_items SET done_at = ? WHERE id = ? AND done_at IS NULL",
                                   [self._enc(at), item_id]) == 1
