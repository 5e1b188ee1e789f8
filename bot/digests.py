"""The daily and weekly digests: what the store and a fresh health snapshot say, gathered into plain values.

Rendering is bot/views/digests.py; posting on schedule is bot/scheduling/jobs.py. Nothing here talks to Slack.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.context import Context
from bot.errors import OpsbotError
from bot.health import HealthRun, run_and_record
from bot.incidents.metrics import IncidentMetrics, as_utc, metrics
from bot.incidents.models import Incident
from bot.runs.models import ActionKind, ActionRun, ActionState, BackupRecord, Decision
from bot.store.schedule_sql import CheckTally

FINISHED = (ActionState.SUCCEEDED, ActionState.FAILED, ActionState.INTERRUPTED)
WINDOW_ROWS = 500  # rows read per window; a day or a week of one team's operations fits many times over


class UnknownDigest(OpsbotError):
    def __init__(self, name: str, valid: list[str], hint: str | None = None) -> None:
        did_you_mean = f" Did you mean `{hint}`?" if hint else ""
        super().__init__(f"There is no digest `{name}`.{did_you_mean} Digests: {', '.join(f'`{v}`' for v in valid) or 'none'}.")


@dataclass(frozen=True)
class IncidentFacts:
    incident: Incident
    metrics: IncidentMetrics
    commander: str | None


@dataclass(frozen=True)
class RunFacts:
    run: ActionRun
    approved_by: tuple[str, ...]


@dataclass(frozen=True)
class BackupFacts:
    service: str
    latest: BackupRecord | None  # the latest verified backup
    failures: int  # backup runs that failed in the window
    max_age: timedelta
    now: datetime

    @property
    def age(self) -> timedelta | None:
        return self.now - as_utc(self.latest.created_at) if self.latest is not None else None

    @property
    def stale(self) -> bool:
        return self.age is None or self.age > self.max_age


@dataclass(frozen=True)
class AlertFacts:
    """Alert groups opened in the window: how many, which services alerted most, how fast people acknowledged."""

    groups: int
    top_services: tuple[tuple[str, int], ...]  # (service, groups), most first; unrouted ones are "unrouted"
    acknowledged: int
    mean_acknowledge: timedelta | None  # opened → acknowledged, over those acknowledged


@dataclass(frozen=True)
class DailyDigest:
    name: str
    since: datetime
    until: datetime
    zone: str  # the schedule's time zone: the date in the title is the readers' date
    health: HealthRun
    open_incidents: tuple[IncidentFacts, ...]  # by severity, then oldest first
    opened: tuple[IncidentFacts, ...]
    resolved: tuple[IncidentFacts, ...]
    runs: tuple[RunFacts, ...]  # finished in the window, newest first
    pending: tuple[ActionRun, ...]
    backups: tuple[BackupFacts, ...]
    alerts: AlertFacts | None = None  # None when the catalog takes no alerts


@dataclass(frozen=True)
class Rate:
    succeeded: int
    finished: int

    @property
    def percent(self) -> float | None:
        return 100.0 * self.succeeded / self.finished if self.finished else None


@dataclass(frozen=True)
class WeeklyDigest:
    name: str
    since: datetime
    until: datetime
    zone: str
    incidents_by_severity: dict[str, int]  # declared in the window
    mean_acknowledge: timedelta | None
    mean_resolve: timedelta | None
    actions: Rate  # restarts, rollbacks, restores
    runbook_runs: Rate  # catalog runbooks, asked for or scheduled: counted apart, as they are not the three above
    backup_runs: Rate
    checks: tuple[CheckTally, ...]  # failing results per service, most failures first
    backups: tuple[BackupFacts, ...]


async def build(ctx: Context, name: str, *, requested_by: str | None = None, until: datetime
                | None = None) -> DailyDigest | WeeklyDigest:
    """The digest `name` for the window ending `until` (a scheduled one passes its due time, so that a late
    or retried run covers the same window and consecutive digests neither overlap nor leave a gap)."""
    digests = ctx.catalog.schedules.digests
    if name not in digests:
        raise UnknownDigest(name, sorted(digests))
    schedule = digests[name]
    if (schedule.kind or name) == "daily":
        return await daily(ctx, name, requested_by=requested_by, until=until, zone=schedule.timezone)
    return await weekly(ctx, name, until=until, zone=schedule.timezone)


async def daily(ctx: Context, name: str = "daily", *, requested_by: str | None = None, until: datetime | None = None,
                zone: str = "UTC") -> DailyDigest:
    until = until or ctx.clock.now()
    since = until - timedelta(days=1)
    health = await run_and_record(ctx.store, ctx.catalog, (), ctx.check_deps, ctx.clock, requested_by=requested_by)
    incidents = await _incidents(ctx, since)
    rank = {severity.name: index for index, severity in enumerate(ctx.catalog.incidents.severities)}
    still_open = sorted((f for f in incidents if f.incident.open),
                        key=lambda f: (rank.get(f.incident.severity, len(rank)), f.incident.declared_at))
    runs = await _finished_runs(ctx, since)
    return DailyDigest(
        name=name, since=since, until=until, zone=zone, health=health, open_incidents=tuple(still_open),
        opened=tuple(f for f in incidents if as_utc(f.incident.declared_at) >= since),
        resolved=tuple(f for f in incidents if f.incident.resolved_at is not None and not f.incident.open
                       and as_utc(f.incident.resolved_at) >= since),
        runs=tuple([RunFacts(run, await _approvers(ctx, run)) for run in runs]),
        pending=tuple(await ctx.store.actions(states=[ActionState.PENDING], limit=WINDOW_ROWS)),
        backups=await _backups(ctx, runs, until),
        alerts=await _alerts(ctx, since, until) if ctx.catalog.alerts is not None else None,
    )


async def _alerts(ctx: Context, since: datetime, until: datetime) -> AlertFacts:
    groups = [g for g in await ctx.store.groups_since(since) if as_utc(g.created_at) < until]
    counts: dict[str, int] = {}
    for group in groups:
        counts[group.service or "unrouted"] = counts.get(group.service or "unrouted", 0) + 1
    waits = [as_utc(g.acked_at) - as_utc(g.created_at) for g in groups if g.acked_at is not None]
    mean = sum(waits, timedelta(0)) / len(waits) if waits else None
    top = tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:5])
    return AlertFacts(groups=len(groups), top_services=top, acknowledged=len(waits), mean_acknowledge=mean)


async def weekly(ctx: Context, name: str = "weekly", *, until: datetime | None = None, zone: str = "UTC") -> WeeklyDigest:
    until = until or ctx.clock.now()
    since = until - timedelta(days=7)
    incidents = await _incidents(ctx, since)
    declared = [f for f in incidents if as_utc(f.incident.declared_at) >= since]
    by_severity = {severity.name: 0 for severity in ctx.catalog.incidents.severities}
    for facts in declared:
        by_severity[facts.incident.severity] = by_severity.get(facts.incident.severity, 0) + 1
    runs = await _finished_runs(ctx, since)
    changes = [run for run in runs if run.kind in (ActionKind.RESTART, ActionKind.ROLLBACK, ActionKind.RESTORE)]
    runbook_runs = [run for run in runs if run.kind is ActionKind.RUNBOOK]
    backup_runs = [run for run in runs if run.kind is ActionKind.BACKUP]
    tallies = sorted(await ctx.store.check_tallies(since), key=lambda t: (-t.failing, -t.warnings, t.service))
    return WeeklyDigest(
        name=name, since=since, until=until, zone=zone, incidents_by_severity=by_severity,
        mean_acknowledge=_mean([f.metrics.time_to_acknowledge for f in declared]),
        mean_resolve=_mean([f.metrics.time_to_resolve for f in declared]),
        actions=_rate(changes), runbook_runs=_rate(runbook_runs), backup_runs=_rate(backup_runs), checks=tuple(tallies),
        backups=await _backups(ctx, runs, until),
    )


async def _incidents(ctx: Context, since: datetime) -> list[IncidentFacts]:
    """Incidents open now or declared or resolved since `since`, with metrics from their timelines."""
    found = []
    for incident in await ctx.store.incidents(since=since, limit=WINDOW_ROWS):
        entries = await ctx.store.entries(incident.id or 0)
        found.append(IncidentFacts(incident, metrics(incident, entries), incident.roles.get("commander")))
    return found


async def _finished_runs(ctx: Context, since: datetime) -> list[ActionRun]:
    """Runs (any kind) that ended since `since`, newest first."""
    return [run for run in await ctx.store.actions(since=since, states=FINISHED, limit=WINDOW_ROWS)
            if run.finished_at is not None and as_utc(run.finished_at) >= since]


async def _approvers(ctx: Context, run: ActionRun) -> tuple[str, ...]:
    return tuple(d.user_id for d in await ctx.store.decisions(run.id or 0) if d.decision is Decision.APPROVE)


async def _backups(ctx: Context, runs: list[ActionRun], now: datetime) -> tuple[BackupFacts, ...]:
    max_age = timedelta(days=ctx.catalog.schedules.backup_max_age_days)
    found = []
    for service, entry in sorted(ctx.catalog.services.items()):
        if entry.backup is None:
            continue
        verified = [b for b in await ctx.store.backups(service, limit=20) if b.verified_at is not None]
        failures = sum(1 for run in runs if run.service == service and run.kind is ActionKind.BACKUP
                       and run.state is not ActionState.SUCCEEDED)
        found.append(BackupFacts(service, verified[0] if verified else None, failures, max_age, now))
    # Stale first: the line a lead must not miss.
    return tuple(sorted(found, key=lambda b: (not b.stale, b.service)))


def _rate(runs: list[ActionRun]) -> Rate:
    return Rate(sum(1 for run in runs if run.state is ActionState.SUCCEEDED), len(runs))


def _mean(values: list[timedelta | None]) -> timedelta | None:
    known = [value for value in values if value is not None]
    return sum(known, timedelta(0)) / len(known) if known else None
