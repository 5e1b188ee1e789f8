"""The scheduler: every replica runs one; each occurrence of each job runs exactly once among them.

How: every replica records due occurrences as rows (duplicates ignored, so any replica may do it); to run one,
a replica takes the occurrence's lease (Redis or a lease row, see bot/locks.py), claims the row (its attempt
number grows, and only the latest attempt may finish it) and keeps the lease alive while the job runs. If that
replica dies, the lease lapses and another replica takes the occurrence over: a resumable job (a digest, whose
posts are idempotent) runs again and finishes; any other job (a backup) is recorded as failed and alerted, so a
person decides. Periodic chores (expiry, recovery, reminders, pruning) are idempotent and run on every replica.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot import audit_trail
from bot.alerts import auto_declare, silencing
from bot.context import Context
from bot.errors import InfrastructureError, OpsbotError, store_down
from bot.incidents import declaring, reminders
from bot.locks import Lease
from bot.log_context import annotate, bound
from bot.runs import execution, requests
from bot.runs.partials import record_orphaned_archives, remove_orphaned_partials
from bot.scheduling.cron import CronSchedule
from bot.scheduling.models import Occurrence, OccurrenceState, occurrence_key
from bot.scheduling.posting import post_once
from bot.views.schedule import failure_alert

log = logging.getLogger(__name__)

# Times are settings (bot/settings.py): LEASE_SECONDS, how long a dead replica's occurrence waits before another
# takes it over; HEARTBEAT_SECONDS, how often a running one's lease is renewed; TICK_SECONDS, the longest wait
# between passes (how soon a lapsed lease is noticed); CHORE_SECONDS, how often the chores run.
MAX_ATTEMPTS = 3  # a job that kills its replica every time is given up, not retried forever
LOOKBACK = timedelta(days=8)  # how far back missed occurrences are recorded (as skipped) after a long outage
RECORD_AT_MOST = 100  # …and how many of them per job
PRUNE_AFTER = timedelta(days=30)

JobWork = Callable[[Context, Occurrence], Awaitable[str]]


@dataclass(frozen=True)
class Job:
    name: str  # "digest:daily", "backup:db": stable, part of every occurrence's key
    title: str  # what people read: "Daily digest", "Backup of db"
    schedule: CronSchedule
    work: JobWork  # returns a one-line outcome; raises to fail
    resumable: bool  # may run again after its replica died mid-run (its effects are idempotent)


class _LeaseLost(Exception):
    pass


class Scheduler:
    def __init__(self, ctx: Context, jobs: list[Job]) -> None:
        self.ctx, self.jobs = ctx, {job.name: job for job in jobs}
        settings = ctx.settings
        self.lease_ttl, self.renew_every = settings.lease_seconds, settings.heartbeat_seconds
        self.tick, self.chore_interval = settings.tick_seconds, settings.chore_seconds
        self._running: dict[str, asyncio.Task[None]] = {}
        # Start-up has just done the chores (before serving): the first are due one interval later.
        self._chores_at = ctx.clock.monotonic()
        self.beat = ctx.clock.monotonic()  # when the loop last began a pass: /readyz reads it

    @property
    def grace(self) -> timedelta:
        return timedelta(minutes=self.ctx.catalog.schedules.grace_minutes)

    @property
    def silence_limit(self) -> float:
        """How long without a pass means the loop is dead or stuck: four ticks, never under a minute, so a pass
        slowed by Slack's rate limits (Retry-After) or a slow store does not flap readiness."""
        return max(60.0, 4 * self.tick)

    def silent_for(self) -> float:
        return self.ctx.clock.monotonic() - self.beat

    async def run_forever(self) -> None:
        while True:
            self.beat = self.ctx.clock.monotonic()
            wait = self.tick
            try:
                await self.one_pass()
                wait = self._until_next()
            except InfrastructureError as exc:
                if not store_down(exc):  # a store outage is logged once, by the store
                    log.warning("scheduler pass skipped: %s", exc)
            except Exception:
                log.exception("scheduler pass failed; trying again shortly")
            await self.ctx.clock.sleep(wait)

    async def one_pass(self) -> None:
        """Record what is due, start what this replica can claim, and do the chores when they are due."""
        try:
            await self.record_due()
            await self.start_claimable()
        finally:
            # The chores need neither Redis nor the schedules: a lock-store outage must not stop expiry or reminders.
            now = self.ctx.clock.monotonic()
            if now - self._chores_at >= self.chore_interval:
                self._chores_at = now
                await chores(self.ctx)

    def _until_next(self) -> float:
        now = self.ctx.clock.now()
        soonest = min((job.schedule.after(now) for job in self.jobs.values()), default=None)
        wait = (soonest - now).total_seconds() if soonest is not None else self.tick
        # Chores fall due too: a scheduler with a long tick still does them every chore interval.
        chores_in = self._chores_at + self.chore_interval - self.ctx.clock.monotonic()
        return min(max(min(wait, chores_in), 0.05), self.tick)

    async def record_due(self) -> None:
        now = self.ctx.clock.now()
        for job in self.jobs.values():
            cursor = await self.ctx.store.register_job(job.name, now)
            due = job.schedule.between(max(cursor, now - LOOKBACK), now, limit=RECORD_AT_MOST)
            if not due:
                continue
            fresh = [at for at in due if now - at <= self.grace]
            why = (f"missed: opsbot was not running then, and it is more than the grace period "
                   f"({self.ctx.catalog.schedules.grace_minutes:g} min) ago")
            missed = [(at, why) for at in due if now - at > self.grace]
            await self.ctx.store.record_occurrences(job.name, fresh, missed, due[-1])
            for at, _ in missed:
                log.warning("%s due %s was missed (beyond the grace period): recorded as skipped", job.name, at.isoformat())
            if missed and not job.resumable:
                # A backup that did not happen is news for a person; a digest that did not is not worth a page.
                await self._alert(job, occurrence_key(job.name, missed[-1][0]), missed[-1][0],
                                  f"skipped{f' ({len(missed)} times)' if len(missed) > 1 else ''}: {why}")

    async def start_claimable(self) -> None:
        for occurrence in await self.ctx.store.open_occurrences(self.jobs):
            if occurrence.key in self._running:
                continue
            lease = await self.ctx.locks.acquire(f"schedule:{occurrence.key}", self.lease_ttl)
            if lease is None:
                continue  # another replica is on it
            task = self.ctx.tasks.spawn(self._run(occurrence, lease), name=f"occurrence {occurrence.key}")
            self._running[occurrence.key] = task
            task.add_done_callback(functools.partial(self._forget, occurrence.key))

    def _forget(self, key: str, _: asyncio.Task[None]) -> None:
        self._running.pop(key, None)

    async def _run(self, seen: Occurrence, lease: Lease) -> None:
        annotate(job=seen.key)  # its own task (start_claimable spawns it): every line it logs names the occurrence
        ctx, job = self.ctx, self.jobs[seen.job]
        try:
            now = ctx.clock.now()
            if seen.state is OccurrenceState.PENDING and now - seen.due_at > self.grace:
                # Recorded in time, but every replica was down (or busy) until past the grace period.
                if await ctx.store.finish_occurrence(job.name, seen.due_at, OccurrenceState.SKIPPED,
                                                     "not started within the grace period", now) and not job.resumable:
                    await self._alert(job, seen.key, seen.due_at, "skipped: not started within the grace period")
                return
            occurrence = await ctx.store.claim_occurrence(job.name, seen.due_at, ctx.owner, now)
            if occurrence is None:
                return  # finished by someone else since we looked
            if occurrence.attempt > 1 and now - occurrence.due_at > self.grace:
                # Left running by a replica that died long ago (before an outage): too late to be useful now.
                await self._fail(job, occurrence, f"the replica running it ({seen.owner}) stopped, and it is now "
                                                  "more than the grace period late")
                return
            if occurrence.attempt > 1 and not job.resumable:
                await self._fail(job, occurrence, f"the replica running it ({seen.owner}) stopped mid-run; "
                                                  "not retried automatically, so a person can check first")
                return
            if occurrence.attempt > MAX_ATTEMPTS:
                await self._fail(job, occurrence, f"gave up after {MAX_ATTEMPTS} attempts whose replicas stopped mid-run")
                return
            ctx.metrics.scheduler_lag.observe(max(0.0, (now - occurrence.due_at).total_seconds()))
            await self._work(job, occurrence, lease)
        finally:
            try:
                await lease.release()
            except InfrastructureError:
                log.warning("could not release the lease of %s; it lapses in %s s", seen.key, self.lease_ttl)

    async def _work(self, job: Job, occurrence: Occurrence, lease: Lease) -> None:
        ctx = self.ctx
        work = asyncio.current_task()
        assert work is not None
        keeper = ctx.tasks.spawn(self._keep(lease, work), name=f"lease {occurrence.key}")
        try:
            detail = await job.work(ctx, occurrence)
        except asyncio.CancelledError as exc:
            if _LOST in exc.args:
                log.error("%s lost its lease mid-run; another replica will take it over", occurrence.key)
                return  # not finished: the row stays running for the next holder
            raise  # stopping: the row stays running and the released lease hands it over at once
        except OpsbotError as exc:
            await self._fail(job, occurrence, str(exc))
        except Exception as exc:
            reference = secrets.token_hex(4)
            log.exception("%s failed (reference %s)", occurrence.key, reference)
            await self._fail(job, occurrence, f"opsbot failed: {type(exc).__name__} (reference {reference})")
        else:
            await ctx.store.finish_occurrence(job.name, occurrence.due_at, OccurrenceState.DONE, detail, ctx.clock.now(),
                                              attempt=occurrence.attempt)
            log.info("%s done: %s", occurrence.key, detail)
        finally:
            keeper.cancel()

    async def _keep(self, lease: Lease, work: asyncio.Task[None]) -> None:
        """Renew the lease; a failed renewal is retried until the lease would have lapsed, then the work stops
        (another replica may take the occurrence from then on, so this one must not go on unguarded)."""
        clock, renew_every = self.ctx.clock, self.renew_every
        lapses_at = clock.monotonic() + self.lease_ttl
        while True:
            await clock.sleep(renew_every)
            try:
                async with asyncio.timeout(renew_every):
                    if await lease.renew(self.lease_ttl):
                        lapses_at = clock.monotonic() + self.lease_ttl
                        continue
                log.error("%s was taken by another replica", lease.name)
            except Exception as exc:  # noqa: BLE001 - a failed renewal is retried until the lease would lapse
                log.warning("renewing %s failed (%s)", lease.name, type(exc).__name__)
                if clock.monotonic() + renew_every < lapses_at - renew_every / 2:
                    continue
            work.cancel(_LOST)
            return

    async def _fail(self, job: Job, occurrence: Occurrence, why: str) -> None:
        ctx = self.ctx
        if not await ctx.store.finish_occurrence(job.name, occurrence.due_at, OccurrenceState.FAILED, why, ctx.clock.now(),
                                                 attempt=occurrence.attempt):
            return  # a newer attempt owns it now
        log.error("%s failed: %s", occurrence.key, why)
        await self._alert(job, occurrence.key, occurrence.due_at, why)

    async def _alert(self, job: Job, key: str, due_at: datetime, why: str) -> None:
        """Tell the ops channel, once per occurrence, that a scheduled job did not do its work."""
        channel = self.ctx.catalog.schedules.channel
        if channel is None:
            return
        try:
            await post_once(self.ctx, f"alert:{key}", channel, failure_alert(job.title, due_at, why))
        except Exception:
            log.exception("could not post the failure alert of %s", key)


_LOST = "occurrence lease lost"


async def chores(ctx: Context) -> None:
    """The periodic, idempotent work every replica does: each change is a compare-and-set, so no lease."""
    for name, work in (("expiring requests", requests.expire_due), ("recovering runs", execution.recover),
                       ("taking over handed-over runs", execution.take_over),
                       ("removing partial backups of interrupted runs", remove_orphaned_partials),
                       ("recording verified backups whose record was lost", record_orphaned_archives),
                       ("incident reminders", reminders.remind_due),
                       ("finishing incident declarations", declaring.finish_declarations),
                       ("declaring incidents from alerts", auto_declare.declare_due),
                       ("expiring silence requests nobody approved", silencing.expire_due),
                       ("completing audit entries", audit_trail.settle), ("pruning", _prune)):
        try:
            with bound(job=f"chore: {name}"):
                await work(ctx)
        except InfrastructureError as exc:
            if not store_down(exc):  # a store outage is logged once, by the store
                log.warning("%s skipped: %s; trying again in %s s", name, exc, ctx.settings.chore_seconds)
        except Exception:
            # One failing chore must not starve the others: each is retried on the next pass.
            log.exception("%s failed; trying again in %s s", name, ctx.settings.chore_seconds)


async def _prune(ctx: Context) -> int:
    return await ctx.store.prune(ctx.clock.now() - PRUNE_AFTER)
