"""The Context: everything the core needs, built once by the composition root and passed in.

Connections (store, HTTP session, Redis) are opened in `start()` and closed in `stop()`, never lazily.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bot import adapters
from bot.audit import AuditOutbox
from bot.catalog import Catalog
from bot.chat import Chat
from bot.checks import CheckDeps
from bot.checks.base import Observations
from bot.clock import Clock, SystemClock
from bot.errors import StoreUnavailable
from bot.executors.demo import DemoWorkloads
from bot.handover import Handover
from bot.health import HealthRun, run_checks
from bot.locks import CountedLocks, Locks, LockServer, StoreLocks, process_owner
from bot.metrics import Metrics
from bot.runs.listeners import RunListeners
from bot.runs.policy import Membership
from bot.runs.wakeups import Wakeups
from bot.settings import Settings
from bot.store import Store
from bot.tasks import BackgroundTasks
from bot.tracing import NO_TRACER, Tracer

log = logging.getLogger(__name__)


@dataclass
class Context:
    settings: Settings
    catalog: Catalog
    store: Store
    slack: AsyncWebClient
    clock: Clock = field(default_factory=SystemClock)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    tasks: BackgroundTasks = field(default_factory=BackgroundTasks)
    owner: str = field(default_factory=process_owner)  # who holds this process's leases
    observations: Observations = field(default_factory=Observations)  # what checks saw on earlier runs
    demo_workloads: DemoWorkloads | None = None  # `demo` targets' apps, when the process runs them (opsbot dev)
    metrics: Metrics = field(default_factory=Metrics)  # this process's Prometheus registry, served at /metrics
    audit_outbox: AuditOutbox = field(default_factory=AuditOutbox)  # outcomes waiting for the store
    tracer: Tracer = NO_TRACER  # spans per Slack request, check and run step when OTEL_EXPORTER_OTLP_ENDPOINT is set
    handover: Handover = field(default_factory=Handover)  # set draining by SIGTERM: no new work, runs handed over
    run_listeners: RunListeners = field(default_factory=RunListeners)  # told when a run ends (an alert's Run button)
    wakeups: Wakeups = field(default_factory=Wakeups)  # a waiting manual step, woken by an answer taken here
    _http: aiohttp.ClientSession | None = None
    _redis: LockServer | None = None
    _membership: Membership | None = None

    async def start(self) -> None:
        await self.store.open()
        applied = await self.store.migrate()
        if applied:
            log.info("applied store migrations %s", applied)
        # No pool-wide cap (aiohttp's default is 100 connections): health runs bound their checks per target host
        # (`health.per_host`) and in all (`health.concurrency`), and a lower cap here would queue them silently.
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None), connector=aiohttp.TCPConnector(limit=0))
        if self.settings.redis_url is not None:
            # redis-py is imported only when REDIS_URL is set (`bot.adapters`, kind `settings:redis`).
            self._redis = adapters.module("bot.redis_locks").connect(self.settings.redis_url.get_secret_value(),
                                                                     self.settings.redis_prefix)

    async def stop(self) -> None:
        await self.tasks.drain(timeout=10)
        if self._redis is not None:
            await self._redis.close()
            self._redis = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        await self.store.close()

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            raise RuntimeError("Context.start() has not run")
        return self._http

    @property
    def redis(self) -> LockServer | None:
        return self._redis

    @property
    def chat(self) -> Chat:
        return Chat(self.slack, self.http)

    @property
    def locks(self) -> Locks:
        """Redis when REDIS_URL is set, else lease rows in the store."""
        if self._redis is not None:
            return CountedLocks(self._redis.locks(self.owner), self.metrics)
        return CountedLocks(StoreLocks(self.store, self.clock, self.owner), self.metrics)

    @property
    def membership(self) -> Membership:
        if self._membership is None:
            self._membership = Membership(self.chat.usergroup_members)
        return self._membership

    @property
    def check_deps(self) -> CheckDeps:
        return CheckDeps(http=self.http, environ=self.environ, clock=self.clock, backups=self.store,
                         observations=self.observations, observer=self.metrics, tracer=self.tracer)

    async def check(self, service: str, only: Collection[str] = ()) -> HealthRun:
        """The service's health checks (those named in `only`, or all), run once (a plan's health gate:
        `bot.runs.steps.check`)."""
        return await run_checks(self.catalog, (service,), self.check_deps, self.clock, only=only)

    async def readiness(self) -> dict[str, str]:
        """What /healthz reports: each dependency "ok" or why not."""
        report = {}
        try:
            await self.store.ping()
            report["store"] = "ok"
        except StoreUnavailable as exc:
            report["store"] = str(exc)
        if self._redis is not None:
            report["redis"] = await self._redis.readiness()
        return report
