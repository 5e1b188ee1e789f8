"""What the store keeps of alerts: a group (one Slack message) and its alerts' latest states.

Not responsible for parsing (payloads.py) nor for rendering (bot/views/alerts.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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
