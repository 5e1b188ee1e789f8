"""The narrow ports the run engine (`EngineDeps`) and the run flows (`RunDeps`) take instead of the whole `Context`;
the bot's `Context` satisfies both structurally, a test hands in an in-memory store, a manual clock and fakes.

Signatures only; not responsible for building any of them (the composition root, `bot.app`, and the tests do).
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from bot.runs.ports import BackupLedger, RunStore
from bot.runs.steps.base import BackupLedger as StepLedger
from bot.runs.steps.base import Poster, StepDeps

if TYPE_CHECKING:
    import asyncio
    from datetime import datetime

    from bot.audit import AuditEntry
    from bot.catalog import Catalog
    from bot.clock import Clock
    from bot.incidents.models import Incident, TimelineEntry
    from bot.locks import Locks
    from bot.runs.listeners import RunListeners
    from bot.runs.policy import Membership
    from bot.tracing import Tracer
    from bot.views import Message


class Draining(Protocol):
    """Whether this replica is stopping (`bot.handover.Handover`): the engine hands its run over at a step boundary."""

    @property
    def draining(self) -> bool: ...


class EngineStore(RunStore, StepLedger, Protocol):
    """The runs the engine stores step by step, and the ledger its step kinds record backups and deploys in."""


class EngineDeps(StepDeps, Protocol):
    """What the engine uses: the run store, the clock, the tracer, whether this replica is draining, and the step
    kinds' own ports (`StepDeps`: executors are found from those). Timeline notes go to a sink `perform` is given."""

    @property
    def store(self) -> EngineStore: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def tracer(self) -> Tracer: ...

    @property
    def handover(self) -> Draining: ...


class FlowStore(EngineStore, BackupLedger, Protocol):
    """The run flows' store: runs, the backup ledger, the audit trail and incidents' timelines (for a run started
    in an incident's channel)."""

    async def record_audit(self, entry: AuditEntry) -> int: ...

    async def incident_by_channel(self, channel_id: str) -> Incident | None: ...

    async def add_entry(self, entry: TimelineEntry) -> int | None: ...


class RunChat(Poster, Protocol):
    """Posting a run's message, and re-rendering it as the run moves."""

    async def update(self, channel: str, ts: str, message: Message) -> None: ...


class Tasks(Protocol):
    """Background work this process owns (`bot.tasks.BackgroundTasks`): a run started on approval, a take-over."""

    def spawn(self, work: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]: ...


class RunMeter(Protocol):
    """What the flows count (`bot.metrics.Metrics`)."""

    def run_done(self, kind: str, outcome: str, started: datetime | None, ended: datetime) -> None: ...

    def approval_done(self, outcome: str, requested: datetime, decided: datetime) -> None: ...


class LeaseTimes(Protocol):
    """How long a lease lasts, and how often a running run renews it (`bot.settings.Settings`)."""

    @property
    def lease_seconds(self) -> float: ...

    @property
    def heartbeat_seconds(self) -> float: ...


class Handing(Draining, Protocol):
    """Draining, plus the handed-over runs this process is taking over now (`bot.handover.Handover`)."""

    @property
    def taking(self) -> set[int]: ...


class RunDeps(EngineDeps, Protocol):
    """What requesting, deciding, expiring, executing under leases, handing over, recovering, following up and
    cancelling a run use."""

    @property
    def store(self) -> FlowStore: ...

    @property
    def catalog(self) -> Catalog: ...

    @property
    def chat(self) -> RunChat: ...

    @property
    def membership(self) -> Membership: ...

    @property
    def tasks(self) -> Tasks: ...

    @property
    def metrics(self) -> RunMeter: ...

    @property
    def locks(self) -> Locks: ...

    @property
    def settings(self) -> LeaseTimes: ...

    @property
    def owner(self) -> str: ...

    @property
    def handover(self) -> Handing: ...

    @property
    def run_listeners(self) -> RunListeners:
        """Who hears that a run ended besides its message (`bot.runs.listeners`): an alert's Run button, say."""
