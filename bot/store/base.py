"""The store's contract: what the domain may ask of storage, whatever the backend.

Backends: `bot.store.sqlite` (embedded default) and `bot.store.postgres`. Both pass tests/test_store.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from importlib import resources
from typing import Any, Protocol

from bot.alerts.models import (
    AlertGroup,
    NewGroup,
    Recorded,
    SilenceDecision,
    SilenceRequest,
    SilenceState,
    StoredAlert,
)
from bot.alerts.payloads import Alert
from bot.audit import AuditEntry, Outcome
from bot.executors.base import Revision
from bot.health import HealthRun
from bot.incidents.models import ActionItem, Incident, TimelineEntry
from bot.runs.ports import BackupLedger, LeaseStore, RunStore
from bot.scheduling.models import Occurrence, OccurrenceState
from bot.store.audit_sql import Made, Pending
from bot.store.schedule_sql import CheckTally, PostRecord


class ActionStore(RunStore, BackupLedger, LeaseStore, Protocol):
    """The run engine's ports (`bot.runs.ports`: runs, approvals, backups, leases) and deploy history
    (bot/store/actions_sql.py implements it for both SQL backends; `bot.runs.memory_store` the ports alone)."""

    async def record_deploy(self, service: str, image: str, digest: str | None, seen_at: datetime) -> None: ...
    async def deploy_history(self, service: str, limit: int = 20) -> list[Revision]: ...


class IncidentStore(Protocol):
    """Incidents, their timelines and follow-up action items (bot/store/incidents_sql.py implements it)."""

    async def create_incident(self, incident: Incident) -> int: ...
    async def delete_incident(self, incident_id: int) -> None:
        """Only for a declaration that never got its channel: nothing else refers to it yet."""
    async def replace_roles(self, incident_id: int, old: dict[str, str], new: dict[str, str]) -> bool:
        """Compare-and-set on the whole roles map, so two role changes at once do not lose one."""
    async def get_incident(self, incident_id: int) -> Incident | None: ...
    async def incident_by_channel(self, channel_id: str) -> Incident | None: ...
    async def incidents(self, *, open_only: bool = False, limit: int = 50, since: datetime | None = None) -> list[Incident]:
        """Newest first; with `since`, those still open or declared or resolved at or after it."""
    async def update_incident(self, incident_id: int, *, unless_set: str | None = None, **fields: Any) -> bool:
        """Set fields; with `unless_set`, only while that column is still empty. True when the row changed."""
    async def update_incident_nudge(self, incident_id: int, *, previous: datetime, at: datetime) -> bool:
        """Move nudged_at from `previous` to `at`; False when another replica already did."""
    async def add_entry(self, entry: TimelineEntry) -> int | None:
        """Append; None when it is a pin already on the timeline (a reaction delivered twice)."""
    async def entries(self, incident_id: int, *, include_deleted: bool = False) -> list[TimelineEntry]:
        """In time order."""
    async def get_entry(self, entry_id: int) -> TimelineEntry | None: ...
    async def edit_entry(self, entry_id: int, *, by: str, text: str | None = None, at: datetime | None = None) -> bool: ...
    async def delete_entry(self, entry_id: int, *, by: str) -> bool: ...
    async def delete_pin(self, incident_id: int, source_ts: str, *, by: str) -> bool: ...
    async def add_action_item(self, item: ActionItem) -> int: ...
    async def action_items(self, incident_id: int) -> list[ActionItem]: ...
    async def finish_action_item(self, item_id: int, at: datetime) -> bool: ...


class ScheduleStore(Protocol):
    """The scheduler's jobs and occurrences, posted messages, pruning and the digests' windows
    (bot/store/schedule_sql.py implements it)."""

    async def register_job(self, job: str, now: datetime) -> datetime:
        """The job's cursor; a job seen for the first time starts now (nothing before it is owed)."""
    async def record_occurrences(self, job: str, due: Sequence[datetime], skipped: Sequence[tuple[datetime, str]],
                                 cursor: datetime) -> None: ...
    async def open_occurrences(self, jobs: Iterable[str]) -> list[Occurrence]:
        """Pending or running occurrences of these jobs, oldest first."""
    async def claim_occurrence(self, job: str, due_at: datetime, owner: str, now: datetime) -> Occurrence | None:
        """Take a pending occurrence, or one whose runner died, for `owner`; None when it is already finished."""
    async def finish_occurrence(self, job: str, due_at: datetime, state: OccurrenceState, detail: str, now: datetime,
                                *, attempt: int | None = None) -> bool:
        """Running (this attempt) → done or failed; or, with no attempt, pending → skipped. True if this call did it."""
    async def get_occurrence(self, job: str, due_at: datetime) -> Occurrence | None: ...
    async def occurrences(self, job: str | None = None, *, limit: int = 50) -> list[Occurrence]:
        """Newest first."""
    async def latest_finished(self, jobs: Iterable[str]) -> dict[str, Occurrence]: ...
    async def begin_post(self, key: str, channel_id: str, now: datetime) -> PostRecord:
        """Record the intent to post `key` before posting, so a retry can tell it may already have been posted."""
    async def set_posted(self, key: str, ts: str) -> None: ...
    async def prune(self, before: datetime) -> int:
        """Forget what only guards against repeats, older than `before`. Returns rows removed."""
    async def check_tallies(self, since: datetime) -> list[CheckTally]: ...


class SilenceRequestStore(Protocol):
    """Silences waiting for approval and each person's decision (bot/store/alert_silences_sql.py implements it)."""

    async def create_silence_request(self, request: SilenceRequest) -> int | None:
        """A pending request; None when the group already has an open one."""
    async def silence_request(self, request_id: int) -> SilenceRequest | None: ...
    async def open_silence_request(self, group_id: int) -> SilenceRequest | None: ...
    async def move_silence_request(self, request_id: int, to: SilenceState, *, at: datetime, unexpired: bool = False,
                                   decided_by: str | None = None, silence_id: str | None = None,
                                   problem: str | None = None) -> bool:
        """Compare-and-set from the states `SILENCE_MOVES` allows (and, with `unexpired`, before its expiry)."""
    async def set_silence_request_message(self, request_id: int, ts: str) -> None: ...
    async def add_silence_decision(self, decision: SilenceDecision) -> bool:
        """False when this person had decided on this request already."""
    async def silence_decisions(self, request_id: int) -> list[SilenceDecision]: ...
    async def stale_silence_requests(self, now: datetime, *, claimed_before: datetime) -> list[SilenceRequest]:
        """Pending ones past their expiry; approved ones claimed before `claimed_before` still without a silence."""


class AlertStore(SilenceRequestStore, Protocol):
    """Alert groups, their alerts and each state change, idempotent across retries and replicas
    (bot/store/alerts_sql.py implements it)."""

    async def record_delivery(self, new: NewGroup, alerts: Sequence[Alert], now: datetime, *,
                              reopen_within: timedelta = ...) -> Recorded:
        """Open the group once and record the alerts' new state changes; a duplicate delivery changes nothing. A
        group resolved longer than `reopen_within` ago that fires again opens a new group; within it, it reopens."""
    async def alert_group(self, group_id: int) -> AlertGroup | None: ...
    async def group_alerts(self, group_id: int) -> list[StoredAlert]:
        """Firing first, then by start time."""
    async def set_group_message(self, group_id: int, ts: str) -> None: ...
    async def acknowledge_group(self, group_id: int, by: str, at: datetime) -> bool:
        """The first acknowledgement stands; True when this call made it."""
    async def set_group_silence(self, group_id: int, silence_id: str | None, by: str | None, until: datetime | None, *,
                                previous: str | None) -> bool:
        """Compare-and-set on the silence id: True when the group still had `previous`."""
    async def link_group(self, group_id: int, *, run_id: int | None = None, health_run_id: int | None = None,
                         incident_id: int | None = None, declaring_incident_id: int | None = None) -> None:
        """Link a run (its last result forgotten), health run or incident to the group."""
    async def groups_of_run(self, run_id: int) -> list[int]:
        """The groups whose Run button started this run and that do not show its end yet."""
    async def record_run_end(self, run_id: int, state: str, ending: str, link: str | None) -> list[int]:
        """The linked run's end on its groups, once; returns the groups changed."""
    async def touch_group(self, group_id: int) -> None:
        """Its message must be written again (something it shows changed elsewhere)."""
    async def set_shown_version(self, group_id: int, version: int) -> None: ...
    async def finish_group_links(self, incident_id: int) -> list[int]:
        """Link the groups the incident was declared from, once; returns their ids."""
    async def firing_groups(self) -> list[AlertGroup]:
        """The groups firing now, the oldest first."""
    async def groups_since(self, since: datetime) -> list[AlertGroup]: ...
    async def claim_auto_declare(self, group_id: int, now: datetime) -> bool:
        """True for the one caller, of any replica, that claims the group's auto-declaration."""


class Store(ActionStore, IncidentStore, ScheduleStore, AlertStore, Protocol):
    async def open(self) -> None:
        """Connect (pools, files). Called once from the app's start-up hook."""

    async def close(self) -> None: ...

    async def migrate(self, upto: int | None = None) -> list[int]:
        """Apply pending migrations (with `upto`, only those up to that version: tests that build an older
        schema); returns the versions applied now (empty when up to date)."""

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers a query."""

    async def save_health_run(self, run: HealthRun) -> int:
        """Store a run with its results; returns the run's id."""

    async def get_health_run(self, run_id: int) -> HealthRun | None: ...

    async def health_runs_since(self, since: datetime, limit: int = 500) -> list[HealthRun]:
        """Runs started at or after `since`, newest first, with their results."""

    async def record_audit(self, entry: AuditEntry) -> int: ...

    async def audit_entries(self, *, since: datetime | None = None, limit: int = 100) -> list[AuditEntry]:
        """Newest first."""

    async def finish_audit(self, audit_id: int, outcome: Outcome, detail: str | None, duration_ms: float | None, *,
                           inferred: bool = False) -> bool:
        """Write a request's outcome over its "requested" entry (bot/store/audit_sql.py); the request's own outcome
        also replaces an inferred one. True when the row changed."""

    async def requested_audits(self, before: datetime, limit: int = 200) -> list[Pending]:
        """Entries still "requested" written before `before`, oldest first."""

    async def made_by_requests(self, audit_ids: Sequence[int]) -> list[Made]:
        """The incidents and runs these requests made."""

    async def unfinished_declarations(self) -> list[Incident]:
        """Incidents whose declaration has not reached its last stage (being declared, cut short, or rolling back)."""

    async def claim(self, key: str, at: datetime) -> bool:
        """Record an idempotency key; True the first time it is claimed, False ever after."""


def migrations(backend: str, upto: int | None = None) -> list[tuple[int, str, str]]:
    """(version, name, sql) for a backend, in order, from bot/store/migrations/<backend>/NNNN_name.sql; with
    `upto`, only versions up to it."""
    folder = resources.files("bot.store") / "migrations" / backend
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            if upto is None or int(number) <= upto:
                found.append((int(number), rest.removesuffix(".sql"), entry.read_text(encoding="utf-8")))
    return sorted(found)
