"""Queries for alerts, written once for both backends: groups, alerts' latest states, and each state change.

Idempotent by construction: a state change is unique on (source, fingerprint, status, startsAt), an alert's row
only moves forward (a later startsAt, or firing → resolved of the same one), and the group changes only when the
delivery recorded a new state change. Replicas receiving the same delivery at once end in the same rows.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.alerts.models import AlertGroup, NewGroup, Recorded, StoredAlert
from bot.alerts.payloads import Alert, AlertStatus, Source
from bot.store.alert_silences_sql import SilenceRequestQueries
from bot.store.sql import Statement

_FIRING, _RESOLVED = AlertStatus.FIRING.value, AlertStatus.RESOLVED.value


class AlertQueries(SilenceRequestQueries):
    async def record_delivery(self, new: NewGroup, alerts: Sequence[Alert], now: datetime, *,
                              reopen_within: timedelta = timedelta(hours=1)) -> Recorded:
        """Open the group (once) and record the alerts' state changes in one transaction. A group resolved longer
        than `reopen_within` ago that fires again is retired first (its key set aside): the firing opens a new group
        and message; within that time the same group reopens (its flap count grows)."""
        await self._retire(new, alerts, now - reopen_within)
        [opened, rows] = await self._atomic([
            (("INSERT INTO alert_groups (source, key_hash, group_key, group_labels, channel_id, status, route_index, "
              "service, runbook, run_values, run_problem, external_url, first_starts_at, created_at, updated_at) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, key_hash) DO NOTHING RETURNING id"),
             [new.source.value, new.key_hash, new.group_key, json.dumps(new.group_labels), new.channel_id, _FIRING,
              new.route_index, new.service, new.runbook, json.dumps(new.run_values), new.run_problem,
              new.external_url, self._enc(new.first_starts_at), self._enc(now), self._enc(now)]),
            ("SELECT id FROM alert_groups WHERE source = ? AND key_hash = ?", [new.source.value, new.key_hash]),
        ])
        group_id = int(rows[0]["id"])
        delivery = uuid.uuid4().hex
        statements: list[Statement] = []
        for alert in alerts:
            statements.append((
                ("INSERT INTO alert_events (source, fingerprint, status, starts_at, group_id, delivery, received_at) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, fingerprint, status, starts_at) DO NOTHING RETURNING id"),
                [new.source.value, alert.fingerprint, alert.status.value, self._enc(alert.starts_at), group_id, delivery,
                 self._enc(now)]))
            # Compare-and-set: only a later alert (startsAt) or the resolution of the same one replaces the row.
            statements.append((
                ("INSERT INTO alerts (group_id, source, fingerprint, status, starts_at, ends_at, labels, annotations, "
                 "links, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, fingerprint) DO UPDATE SET "
                 "group_id = excluded.group_id, status = excluded.status, starts_at = excluded.starts_at, "
                 "ends_at = excluded.ends_at, labels = excluded.labels, annotations = excluded.annotations, "
                 "links = excluded.links, updated_at = excluded.updated_at "
                 "WHERE alerts.starts_at < excluded.starts_at OR (alerts.starts_at = excluded.starts_at "
                 f"AND alerts.status = '{_FIRING}' AND excluded.status = '{_RESOLVED}') RETURNING id"),
                [group_id, new.source.value, alert.fingerprint, alert.status.value, self._enc(alert.starts_at),
                 self._enc(alert.ends_at), json.dumps(alert.labels), json.dumps(alert.annotations),
                 json.dumps([list(link) for link in alert.links]), self._enc(now)]))
        # The group's status follows its alerts, and its version grows, only when this delivery changed something.
        # SET reads the row as it was (the row lock makes replicas take turns), so `turned_in` names the one delivery
        # that turned the group resolved, or firing again (a flap).
        firing = f"EXISTS (SELECT 1 FROM alerts WHERE group_id = ? AND status = '{_FIRING}')"
        statements.append((
            ("UPDATE alert_groups SET version = version + 1, updated_at = ?, "
             f"flaps = flaps + CASE WHEN status = '{_RESOLVED}' AND {firing} THEN 1 ELSE 0 END, "
             f"turned_in = CASE WHEN (status = '{_RESOLVED}' AND {firing}) OR (status = '{_FIRING}' AND NOT {firing}) "
             "THEN ? ELSE turned_in END, "
             f"resolved_at = CASE WHEN {firing} THEN NULL WHEN status = '{_FIRING}' THEN ? ELSE resolved_at END, "
             f"status = CASE WHEN {firing} THEN '{_FIRING}' ELSE '{_RESOLVED}' END, "
             "first_starts_at = COALESCE((SELECT MIN(starts_at) FROM alerts WHERE group_id = ?), first_starts_at) "
             "WHERE id = ? AND EXISTS (SELECT 1 FROM alert_events WHERE delivery = ?) RETURNING id, turned_in"),
            [self._enc(now), group_id, group_id, group_id, delivery, group_id, self._enc(now), group_id, group_id,
             group_id, delivery]))
        results = await self._atomic(statements)
        fresh = [alert for alert, found in zip(alerts, results[0:-1:2], strict=True) if found]
        turned_here = bool(results[-1]) and results[-1][0]["turned_in"] == delivery
        group = await self.alert_group(group_id)
        assert group is not None  # just written; groups are never deleted
        return Recorded(group, bool(opened), len(fresh), tuple(fresh), group.status if turned_here else None)

    async def _retire(self, new: NewGroup, alerts: Sequence[Alert], resolved_before: datetime) -> None:
        """Set aside the group of this key when it resolved before `resolved_before` and an alert fires anew (a
        start after the resolution: a late re-send of an old firing does not count). Replicas retire it once."""
        rows = await self._rows("SELECT id, status, resolved_at FROM alert_groups WHERE source = ? AND key_hash = ?",
                                [new.source.value, new.key_hash])
        if not rows or rows[0]["status"] != _RESOLVED or rows[0]["resolved_at"] is None:
            return
        resolved_at = self._at(rows[0]["resolved_at"])
        if resolved_at >= resolved_before or not any(
                a.status is AlertStatus.FIRING and a.starts_at > resolved_at for a in alerts):
            return
        await self._execute(
            "UPDATE alert_groups SET key_hash = key_hash || ':' || CAST(id AS TEXT) WHERE id = ? AND key_hash = ? "
            f"AND status = '{_RESOLVED}'", [int(rows[0]["id"]), new.key_hash])

    async def alert_group(self, group_id: int) -> AlertGroup | None:
        rows = await self._rows("SELECT * FROM alert_groups WHERE id = ?", [group_id])
        return self._group(rows[0]) if rows else None

    async def group_alerts(self, group_id: int) -> list[StoredAlert]:
        """Firing first, then by start time."""
        rows = await self._rows(
            f"SELECT * FROM alerts WHERE group_id = ? ORDER BY CASE WHEN status = '{_FIRING}' THEN 0 ELSE 1 END, "
            "starts_at, fingerprint", [group_id])
        return [StoredAlert(Alert(row["fingerprint"], AlertStatus(row["status"]), json.loads(row["labels"]),
                                  json.loads(row["annotations"]), self._at(row["starts_at"]), self._dec(row["ends_at"]),
                                  tuple((label, url) for label, url in json.loads(row["links"]))),
                            self._at(row["updated_at"])) for row in rows]

    async def set_group_message(self, group_id: int, ts: str) -> None:
        await self._execute("UPDATE alert_groups SET message_ts = ? WHERE id = ? AND message_ts IS NULL", [ts, group_id])

    async def acknowledge_group(self, group_id: int, by: str, at: datetime) -> bool:
        """The first acknowledgement stands; True when this call made it."""
        return await self._execute(
            "UPDATE alert_groups SET acked_by = ?, acked_at = ?, version = version + 1 WHERE id = ? AND acked_by IS NULL",
            [by, self._enc(at), group_id]) == 1

    async def set_group_silence(self, group_id: int, silence_id: str | None, by: str | None, until: datetime | None, *,
                                previous: str | None) -> bool:
        """Compare-and-set on the silence id: True when the group still had `previous`."""
        where = "silence_id IS NULL" if previous is None else "silence_id = ?"
        return await self._execute(
            f"UPDATE alert_groups SET silence_id = ?, silenced_by = ?, silenced_until = ?, version = version + 1 "
            f"WHERE id = ? AND {where}",
            [silence_id, by, self._enc(until), group_id, *([] if previous is None else [previous])]) == 1

    async def link_group(self, group_id: int, *, run_id: int | None = None, health_run_id: int | None = None,
                         incident_id: int | None = None, declaring_incident_id: int | None = None) -> None:
        fields = {"run_id": run_id, "health_run_id": health_run_id, "incident_id": incident_id,
                  "declaring_incident_id": declaring_incident_id}
        chosen: dict[str, Any] = {name: value for name, value in fields.items() if value is not None}
        if run_id is not None:  # a new run: the last one's result no longer shows
            chosen |= {"run_state": None, "run_ending": None, "run_link": None}
        if chosen:
            sets = ", ".join(f"{name} = ?" for name in chosen)
            await self._execute(f"UPDATE alert_groups SET {sets}, version = version + 1 WHERE id = ?",
                                [*chosen.values(), group_id])

    async def record_run_end(self, run_id: int, state: str, ending: str, link: str | None) -> list[int]:
        """The linked run's end on the groups it was started from (the first end recorded stands: a run ends once);
        returns the groups changed."""
        [rows] = await self._atomic([(
            ("UPDATE alert_groups SET run_state = ?, run_ending = ?, run_link = ?, version = version + 1 "
             "WHERE run_id = ? AND run_state IS NULL RETURNING id"), [state, ending, link, run_id])])
        return sorted(int(row["id"]) for row in rows)

    async def groups_of_run(self, run_id: int) -> list[int]:
        """The groups whose Run button started this run and that do not show its end yet."""
        rows = await self._rows("SELECT id FROM alert_groups WHERE run_id = ? AND run_state IS NULL ORDER BY id",
                                [run_id])
        return [int(row["id"]) for row in rows]

    async def touch_group(self, group_id: int) -> None:
        """Something its message shows changed elsewhere (a silence request): the message is written again."""
        await self._execute("UPDATE alert_groups SET version = version + 1 WHERE id = ?", [group_id])

    async def set_shown_version(self, group_id: int, version: int) -> None:
        """The message now shows `version` (it only moves forward: a slower writer of an older one does not undo it)."""
        await self._execute("UPDATE alert_groups SET shown_version = ? WHERE id = ? AND shown_version < ?",
                            [version, group_id, version])

    async def finish_group_links(self, incident_id: int) -> list[int]:
        """Link the groups the incident was declared from (once: a finished declaration run again links nothing)."""
        rows = await self._atomic([(
            ("UPDATE alert_groups SET incident_id = ?, version = version + 1 WHERE declaring_incident_id = ? "
             "AND incident_id IS NULL RETURNING id"), [incident_id, incident_id])])
        return sorted(int(row["id"]) for row in rows[0])

    async def firing_groups(self) -> list[AlertGroup]:
        """The groups firing now, the oldest first."""
        rows = await self._rows(f"SELECT * FROM alert_groups WHERE status = '{_FIRING}' ORDER BY first_starts_at, id",
                                [])
        return [self._group(row) for row in rows]

    async def groups_since(self, since: datetime) -> list[AlertGroup]:
        """The groups opened since `since` (the digest's window)."""
        rows = await self._rows("SELECT * FROM alert_groups WHERE created_at >= ? ORDER BY id", [self._enc(since)])
        return [self._group(row) for row in rows]

    async def claim_auto_declare(self, group_id: int, now: datetime) -> bool:
        """Compare-and-set: True for the one caller (of any replica) that claims the group's auto-declaration."""
        return await self._execute(
            "UPDATE alert_groups SET auto_declared_at = ? WHERE id = ? AND auto_declared_at IS NULL "
            f"AND incident_id IS NULL AND declaring_incident_id IS NULL AND status = '{_FIRING}'",
            [self._enc(now), group_id]) == 1

    def _group(self, row: dict[str, Any]) -> AlertGroup:
        return AlertGroup(
            id=int(row["id"]), source=Source(row["source"]), group_key=row["group_key"],
            group_labels=json.loads(row["group_labels"]), channel_id=row["channel_id"], message_ts=row["message_ts"],
            status=AlertStatus(row["status"]), route_index=row["route_index"], service=row["service"],
            runbook=row["runbook"], run_values=json.loads(row["run_values"]), run_problem=row["run_problem"],
            external_url=row["external_url"], first_starts_at=self._at(row["first_starts_at"]),
            created_at=self._at(row["created_at"]), updated_at=self._at(row["updated_at"]), version=int(row["version"]),
            acked_by=row["acked_by"], acked_at=self._dec(row["acked_at"]), silence_id=row["silence_id"],
            silenced_by=row["silenced_by"], silenced_until=self._dec(row["silenced_until"]),
            run_id=_int(row["run_id"]), incident_id=_int(row["incident_id"]), health_run_id=_int(row["health_run_id"]),
            declaring_incident_id=_int(row["declaring_incident_id"]), flaps=int(row["flaps"]),
            resolved_at=self._dec(row["resolved_at"]), auto_declared_at=self._dec(row["auto_declared_at"]),
            shown_version=int(row["shown_version"]), run_state=row["run_state"], run_ending=row["run_ending"],
            run_link=row["run_link"])


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None
