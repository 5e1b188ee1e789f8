"""Health runs: resolve which services to check, run their checks concurrently, record the run.

Rendering a run is `bot.views.health`; the individual check kinds are `bot.checks`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from bot.catalog import Catalog, suggest
from bot.checks import CheckDeps, CheckSpec, Status
from bot.checks.hosts import HostGates, target_host
from bot.clock import Clock
from bot.errors import MissingSecret, OpsbotError, UnknownService

if TYPE_CHECKING:
    from bot.store import Store

log = logging.getLogger(__name__)

ALL = "all"


@dataclass(frozen=True)
class CheckResult:
    service: str
    environment: str
    check: str
    kind: str
    status: Status
    reason: str
    latency_ms: float
    checked_at: datetime


@dataclass(frozen=True)
class HealthRun:
    """One `/ops health` (or scheduled) run. `scope` empty means every service in the catalog."""

    scope: tuple[str, ...]
    started_at: datetime
    finished_at: datetime
    results: tuple[CheckResult, ...]
    requested_by: str | None = None
    channel_id: str | None = None
    id: int | None = None
    services: tuple[str, ...] = field(default=())

    @property
    def status(self) -> Status:
        return Status.worst([result.status for result in self.results])

    @property
    def duration_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def by_service(self) -> dict[str, list[CheckResult]]:
        grouped: dict[str, list[CheckResult]] = {name: [] for name in self.services}
        for result in self.results:
            grouped.setdefault(result.service, []).append(result)
        return grouped

    def service_status(self, service: str) -> Status:
        return Status.worst([r.status for r in self.results if r.service == service])


def resolve_scope(catalog: Catalog, names: Sequence[str]) -> tuple[str, ...]:
    """Validate the service names a user typed. `()` or `("all",)` means every service."""
    wanted = [name.strip().lower() for name in names if name.strip()]
    if not wanted or ALL in wanted:
        return ()
    valid = catalog.service_names
    unknown = [name for name in wanted if name not in catalog.services]
    if unknown:
        raise UnknownService(unknown[0], [ALL, *valid], suggest(unknown[0], valid))
    return tuple(dict.fromkeys(wanted))  # keep order, drop repeats


def services_in(catalog: Catalog, scope: tuple[str, ...]) -> tuple[str, ...]:
    return scope or tuple(catalog.service_names)


async def run_checks(
    catalog: Catalog,
    scope: tuple[str, ...],
    deps: CheckDeps,
    clock: Clock,
    *,
    requested_by: str | None = None,
    channel_id: str | None = None,
    only: Collection[str] = (),
) -> HealthRun:
    """Run every check of the services in scope (only those named in `only`, a health gate's choice, when given) at
    once, at most `health.per_host` against one target host and `health.concurrency` in all. A request over many
    services takes about as long as its slowest check, not the sum.
    """
    services = services_in(catalog, scope)
    gates = HostGates(catalog.health.per_host, catalog.health.concurrency)
    started = clock.now()

    async def one(service_name: str, spec: CheckSpec) -> CheckResult:
        service = catalog.services[service_name]
        service_deps = deps.for_service(service_name, service.target)
        with deps.tracer.span(f"check {spec.type}", {"opsbot.service": service_name, "opsbot.check.kind": spec.type,
                                                     "opsbot.check": spec.label}) as span:
            async with gates.slot(target_host(spec, service_deps)):
                begun = time.perf_counter()
                status, reason = await _probe(spec, service_deps)
                latency_ms = (time.perf_counter() - begun) * 1000
            span.set({"opsbot.check.status": status.value})
        if deps.observer is not None:
            deps.observer.check_done(spec.type, status.value, latency_ms / 1000)
        return CheckResult(
            service=service_name,
            environment=service.environment,
            check=spec.label,
            kind=spec.type,
            status=status,
            reason=reason,
            latency_ms=latency_ms,
            checked_at=clock.now(),
        )

    jobs = [one(name, spec) for name in services for spec in catalog.services[name].checks
            if not only or spec.label in only]
    with deps.tracer.span("health run", {"opsbot.services": len(services), "opsbot.checks": len(jobs)}) as span:
        results = await asyncio.gather(*jobs)  # each check's task starts inside this span: they are its children
        span.set({"opsbot.health.status": Status.worst([result.status for result in results]).value})
    return HealthRun(
        scope=scope,
        services=services,
        started_at=started,
        finished_at=clock.now(),
        results=tuple(results),
        requested_by=requested_by,
        channel_id=channel_id,
    )


async def _probe(spec: CheckSpec, deps: CheckDeps) -> tuple[Status, str]:
    try:
        async with asyncio.timeout(spec.timeout):
            probe = await spec.probe(deps)
    except TimeoutError:
        return Status.ERROR, f"timed out after {spec.timeout:g} s"
    except MissingSecret as exc:
        return Status.ERROR, f"cannot run: {exc}"
    except OpsbotError as exc:
        return Status.ERROR, str(exc)
    except Exception as exc:  # noqa: BLE001 - a check must never take the whole run down with it
        # Only the type is logged: a library's message may quote a connection string it could not parse.
        log.error("check %s failed unexpectedly: %s", spec.label, type(exc).__name__)
        return Status.ERROR, f"check failed: {type(exc).__name__}"
    return probe.status, probe.reason


async def run_and_record(
    store: Store,
    catalog: Catalog,
    scope: tuple[str, ...],
    deps: CheckDeps,
    clock: Clock,
    *,
    requested_by: str | None = None,
    channel_id: str | None = None,
) -> HealthRun:
    """Run the checks and store the run with its per-check results (digests and trends read them)."""
    run = await run_checks(catalog, scope, deps, clock, requested_by=requested_by, channel_id=channel_id)
    run_id = await store.save_health_run(run)
    return replace(run, id=run_id)
