"""The run engine and the run flows on their narrow ports (`bot.runs.deps`), in memory: the in-memory run store, a
clock whose sleeps pass at once, a recording chat, fake workloads behind `demo` targets and a health switch.

What the fast tests in tests/test_engine.py and tests/test_run_flows.py share; no network, no database, no Slack.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import aiohttp

from bot.audit import AuditEntry
from bot.catalog import Catalog
from bot.catalog_loading import parse_catalog
from bot.checks.base import Status
from bot.clock import ManualClock
from bot.executors.base import Effect, ExecutorError, Progress, Revision
from bot.executors.demo import DemoTarget
from bot.handover import Handover
from bot.health import CheckResult, HealthRun
from bot.incidents.models import Incident, TimelineEntry
from bot.locks import StoreLocks
from bot.runs import requests
from bot.runs.listeners import RunListeners
from bot.runs.memory_store import MemoryRunStore
from bot.runs.models import ActionKind, ActionRun, ActionState, ActionStep, PlannedStep
from bot.runs.policy import Membership
from bot.runs.steps.base import Note, StepKind, Traits, UndoBook, _Step
from bot.runs.wakeups import Wakeups
from bot.tasks import BackgroundTasks
from bot.tracing import NO_TRACER, Tracer
from bot.views import Message

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ALICE, BOB, CAROL, MALLORY = "UALICE", "UBOB", "UCAROL", "UMALLORY"
CHANNEL = "C0OPS"

CATALOG = """
approvals:
  environments:
    staging: {default: {approvals: 0}}
    production:
      default: {approvals: 1, approvers: [UBOB, UCAROL, SONCALL]}
      restart: {approvals: 2, approvers: [UBOB, UCAROL, SONCALL]}
services:
  web:
    environment: staging
    target: {type: demo, app: web, image: "web:1.0"}
    checks:
      - {type: http, url: "http://127.0.0.1:9/health", timeout: 2}
  api:
    environment: production
    owners: [UALICE]
    target: {type: demo, app: api, image: "api:1.0"}
    checks:
      - {type: http, url: "http://127.0.0.1:9/health", timeout: 2}
  quiet:
    environment: staging
    target: {type: demo, app: quiet, image: "quiet:1.0"}
runbooks:
  both:
    services: [web, quiet]
    approvals: {approvals: 0}
    steps:
      - {kind: restart, service: web}
      - {kind: restart, service: quiet}
"""


class QuickClock(ManualClock):
    """A manual clock on which a short sleep (a retry's pause, a health gate's interval) passes at once, moving time
    on by what was asked; a sleep of `HELD` seconds or more (a heartbeat) waits for `advance`, as on ManualClock."""

    HELD = 60.0

    def __init__(self, start: datetime = START) -> None:
        super().__init__(start)
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        if seconds >= self.HELD:
            await super().sleep(seconds)
            return
        self.slept.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)


class Store(MemoryRunStore):
    """The in-memory run store plus the few non-run tables the flows write to: audit, incidents, deploys."""

    def __init__(self) -> None:
        super().__init__()
        self.audit: list[AuditEntry] = []
        self.incidents: dict[str, Incident] = {}
        self.entries: list[TimelineEntry] = []

    async def record_audit(self, entry: AuditEntry) -> int:
        self.audit.append(entry)
        return len(self.audit)

    async def incident_by_channel(self, channel_id: str) -> Incident | None:
        return self.incidents.get(channel_id)

    async def add_entry(self, entry: TimelineEntry) -> int | None:
        self.entries.append(entry)
        return len(self.entries)

    async def record_deploy(self, service: str, image: str, digest: str | None, seen_at: datetime) -> None:
        return None

    async def deploy_history(self, service: str, limit: int = 20) -> list[Revision]:
        return []


@dataclass
class Chat:
    """Slack as the flows see it: posts and updates kept in order."""

    posted: list[tuple[str, Message]] = field(default_factory=list)
    updated: dict[str, Message] = field(default_factory=dict)

    async def post(self, channel: str, message: Message, *, thread_ts: str | None = None,
                   key: str | None = None) -> str:
        self.posted.append((channel, message))
        return f"{len(self.posted)}.000"

    async def upload(self, channel: str, *, filename: str, title: str, content: str, comment: str) -> None:
        return None

    async def update(self, channel: str, ts: str, message: Message) -> None:
        self.updated[ts] = message


Script = list["BaseException | str"]  # what successive calls of one method do: raise it, or return it


@dataclass
class Workload:
    """A fake workload: restarts, rolls back, deploys and scales in memory; each method follows its script, then
    succeeds. `hang` makes a method wait until cancelled (a step past its timeout, a replica killed)."""

    image: str = "app:2.0"
    before: str = "app:1.0"
    replicas_now: int = 2
    calls: list[str] = field(default_factory=list)
    script: dict[str, Script] = field(default_factory=dict)
    hang: set[str] = field(default_factory=set)
    hooks: dict[str, Callable[[], Any]] = field(default_factory=dict)  # run (and awaited) when a method is called
    acted: asyncio.Event = field(default_factory=asyncio.Event)  # set by the first call that acts

    async def _act(self, what: str, done: str) -> str:
        self.calls.append(what)
        self.acted.set()
        hook = self.hooks.get(what.split(" ")[0])
        if hook is not None and inspect.isawaitable(called := hook()):
            await called
        if what.split(" ")[0] in self.hang:
            await asyncio.Event().wait()
        plan = self.script.get(what.split(" ")[0])
        if plan:
            outcome = plan.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        return done

    def describe(self) -> str:
        return "fake workload"

    def restart_plan(self) -> list[str]:
        return ["restart"]

    async def restart(self, progress: Progress) -> str:
        return await self._act("restart", "restarted")

    def rollback_plan(self, to: str | None) -> list[str]:
        return ["roll back"]

    async def rollback(self, to: str | None, progress: Progress) -> str:
        done = await self._act("rollback", f"now on {to or self.before}")
        self.image = to or self.before
        return done

    async def revisions(self) -> list[Revision]:
        return [Revision(self.image, self.image, current=True), Revision(self.before, self.before)]

    async def current_image(self) -> str:
        return self.image

    async def deploy(self, image: str, progress: Progress) -> str:
        done = await self._act(f"deploy {image}", f"now on {image}")
        self.image = image
        return done

    async def replicas(self) -> int:
        return self.replicas_now

    async def scale(self, replicas: int, progress: Progress) -> str:
        done = await self._act(f"scale {replicas}", f"{replicas} replicas")
        self.replicas_now = replicas
        return done

    async def logs(self, since: timedelta, max_bytes: int = 1_000_000) -> list[tuple[str, str]]:
        return [("app-1", "a log line\n")]

    async def close(self) -> None:
        return None


@dataclass
class Workloads:
    """The `demo` target port (`bot.executors.demo.DemoWorkloads`), answering with the fakes, one per service."""

    by_service: dict[str, Workload] = field(default_factory=dict)

    def workload(self, service: str, target: DemoTarget) -> Workload:
        return self.by_service.setdefault(service, Workload())


@dataclass
class Meter:
    runs: list[tuple[str, str]] = field(default_factory=list)
    approvals: list[str] = field(default_factory=list)

    def run_done(self, kind: str, outcome: str, started: datetime | None, ended: datetime) -> None:
        self.runs.append((kind, outcome))

    def approval_done(self, outcome: str, requested: datetime, decided: datetime) -> None:
        self.approvals.append(outcome)


@dataclass(frozen=True)
class Times:
    lease_seconds: float = 180.0
    heartbeat_seconds: float = QuickClock.HELD  # a heartbeat waits for the test to move the clock


def _groups(members: Mapping[str, set[str]]) -> Callable[[str], Awaitable[set[str]]]:
    async def of(group: str) -> set[str]:
        return members.get(group, set())
    return of


@dataclass
class Deps:
    """`bot.runs.deps.RunDeps` (and so `EngineDeps` and `StepDeps`), all in memory."""

    catalog: Catalog = field(default_factory=lambda: parse_catalog(CATALOG))
    store: Store = field(default_factory=Store)
    clock: QuickClock = field(default_factory=QuickClock)
    chat: Chat = field(default_factory=Chat)
    groups: dict[str, set[str]] = field(default_factory=lambda: {"SONCALL": {"UDAVE"}})
    tasks: BackgroundTasks = field(default_factory=BackgroundTasks)
    metrics: Meter = field(default_factory=Meter)
    tracer: Tracer = NO_TRACER
    settings: Times = field(default_factory=Times)
    owner: str = "replica-a"
    handover: Handover = field(default_factory=Handover)
    environ: Mapping[str, str] = field(default_factory=dict)
    demo_workloads: Workloads = field(default_factory=Workloads)
    healthy: dict[str, bool] = field(default_factory=dict)  # a service's checks, green unless set False
    checked: list[str] = field(default_factory=list)
    session: aiohttp.ClientSession | None = None  # for kinds that call HTTP (http, maintenance, notify)
    run_listeners: RunListeners = field(default_factory=RunListeners)
    wakeups: Wakeups = field(default_factory=Wakeups)

    def __post_init__(self) -> None:
        self.membership = Membership(_groups(self.groups))
        self.locks = StoreLocks(self.store, self.clock, self.owner)

    @property
    def http(self) -> aiohttp.ClientSession:
        assert self.session is not None, "give Deps a session for steps that make HTTP calls"
        return self.session

    async def check(self, service: str, only: Collection[str] = ()) -> HealthRun:
        self.checked.append(service)
        good = self.healthy.get(service, True)
        now = self.clock.now()
        result = CheckResult(service, "staging", "health", "http", Status.OK if good else Status.CRITICAL,
                             "ok" if good else "HTTP 503", 1.0, now)
        return HealthRun((service,), now, now, (result,), services=(service,))

    def workload(self, service: str) -> Workload:
        return self.demo_workloads.by_service.setdefault(service, Workload())

    def replica(self, owner: str) -> Deps:
        """Another replica sharing this one's store and catalog (and its clock)."""
        return Deps(catalog=self.catalog, store=self.store, clock=self.clock, chat=self.chat, groups=self.groups,
                    owner=owner, demo_workloads=self.demo_workloads, healthy=self.healthy)


def failure(effect: Effect, message: str = "it broke") -> ExecutorError:
    return ExecutorError(message, state=f"{effect.value}: as the fake said", effect=effect)


async def run_action(deps: Deps, service: str, kind: ActionKind, *, by: str = ALICE,
                     params: dict[str, Any] | None = None) -> ActionRun:
    """Plan and send a built-in action that needs no approval; returns it once its run has ended."""
    run = await requests.plan(deps, service, kind, requested_by=by, channel_id=CHANNEL, params=params)
    await requests.request(deps, run.id or 0, by)
    await settle(deps)
    return await stored(deps, run.id or 0)


async def stored(deps: Deps, run_id: int) -> ActionRun:
    run = await deps.store.get_action(run_id)
    assert run is not None
    return run


async def settle(deps: Deps) -> None:
    """Wait until every run this replica started has ended."""
    await asyncio.wait_for(deps.tasks.idle(), timeout=5)


async def acting(workload: Workload) -> None:
    """Until a run has called the workload (and, when it hangs, is waiting in it)."""
    await asyncio.wait_for(workload.acted.wait(), timeout=5)
    await asyncio.sleep(0)


def words(message: Message) -> str:
    """Every text a message shows (its fallback and each block's), one per line, for `in` checks."""
    found = [message.text]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.blocks)
    return "\n".join(found)


def ended(run: ActionRun, state: ActionState) -> None:
    assert run.state is state, (run.state, run.outcome, [(s.title, s.state, s.detail) for s in run.steps])


# --- a throwaway step kind, scripted per step, for the engine's own tests -------------------------------------------

@dataclass
class Scripts:
    """What each `scripted` step does on its successive tries (by its `label`): "ok", an Effect to fail with, "hang"
    (until its timeout), or a coroutine function of (deps, run); then "ok". Undos are recorded, in order."""

    plans: dict[str, list[Any]] = field(default_factory=dict)
    tries: list[str] = field(default_factory=list)
    undone: list[str] = field(default_factory=list)
    undo_fails: set[str] = field(default_factory=set)


SCRIPTS = Scripts()


class ScriptedStep(_Step):
    kind: Literal["scripted"]
    label: str


class LookStep(_Step):
    kind: Literal["look"]
    label: str


async def _describe(deps: Any, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    return f"Step {args['label']}", ""


async def _perform(deps: Any, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note) -> str:
    label = str(step.args["label"])
    SCRIPTS.tries.append(label)
    await book.keep(was=f"before {label}")
    plan = SCRIPTS.plans.get(label) or ["ok"]
    outcome = plan.pop(0) if len(plan) > 1 else plan[0]
    if outcome == "hang":
        await asyncio.Event().wait()
    if isinstance(outcome, Effect):
        raise failure(outcome, f"{label} failed")
    if callable(outcome):
        return str(await outcome(deps, run))
    return f"{label} done"


async def _undo(deps: Any, step: PlannedStep, data: dict[str, Any]) -> str:
    label = str(step.args["label"])
    if label in SCRIPTS.undo_fails:
        raise failure(Effect.CHANGED, f"undo of {label} failed")
    SCRIPTS.undone.append(label)
    return f"put {label} back ({data['was']})"


SCRIPTED = StepKind("scripted", ScriptedStep, Traits(changes=True, undo="put it back", cut_short=Effect.UNKNOWN),
                    _describe, _perform, undo=_undo)
LOOK = StepKind("look", LookStep, Traits(changes=False, undo=None, cut_short=Effect.UNTOUCHED), _describe, _perform)


def scripted(label: str, *, kind: str = "scripted", on_failure: str | None = None, retries: int = 0,
             timeout: float = 5.0) -> PlannedStep:
    """A planned step of a throwaway kind (register `SCRIPTED` and `LOOK` first: the `kinds` fixture)."""
    step_kind = SCRIPTED if kind == "scripted" else LOOK
    return PlannedStep(kind=kind, service=None, args={"label": label}, title=f"Step {label}",
                       undo=step_kind.traits.undo, on_failure=on_failure or step_kind.traits.on_failure,
                       timeout=timeout, retries=retries)


async def running_run(deps: Deps, plan: list[PlannedStep], *, rows: list[ActionStep] | None = None,
                      params: dict[str, Any] | None = None, channel_id: str | None = CHANNEL) -> ActionRun:
    """A run of `plan`, stored and moved through approved to running (as the run flow leaves it for the engine)."""
    steps = tuple(rows) if rows is not None else tuple(ActionStep(i, s.title) for i, s in enumerate(plan))
    now = deps.clock.now()
    base = ActionRun(service="web", kind=ActionKind.RUNBOOK, environment="staging", target="web", requested_by=ALICE,
                     created_at=now, expires_at=now + timedelta(minutes=10), params={"mode": "run", **(params or {})},
                     channel_id=channel_id, steps=steps, plan=tuple(plan))
    run_id = await deps.store.create_action(base)
    assert await deps.store.transition_action(run_id, ActionState.APPROVED, expect={ActionState.DRAFT})
    assert await deps.store.transition_action(run_id, ActionState.RUNNING, expect={ActionState.APPROVED},
                                              started_at=now, lease_owner=deps.owner, heartbeat_at=now)
    return await stored(deps, run_id)
