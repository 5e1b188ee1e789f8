"""The records of an incident: the incident itself, its timeline entries and its follow-up action items."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime


class IncidentStatus(enum.Enum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"

    @property
    def title(self) -> str:
        return self.value.capitalize()


class DeclareStage(enum.Enum):
    """How far a declaration got: each step is recorded once done, so a declaration the store or the process cut
    short is finished (or, once rolling back, undone) by the chores. The order is the order of the steps."""

    CREATING = "creating"  # the row exists; its channel name is chosen, the channel may or may not exist
    CHANNEL = "channel"  # the channel exists and its id is recorded
    INVITED = "invited"  # people were invited (those Slack refused were told to the declarer)
    PINNED = "pinned"  # the header is posted and pinned, the topic set
    DECLARED = "declared"  # announced: done
    ROLLING_BACK = "rolling-back"  # no channel could be made: the channel (if any) is archived, then the row deleted

    @property
    def finished(self) -> bool:
        return self is DeclareStage.DECLARED

    def reached(self, step: DeclareStage) -> bool:
        """True once the step `step` is done (never while rolling back)."""
        order = list(DeclareStage)[:5]
        return self in order and order.index(self) >= order.index(step)


class Role(enum.Enum):
    COMMANDER = "commander"
    COMMUNICATIONS = "communications"
    SCRIBE = "scribe"


class EntryKind(enum.Enum):
    DECLARED = "declared"
    ACKNOWLEDGED = "acknowledged"
    STATUS = "status"
    SEVERITY = "severity"
    ROLE = "role"
    NOTE = "note"
    PIN = "pin"  # a message marked with the pin reaction
    HEALTH = "health"
    ACTION = "action"  # an action run started from the incident channel
    RESOLVED = "resolved"
    REOPENED = "reopened"
    REMINDER = "reminder"
    FOLLOW_UP = "follow-up"
    ALERT = "alert"  # an alert group linked to the incident fired, resolved or was acknowledged


@dataclass(frozen=True)
class Incident:
    title: str
    severity: str
    declared_by: str
    declared_at: datetime
    status: IncidentStatus = IncidentStatus.INVESTIGATING
    description: str = ""
    services: tuple[str, ...] = ()
    channel_id: str | None = None
    channel_name: str | None = None
    header_ts: str | None = None
    announce_channel: str | None = None
    announce_ts: str | None = None
    roles: dict[str, str] = field(default_factory=dict)  # role value -> user ID
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    mitigated_at: datetime | None = None  # first time it reached Monitoring
    resolved_at: datetime | None = None
    last_update_at: datetime | None = None
    summary: str = ""  # the latest status summary
    ack_reminded_at: datetime | None = None
    nudged_at: datetime | None = None
    declare_stage: DeclareStage = DeclareStage.DECLARED
    audit_id: int | None = None  # the audit entry of the request that declared it
    id: int | None = None

    @property
    def key(self) -> str:
        return f"INC-{self.id}"

    @property
    def commander(self) -> str | None:
        return self.roles.get(Role.COMMANDER.value)

    @property
    def open(self) -> bool:
        return self.status is not IncidentStatus.RESOLVED


@dataclass(frozen=True)
class TimelineEntry:
    incident_id: int
    at: datetime
    kind: EntryKind
    text: str
    author: str | None = None
    permalink: str | None = None
    source_ts: str | None = None  # the pinned message's ts, so removing the reaction removes the entry
    edited_by: str | None = None
    deleted: bool = False
    id: int | None = None


@dataclass(frozen=True)
class ActionItem:
    incident_id: int
    text: str
    created_by: str
    created_at: datetime
    owner: str | None = None
    due: date | None = None
    done_at: datetime | None = None
    id: int | None = None


@dataclass(frozen=True)
class DeclareDraft:
    """What the declare form is prefilled with when an incident is declared from a red report or a failed run."""

    title: str = ""
    severity: str = ""  # a severity name of the catalog, or "" to let the person pick
    services: tuple[str, ...] = ()
    description: str = ""
    alert_group: int | None = None  # declared from this alert group: linked to the incident once declared
