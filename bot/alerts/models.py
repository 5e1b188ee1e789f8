"""What the store keeps of alerts: a group (one Slack message), its alerts' latest states, and the silences that wait
for approval (their states as a table of moves the store's compare-and-set follows).

Not responsible for parsing (payloads.py) nor for rendering (bot/views/alerts.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.alerts.payloads import Alert, AlertStatus, Source


@dataclass(frozen=True)
class NewGroup:
    """What the first delivery of a group decides: where it goes and what it offers."""

    source: Source
    key_hash: str
    group_key: str
    group_labels: dict[str, str]
    channel_id: str
    route_index: int | None
    service: str | None
    runbook: str | None
    run_values: dict[str, str]
    run_problem: str | None
    external_url: str
    first_starts_at: datetime


@dataclass(frozen=True)
class AlertGroup:
    id: int
    source: Source
    group_key: str
    group_labels: dict[str, str]
    channel_id: str
    message_ts: str | None
    status: AlertStatus
    route_index: int | None
    service: str | None
    runbook: str | None
    run_values: dict[str, str]
    run_problem: str | None
    external_url: str
    first_starts_at: datetime
    created_at: datetime
    updated_at: datetime
    version: int  # grows with every change that shows on the message
    acked_by: str | None = None
    acked_at: datetime | None = None
    silence_id: str | None = None
    silenced_by: str | None = None
    silenced_until: datetime | None = None
    run_id: int | None = None
    incident_id: int | None = None
    health_run_id: int | None = None
    declaring_incident_id: int | None = None  # an incident declared from it, linked (incident_id) once declared
    flaps: int = 0  # times it fired again within `alerts.reopen_within` of resolving
    resolved_at: datetime | None = None  # when every alert of it resolved; None while any fires
    auto_declared_at: datetime | None = None  # the route's auto-declare rule claimed it (once, across replicas)
    shown_version: int = 0  # the version its Slack message last showed: behind `version`, a repeat delivery catches up
    run_state: str | None = None  # the linked run's final state (`ActionState`'s value) once it ended
    run_ending: str | None = None  # its one-line ending (mrkdwn, escaped by the run's words)
    run_link: str | None = None  # a permalink to the run's message

    def silenced_at(self, now: datetime) -> bool:
        """Its silence is still on at `now` (one that reached its end stays recorded, but silences nothing)."""
        return self.silence_id is not None and (self.silenced_until is None or self.silenced_until > now)


@dataclass(frozen=True)
class Recorded:
    """What one delivery changed: the group as it is now, and how many state changes were new."""

    group: AlertGroup
    created: bool  # this delivery opened the group
    changes: int  # 0: a duplicate delivery; nothing to post
    new: tuple[Alert, ...] = ()  # the alerts whose state change this delivery recorded first
    turned: AlertStatus | None = None  # this delivery turned the group resolved (all resolved) or firing again


@dataclass(frozen=True)
class StoredAlert:
    alert: Alert
    updated_at: datetime


class SilenceState(enum.Enum):
    """pending → approved → silenced | failed; pending → denied | withdrawn | expired; approved → failed also when
    the replica that claimed it stopped before Alertmanager answered (a chore finds it stale)."""

    PENDING = "pending"  # waiting for approvals
    APPROVED = "approved"  # claimed by the approval that completed it: Alertmanager is being asked
    SILENCED = "silenced"  # Alertmanager holds the silence (`silence_id`)
    FAILED = "failed"  # Alertmanager refused, could not be reached, or the time asked for passed (`problem`)
    DENIED = "denied"
    WITHDRAWN = "withdrawn"  # its requester took it back
    EXPIRED = "expired"  # nobody approved it in time

    @property
    def open(self) -> bool:
        return self in (SilenceState.PENDING, SilenceState.APPROVED)


# Each state and the states it may be reached from: the store moves a request only from these (compare-and-set).
SILENCE_MOVES: dict[SilenceState, frozenset[SilenceState]] = {
    SilenceState.APPROVED: frozenset({SilenceState.PENDING}),
    SilenceState.SILENCED: frozenset({SilenceState.APPROVED}),
    SilenceState.FAILED: frozenset({SilenceState.APPROVED}),
    SilenceState.DENIED: frozenset({SilenceState.PENDING}),
    SilenceState.WITHDRAWN: frozenset({SilenceState.PENDING}),
    SilenceState.EXPIRED: frozenset({SilenceState.PENDING}),
}


@dataclass(frozen=True)
class SilenceAsk:
    """What a person asked for: until a time ("until…") or for a while from when it is made (1 h / 4 h)."""

    until: datetime | None
    lasting: timedelta | None
    comment: str

    def __post_init__(self) -> None:
        if (self.until is None) == (self.lasting is None):
            raise ValueError("a silence is asked either until a time or for a while, not both")

    def ends(self, starts: datetime) -> datetime:
        return self.until if self.until is not None else starts + (self.lasting or timedelta())


@dataclass(frozen=True)
class SilenceRequest:
    """A silence waiting for (or decided by) the approvals `alerts.silence_approvals` asks for."""

    group_id: int
    requested_by: str
    ask: SilenceAsk
    approvals_needed: int
    approvers: tuple[str, ...]
    created_at: datetime
    expires_at: datetime
    channel_id: str
    state: SilenceState = SilenceState.PENDING
    message_ts: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    silence_id: str | None = None
    problem: str | None = None
    id: int | None = None


class Verdict(enum.Enum):
    APPROVE = "approve"
    DENY = "deny"


@dataclass(frozen=True)
class SilenceDecision:
    request_id: int
    user_id: str
    verdict: Verdict
    at: datetime
