"""Queries for silences that wait for approval, written once for both backends: the request (one open per alert
group, by a partial unique index), each person's decision (once per person, by the primary key), and the moves of
`bot.alerts.models.SILENCE_MOVES` as compare-and-sets, so two approvers or two replicas never create two silences.

Not responsible for the flow (bot/alerts/silencing.py) nor for asking Alertmanager (bot/alerts/silences.py).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from bot.alerts.models import SILENCE_MOVES, SilenceAsk, SilenceDecision, SilenceRequest, SilenceState, Verdict
from bot.store.sql import SqlBase

_OPEN = tuple(state.value for state in SilenceState if state.open)


class SilenceRequestQueries(SqlBase):
    async def create_silence_request(self, request: SilenceRequest) -> int | None:
        """Store a pending request; None when the group already has an open one (the caller names it)."""
        ask = request.ask
        [rows] = await self._atomic([(
            ("INSERT INTO alert_silence_requests (group_id, state, requested_by, ends_at, lasts_seconds, comment, "
             "approvals_needed, approvers, created_at, expires_at, channel_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
             "ON CONFLICT DO NOTHING RETURNING id"),
            [request.group_id, SilenceState.PENDING.value, request.requested_by, self._enc(ask.until),
             int(ask.lasting.total_seconds()) if ask.lasting is not None else None, ask.comment,
             request.approvals_needed, json.dumps(list(request.approvers)), self._enc(request.created_at),
             self._enc(request.expires_at), request.channel_id])])
        return int(rows[0]["id"]) if rows else None

    async def silence_request(self, request_id: int) -> SilenceRequest | None:
        rows = await self._rows("SELECT * FROM alert_silence_requests WHERE id = ?", [request_id])
        return self._request(rows[0]) if rows else None

    async def open_silence_request(self, group_id: int) -> SilenceRequest | None:
        """The group's request still waiting (pending) or being made (approved), if any."""
        marks = ", ".join("?" for _ in _OPEN)
        rows = await self._rows(f"SELECT * FROM alert_silence_requests WHERE group_id = ? AND state IN ({marks})",
                                [group_id, *_OPEN])
        return self._request(rows[0]) if rows else None

    async def move_silence_request(self, request_id: int, to: SilenceState, *, at: datetime,
                                   unexpired: bool = False, decided_by: str | None = None,
                                   silence_id: str | None = None, problem: str | None = None) -> bool:
        """Compare-and-set from the states SILENCE_MOVES allows; with `unexpired`, only while `at` is before the
        request's expiry (read inside the statement, so an approval cannot land after the expiry chore's look)."""
        expected = sorted(state.value for state in SILENCE_MOVES[to])
        marks = ", ".join("?" for _ in expected)
        sets, args = ["state = ?"], [to.value]
        if decided_by is not None:
            sets += ["decided_by = ?", "decided_at = ?"]
            args += [decided_by, self._enc(at)]
        for column, value in (("silence_id", silence_id), ("problem", problem)):
            if value is not None:
                sets.append(f"{column} = ?")
                args.append(value)
        where = f"id = ? AND state IN ({marks})" + (" AND expires_at > ?" if unexpired else "")
        return await self._execute(f"UPDATE alert_silence_requests SET {', '.join(sets)} WHERE {where}",
                                   [*args, request_id, *expected, *([self._enc(at)] if unexpired else [])]) == 1

    async def set_silence_request_message(self, request_id: int, ts: str) -> None:
        await self._execute("UPDATE alert_silence_requests SET message_ts = ? WHERE id = ? AND message_ts IS NULL",
                            [ts, request_id])

    async def add_silence_decision(self, decision: SilenceDecision) -> bool:
        """One decision per person and request; False when this person had decided already."""
        [rows] = await self._atomic([(
            ("INSERT INTO alert_silence_decisions (request_id, user_id, decision, at) VALUES (?, ?, ?, ?) "
             "ON CONFLICT DO NOTHING RETURNING request_id"),
            [decision.request_id, decision.user_id, decision.verdict.value, self._enc(decision.at)])])
        return bool(rows)

    async def silence_decisions(self, request_id: int) -> list[SilenceDecision]:
        rows = await self._rows("SELECT * FROM alert_silence_decisions WHERE request_id = ? ORDER BY at, user_id",
                                [request_id])
        return [SilenceDecision(int(row["request_id"]), row["user_id"], Verdict(row["decision"]), self._at(row["at"]))
                for row in rows]

    async def stale_silence_requests(self, now: datetime, *, claimed_before: datetime) -> list[SilenceRequest]:
        """Pending requests past their expiry, and approved ones claimed before `claimed_before` that never got their
        silence (the replica making it stopped)."""
        rows = await self._rows(
            "SELECT * FROM alert_silence_requests WHERE (state = ? AND expires_at <= ?) OR (state = ? AND decided_at <= ?) "
            "ORDER BY id", [SilenceState.PENDING.value, self._enc(now), SilenceState.APPROVED.value,
                            self._enc(claimed_before)])
        return [self._request(row) for row in rows]

    def _request(self, row: dict[str, Any]) -> SilenceRequest:
        lasts = row["lasts_seconds"]
        ask = SilenceAsk(self._dec(row["ends_at"]), timedelta(seconds=int(lasts)) if lasts is not None else None,
                         row["comment"])
        return SilenceRequest(
            group_id=int(row["group_id"]), requested_by=row["requested_by"], ask=ask,
            approvals_needed=int(row["approvals_needed"]), approvers=tuple(json.loads(row["approvers"])),
            created_at=self._at(row["created_at"]), expires_at=self._at(row["expires_at"]), channel_id=row["channel_id"],
            state=SilenceState(row["state"]), message_ts=row["message_ts"], decided_by=row["decided_by"],
            decided_at=self._dec(row["decided_at"]), silence_id=row["silence_id"], problem=row["problem"],
            id=int(row["id"]))
