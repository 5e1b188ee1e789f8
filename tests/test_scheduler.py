"""The scheduler on a controllable clock, with real stores (SQLite, PostgreSQL) and real Redis leases:
each occurrence runs once across replicas, missed ones run within the grace period or are recorded as
skipped, a dead replica's occurrence is taken over without a second post, scheduled backups run and alert."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.app import build_context
from bot.catalog_loading import parse_catalog
from bot.clock import ManualClock
from bot.context import Context
from bot.runs.models import SCHEDULER, ActionKind, ActionState, BackupLabel
from bot.scheduling.jobs import catalog_jobs
from bot.scheduling.models import OccurrenceState
from bot.scheduling.posting import post_once
from bot.scheduling.scheduler import Scheduler
from bot.views.common import notice
from playground.slack_api import FakeSlack
from tests.conftest import make_settings
from tests.targets import Targets

OPS, LEADS = "C0OPS", "C0LEADS"
T0 = datetime(2026, 11, 23, 8, 59, 50, tzinfo=UTC)  # a Monday, ten seconds before the digests


def catalog(targets: Targets, tmp_path: Path, *, grace: float = 30) -> str:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "orders.csv").write_text("id,total\n1,10\n")
    return f"""
schedules:
  channel: {OPS}
  grace_minutes: {grace}
  digests:
    daily: {{cron: "0 9 * * *"}}
    weekly: {{cron: "0 9 * * 1", channels: [{LEADS}]}}
services:
  api:
    environment: production
    checks: [{{type: http, url: "{targets.url('/ok')}"}}]
  files:
    environment: production
    backup: {{type: directory, paths: ["{tmp_path / 'data'}"], directory: "{tmp_path / 'backups'}", schedule: "0 2 * * *"}}
"""


@pytest.fixture(params=["store leases", "redis leases"])
def leases(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def replicas(slack: FakeSlack, database_url: str, targets: Targets, tmp_path: Path,
                   leases: str) -> AsyncIterator[list[Context]]:
    """Three replicas (Contexts with their own owner, store connection and Redis client) on one clock."""
    clock = ManualClock(T0)
    prefix = f"opsbot-test-{uuid.uuid4().hex[:8]}:"
    extra = {"redis_url": "redis://127.0.0.1:6379/0", "redis_prefix": prefix} if leases == "redis leases" else {}
    settings = make_settings(slack, database_url, **extra)
    contexts = []
    for name in ("a", "b", "c"):
        ctx = build_context(settings, parse_catalog(catalog(targets, tmp_path)), clock=clock, environ={})
        ctx.owner = f"replica-{name}"
        await ctx.start()
        contexts.append(ctx)
    yield contexts
    for ctx in contexts:
        await ctx.stop()
    if extra:
        client = aioredis.from_url("redis://127.0.0.1:6379/0")
        keys = [key async for key in client.scan_iter(f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def clock_of(ctx: Context) -> ManualClock:
    assert isinstance(ctx.clock, ManualClock)
    return ctx.clock


async def passes(*schedulers: Scheduler) -> None:
    """One pass on every replica at once, then wait for the work they started."""
    await asyncio.gather(*(s.one_pass() for s in schedulers))
    for s in schedulers:
        await s.ctx.tasks.idle()


def digest_posts(slack: FakeSlack, channel: str) -> list[dict]:
    return [m for (c, _), m in slack.messages.items()
            if c == channel and m.get("metadata", {}).get("event_payload", {}).get("key", "").startswith("digest:")]


async def test_each_occurrence_is_posted_once_however_many_replicas_pass_at_once(replicas: list[Context],
                                                                                 slack: FakeSlack) -> None:
    schedulers = [Scheduler(ctx, catalog_jobs(ctx.catalog)) for ctx in replicas]
    await passes(*schedulers)  # registers the jobs: nothing is owed from before they existed
    assert digest_posts(slack, OPS) == []
    clock_of(replicas[0]).advance(15)  # 09:00:05
    for _ in range(3):
        await passes(*schedulers)
    daily, weekly = digest_posts(slack, OPS), digest_posts(slack, LEADS)
    assert len(daily) == 1 and daily[0]["text"].startswith("Daily digest")
    assert len(weekly) == 1 and weekly[0]["text"].startswith("Weekly digest")
    assert daily[0]["metadata"]["event_payload"]["key"] == f"digest:daily@2026-11-23T09:00:00Z:{OPS}"
    store = replicas[0].store
    [occurrence] = await store.occurrences("digest:daily")
    assert (occurrence.state, occurrence.attempt, occurrence.detail) == (OccurrenceState.DONE, 1, f"posted to <#{OPS}>")
    # The next day's occurrence is a new one: posted once more.
    clock_of(replicas[0]).advance(24 * 3600)
    await passes(*schedulers)
    assert len(digest_posts(slack, OPS)) == 2


async def test_a_job_added_to_the_catalog_owes_nothing_from_before_it_existed(replicas: list[Context], slack: FakeSlack) -> None:
    clock_of(replicas[0]).advance(60)  # 09:00:50: the daily digest was due 50 s ago, before opsbot ever ran
    await passes(Scheduler(replicas[0], catalog_jobs(replicas[0].catalog)))
    assert digest_posts(slack, OPS) == [] and await replicas[0].store.occurrences() == []


async def test_an_occurrence_missed_while_every_replica_was_down_runs_within_the_grace_period(replicas: list[Context],
                                                                                              slack: FakeSlack) -> None:
    ctx = replicas[0]
    await passes(Scheduler(ctx, catalog_jobs(ctx.catalog)))  # 08:59:50: jobs registered, then every replica goes down
    clock_of(ctx).advance(20 * 60)  # back at 09:19:50, within the 30 min grace
    await passes(Scheduler(ctx, catalog_jobs(ctx.catalog)))
    assert len(digest_posts(slack, OPS)) == 1
    [occurrence] = await ctx.store.occurrences("digest:daily")
    assert occurrence.state is OccurrenceState.DONE


async def test_an_occurrence_missed_beyond_the_grace_period_is_recorded_as_skipped(replicas: list[Context],
                                                                                   slack: FakeSlack) -> None:
    ctx = replicas[0]
    await passes(Scheduler(ctx, catalog_jobs(ctx.catalog)))
    clock_of(ctx).advance(2 * 3600)  # back at 10:59:50: 09:00 is two hours late
    await passes(Scheduler(ctx, catalog_jobs(ctx.catalog)))
    assert digest_posts(slack, OPS) == []
    [occurrence] = await ctx.store.occurrences("digest:daily")
    assert occurrence.state is OccurrenceState.SKIPPED and "grace period (30 min)" in occurrence.detail
    # Skipped is final: later passes do not run it.
    await passes(Scheduler(ctx, catalog_jobs(ctx.catalog)))
    assert digest_posts(slack, OPS) == []


async def test_a_dead_replicas_digest_is_finished_by_another_without_a_second_post(replicas: list[Context],
                                                                                   slack: FakeSlack) -> None:
    dead, alive = replicas[0], replicas[1]
    schedulers = [Scheduler(ctx, catalog_jobs(ctx.catalog)) for ctx in (dead, alive)]
    await passes(*schedulers)
    clock_of(dead).advance(15)
    await dead.store.record_occurrences("digest:daily", [datetime(2026, 11, 23, 9, tzinfo=UTC)], [],
                                        datetime(2026, 11, 23, 9, tzinfo=UTC))
    # The dead replica took the lease, claimed the occurrence, posted, and died before recording the post.
    due = datetime(2026, 11, 23, 9, tzinfo=UTC)
    [seen] = list(await dead.store.open_occurrences(["digest:daily"]))
    lease = await dead.locks.acquire(f"schedule:{seen.key}", 2.0 if dead.redis else dead.settings.lease_seconds)
    assert lease is not None
    claimed = await dead.store.claim_occurrence("digest:daily", due, dead.owner, dead.clock.now())
    assert claimed is not None and claimed.attempt == 1
    record = await dead.store.begin_post(f"{claimed.key}:{OPS}", OPS, dead.clock.now())
    ts = await dead.chat.post(OPS, notice("Daily digest (from the replica that died)"), key=record.key)
    # While its lease lives, nobody else touches it.
    await passes(schedulers[1])
    assert (await alive.store.get_occurrence("digest:daily", due)).state is OccurrenceState.RUNNING  # type: ignore[union-attr]
    # Its lease lapses (Redis expires the key; lease rows go by the clock): the other replica takes over.
    if dead.redis:
        await asyncio.sleep(2.2)
    else:
        clock_of(dead).advance(dead.settings.lease_seconds + 1)
    await passes(schedulers[1])
    occurrence = await alive.store.get_occurrence("digest:daily", due)
    assert occurrence is not None and (occurrence.state, occurrence.attempt, occurrence.owner) == (OccurrenceState.DONE, 2,
                                                                                                   alive.owner)
    posts = digest_posts(slack, OPS)
    assert len(posts) == 1 and slack.messages[(OPS, ts)]["text"].startswith("Daily digest (from the replica")


async def test_a_post_whose_answer_was_lost_is_found_in_the_channel_not_posted_again(replicas: list[Context],
                                                                                     slack: FakeSlack) -> None:
    ctx = replicas[0]
    record = await ctx.store.begin_post("report:1", OPS, ctx.clock.now())
    ts = await ctx.chat.post(OPS, notice("the report"), key=record.key)  # …and the answer never got recorded
    assert await post_once(ctx, "report:1", OPS, notice("the report")) == (ts, False)
    assert await post_once(ctx, "report:1", OPS, notice("the report")) == (ts, False)
    assert await post_once(ctx, "report:2", OPS, notice("another")) != (ts, False)
    assert len(slack.of("chat.postMessage")) == 2


async def test_a_scheduled_backup_runs_without_approval_and_lands_in_the_store(replicas: list[Context], slack: FakeSlack) -> None:
    ctx = replicas[0]
    scheduler = Scheduler(ctx, catalog_jobs(ctx.catalog))
    await passes(scheduler)
    clock_of(ctx).advance(17 * 3600 + 15)  # 02:00:05 the next day
    await passes(scheduler)
    [occurrence] = await ctx.store.occurrences("backup:files")
    assert occurrence.state is OccurrenceState.DONE, occurrence.detail
    [run] = await ctx.store.actions(service="files")
    assert (run.kind, run.state, run.requested_by, run.approvals_needed) == (ActionKind.BACKUP, ActionState.SUCCEEDED, SCHEDULER,
                                                                             0)
    assert run.params["schedule"] == "backup:files@2026-11-24T02:00:00Z"
    assert [step.kind for step in run.plan] == ["backup", "retention"]
    [backup] = await ctx.store.backups("files")
    assert backup.label is BackupLabel.SCHEDULED and backup.verified_at is not None and backup.path.exists()
    assert not [m for (c, _), m in slack.messages.items() if c == OPS and "failed" in (m.get("text") or "")]


async def test_a_failing_scheduled_backup_is_recorded_and_alerted_in_the_ops_channel(replicas: list[Context], slack: FakeSlack,
                                                                                     tmp_path: Path) -> None:
    ctx = replicas[0]
    (tmp_path / "backups").write_text("a file where the backup directory should be")
    scheduler = Scheduler(ctx, catalog_jobs(ctx.catalog))
    await passes(scheduler)
    clock_of(ctx).advance(17 * 3600 + 15)
    await passes(scheduler)
    [occurrence] = await ctx.store.occurrences("backup:files")
    assert occurrence.state is OccurrenceState.FAILED and "backup run #" in occurrence.detail
    [alert] = [m for (c, _), m in slack.messages.items() if c == OPS
               and (m.get("text") or "").startswith("❌ Scheduled backup of files")]
    assert "2026-11-24 02:00 UTC" in alert["text"]
    [run] = await ctx.store.actions(service="files")
    assert run.state is ActionState.FAILED


async def test_a_backup_whose_replica_died_is_recorded_as_failed_not_run_twice(replicas: list[Context], slack: FakeSlack) -> None:
    ctx = replicas[0]
    scheduler = Scheduler(ctx, catalog_jobs(ctx.catalog))
    await passes(scheduler)
    clock_of(ctx).advance(17 * 3600 + 15)
    due = datetime(2026, 11, 24, 2, tzinfo=UTC)
    await ctx.store.record_occurrences("backup:files", [due], [], due)
    await ctx.store.claim_occurrence("backup:files", due, "replica-gone", ctx.clock.now())  # it died holding no lease now
    await passes(scheduler)
    [occurrence] = await ctx.store.occurrences("backup:files")
    assert occurrence.state is OccurrenceState.FAILED and "stopped mid-run" in occurrence.detail
    assert await ctx.store.actions(service="files") == []
    assert [m for (c, _), m in slack.messages.items() if c == OPS and "Scheduled backup of files" in (m.get("text") or "")]


async def test_old_delivery_keys_and_finished_occurrences_are_pruned(replicas: list[Context]) -> None:
    ctx = replicas[0]
    old = ctx.clock.now() - timedelta(days=40)
    assert await ctx.store.claim("event:Ev1", old)
    await ctx.store.record_occurrences("digest:daily", [], [(old, "missed")], old)
    assert await ctx.store.prune(ctx.clock.now() - timedelta(days=30)) == 2
    assert await ctx.store.claim("event:Ev1", ctx.clock.now())  # forgotten, so it counts as new


async def test_a_backup_missed_beyond_the_grace_period_is_alerted_but_a_missed_digest_is_not(replicas: list[Context],
                                                                                             slack: FakeSlack) -> None:
    ctx = replicas[0]
    await passes(Scheduler(ctx, catalog_jobs(ctx.catalog)))
    clock_of(ctx).advance(20 * 3600)  # every replica down from 08:59 until 04:59 the next day
    await passes(Scheduler(ctx, catalog_jobs(ctx.catalog)))
    states = {o.job: o.state for o in await ctx.store.occurrences()}
    assert states == {"backup:files": OccurrenceState.SKIPPED, "digest:daily": OccurrenceState.SKIPPED,
                      "digest:weekly": OccurrenceState.SKIPPED}
    alerts = [m["text"] for (c, _), m in slack.messages.items() if c == OPS]
    assert len(alerts) == 1 and alerts[0].startswith("❌ Scheduled backup of files (due 2026-11-24 02:00 UTC) failed: skipped")
    assert await ctx.store.actions(service="files") == []


async def test_a_digest_still_reaches_its_other_channels_when_one_refuses_it(replicas: list[Context], slack: FakeSlack) -> None:
    ctx = replicas[0]
    slack.not_in.add(LEADS)  # the weekly digest goes to #leads only: it fails; the daily one in #ops is untouched
    scheduler = Scheduler(ctx, catalog_jobs(ctx.catalog))
    await passes(scheduler)
    clock_of(ctx).advance(15)
    await passes(scheduler)
    weekly = await ctx.store.get_occurrence("digest:weekly", datetime(2026, 11, 23, 9, tzinfo=UTC))
    assert weekly is not None and weekly.state is OccurrenceState.FAILED and f"not posted to <#{LEADS}>" in weekly.detail
    assert len(digest_posts(slack, OPS)) == 1
    assert [m for (c, _), m in slack.messages.items() if c == OPS and m["text"].startswith("❌ Scheduled weekly digest")]


async def test_an_occurrence_started_late_shows_as_scheduler_lag(replicas: list[Context], slack: FakeSlack) -> None:
    ctx = replicas[0]
    await passes(Scheduler(ctx, catalog_jobs(ctx.catalog)))  # 08:59:50
    clock_of(ctx).advance(20 * 60)  # 09:19:50: the 09:00 digest starts almost 20 minutes late
    await passes(Scheduler(ctx, catalog_jobs(ctx.catalog)))
    started = ctx.metrics.registry.get_sample_value("opsbot_scheduler_lag_seconds_count")
    assert started is not None and started >= 1
    assert ctx.metrics.registry.get_sample_value("opsbot_scheduler_lag_seconds_bucket", {"le": "300.0"}) == 0
    assert (ctx.metrics.registry.get_sample_value("opsbot_scheduler_lag_seconds_sum") or 0) >= 19 * 60 * started
