"""Digest contents against a seeded store (incidents, action runs, approvals, backups, health runs) and a
fresh health snapshot; `/ops digest` and `/ops schedule` through signed requests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from bot import digests
from bot.app import build_context
from bot.catalog_loading import parse_catalog
from bot.checks import Status
from bot.clock import ManualClock
from bot.context import Context
from bot.health import CheckResult, HealthRun
from bot.incidents.models import EntryKind, Incident, IncidentStatus, TimelineEntry
from bot.runs.models import (
    SCHEDULER,
    ActionKind,
    ActionRun,
    ActionState,
    ApprovalDecision,
    BackupLabel,
    BackupRecord,
    Decision,
)
from bot.views.digests import daily_message, weekly_message
from playground.payloads import sign, slash_command
from playground.slack_api import FakeSlack
from tests.conftest import make_settings, start_bot
from tests.targets import Targets

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ALICE, BOB, CAROL = "U0ALICE", "U0BOB", "U0CAROL"


def catalog(targets: Targets, tmp_path: Path) -> str:
    return f"""
schedules:
  channel: C0OPS
  backup_max_age_days: 7
  digests:
    evening: {{kind: daily, cron: "0 18 * * *", timezone: Europe/Berlin}}
services:
  api:
    environment: production
    checks: [{{type: http, url: "{targets.url('/ok')}"}}]
  web:
    environment: production
    checks: [{{type: http, name: front, url: "{targets.url('/fail')}"}}]
  db:
    environment: production
    backup: {{type: directory, paths: ["{tmp_path / 'db'}"], directory: "{tmp_path / 'db-backups'}"}}
  files:
    environment: production
    backup: {{type: directory, paths: ["{tmp_path / 'files'}"], directory: "{tmp_path / 'file-backups'}", schedule: "0 2 * * *"}}
"""


@pytest.fixture
async def ctx(slack: FakeSlack, database_url: str, targets: Targets, tmp_path: Path) -> AsyncIterator[Context]:
    context = build_context(make_settings(slack, database_url), parse_catalog(catalog(targets, tmp_path)),
                            clock=ManualClock(NOW), environ={})
    await context.start()
    await seed(context)
    yield context
    await context.stop()


async def incident(ctx: Context, title: str, severity: str, declared: timedelta, *, acked: timedelta | None = None,
                   resolved: timedelta | None = None, commander: str | None = None) -> int:
    at = NOW - declared
    status = IncidentStatus.RESOLVED if resolved is not None else IncidentStatus.INVESTIGATING
    incident_id = await ctx.store.create_incident(Incident(
        title=title, severity=severity, declared_by=ALICE, declared_at=at, status=status,
        roles={"commander": commander} if commander else {}))
    await ctx.store.update_incident(incident_id, channel_id=f"C0INC{title.split()[0].upper()}",
                                    acknowledged_at=at + acked if acked else None,
                                    resolved_at=at + resolved if resolved is not None else None)
    await ctx.store.add_entry(TimelineEntry(incident_id, at, EntryKind.DECLARED, "declared", ALICE))
    if acked:
        await ctx.store.add_entry(TimelineEntry(incident_id, at + acked, EntryKind.ACKNOWLEDGED, "acknowledged", BOB))
    if resolved is not None:
        await ctx.store.add_entry(TimelineEntry(incident_id, at + resolved, EntryKind.RESOLVED, "resolved", BOB))
    return incident_id


async def run(ctx: Context, service: str, kind: ActionKind, ago: timedelta, state: ActionState, *,
              by: str = ALICE, approved_by: str | None = None, outcome: str = "done") -> int:
    created = NOW - ago - timedelta(minutes=5)
    run_id = await ctx.store.create_action(ActionRun(
        service=service, kind=kind, environment="production", target="t", requested_by=by, created_at=created,
        expires_at=created + timedelta(hours=1), state=ActionState.PENDING if state is ActionState.PENDING
        else ActionState.RUNNING,
        approvals_needed=1 if approved_by or state is ActionState.PENDING else 0, channel_id="C0OPS"))
    if approved_by:
        await ctx.store.add_decision(ApprovalDecision(run_id, approved_by, Decision.APPROVE, created + timedelta(minutes=1)))
    if state is not ActionState.PENDING:
        await ctx.store.transition_action(run_id, state, expect={ActionState.RUNNING}, finished_at=NOW - ago, outcome=outcome)
    return run_id


async def backup(ctx: Context, service: str, ago: timedelta, size: int) -> None:
    await ctx.store.add_backup(BackupRecord(service=service, kind="directory", path=Path(f"/backups/{service}-{ago}"), size=size,
                                            sha256="0" * 64, label=BackupLabel.SCHEDULED, created_at=NOW - ago,
                                            verified_at=NOW - ago))


async def health(ctx: Context, ago: timedelta, web: Status) -> None:
    at = NOW - ago
    await ctx.store.save_health_run(HealthRun(scope=(), started_at=at, finished_at=at, services=("api", "web"), results=(
        CheckResult("api", "production", "http", "http", Status.OK, "HTTP 200", 10, at),
        CheckResult("web", "production", "front", "http", web, "HTTP 500" if web.failing else "slow", 10, at))))


async def seed(ctx: Context) -> None:
    await incident(ctx, "Checkout is down", "P1", timedelta(hours=3), acked=timedelta(minutes=4), commander=BOB)
    await incident(ctx, "Search is slow", "P3", timedelta(hours=30))  # open, declared before the window, not acknowledged
    await incident(ctx, "Login errors", "P2", timedelta(hours=20), acked=timedelta(minutes=10), resolved=timedelta(hours=2))
    await incident(ctx, "Old disk alarm", "P2", timedelta(days=3), acked=timedelta(minutes=20), resolved=timedelta(hours=1))
    await run(ctx, "api", ActionKind.RESTART, timedelta(hours=2), ActionState.SUCCEEDED, approved_by=CAROL)
    await run(ctx, "web", ActionKind.ROLLBACK, timedelta(hours=5), ActionState.FAILED, approved_by=BOB, outcome="image gone")
    await run(ctx, "db", ActionKind.RESTORE, timedelta(hours=1), ActionState.PENDING)
    await run(ctx, "files", ActionKind.BACKUP, timedelta(hours=7), ActionState.SUCCEEDED, by=SCHEDULER)
    await run(ctx, "db", ActionKind.BACKUP, timedelta(hours=8), ActionState.FAILED, by=SCHEDULER, outcome="disk full")
    await run(ctx, "api", ActionKind.RESTART, timedelta(days=3), ActionState.SUCCEEDED)  # the weekly digest's only
    await run(ctx, "api", ActionKind.RUNBOOK, timedelta(days=2), ActionState.SUCCEEDED)  # runbooks: a line of their own
    await run(ctx, "web", ActionKind.RUNBOOK, timedelta(days=2, hours=1), ActionState.FAILED)
    await backup(ctx, "db", timedelta(days=9), 5 << 20)  # stale: the limit is 7 days
    await backup(ctx, "files", timedelta(hours=7), 2048)
    for day in range(1, 4):
        await health(ctx, timedelta(days=day), Status.CRITICAL)
    await health(ctx, timedelta(days=2, hours=1), Status.WARNING)
    await health(ctx, timedelta(days=10), Status.CRITICAL)  # outside the week


def section(message_blocks: list[dict], title: str) -> str:
    [text] = [b["text"]["text"] for b in message_blocks if b["type"] == "section" and b["text"]["text"].startswith(title)]
    return text


async def test_the_daily_digest_matches_the_store_and_a_fresh_health_check(ctx: Context) -> None:
    digest = await digests.daily(ctx)
    assert [f.incident.title for f in digest.open_incidents] == ["Checkout is down", "Search is slow"]  # P1 before P3
    assert [f.incident.title for f in digest.opened] == ["Checkout is down", "Login errors"]
    assert [f.incident.title for f in digest.resolved] == ["Login errors"]
    assert sorted(f.run.kind.value + " " + f.run.service for f in digest.runs) == [
        "backup db", "backup files", "restart api", "rollback web"]
    assert [r.kind for r in digest.pending] == [ActionKind.RESTORE]
    blocks = daily_message(digest, ctx.catalog.incidents).blocks
    assert section(blocks, "*Health*").splitlines()[0] == "*Health* — ❌ 1 of 4 services failing"
    assert "❌ *web* — `front` HTTP 500" in section(blocks, "*Health*")
    opened = section(blocks, "*Open incidents*")
    assert "<#C0INCCHECKOUT> *P1 Critical* Checkout is down · open 3 h · commander <@U0BOB>" in opened
    assert "Search is slow · open 1 d 6 h · commander _none yet_ · *not acknowledged*" in opened
    window = section(blocks, "*Incidents in the last 24 h*")
    assert window.startswith("*Incidents in the last 24 h* — 2 opened, 1 resolved")
    assert "Login errors · resolved in 2 h (acknowledged in 10 min)" in window
    actions = section(blocks, "*Actions in the last 24 h*")
    assert actions.startswith("*Actions in the last 24 h* — 4 runs, 2 not successful")
    assert "restart" in actions and "approved by <@U0CAROL>" in actions and "— image gone" in actions
    assert "by the schedule" in actions
    assert "⏳" in section(blocks, "*Waiting for approval* — 1")
    backups = section(blocks, "*Backups*")
    assert backups.splitlines()[0] == "*Backups* — ⚠️ 1 stale"
    assert backups.splitlines()[1].startswith("⚠️ *db* — latest verified backup is 9 d old, older than 7 d")
    assert backups.splitlines()[1].endswith(" · 1 failed run")
    [files] = [b.latest for b in digest.backups if b.service == "files"]
    assert f"✅ *files* — latest verified backup `{files and files.id}`, 7 h old, 2.0 KiB" in backups
    # The snapshot taken for the digest is a recorded health run like any other.
    assert len(await ctx.store.health_runs_since(NOW - timedelta(minutes=1))) == 1


async def test_the_weekly_digest_shows_the_weeks_trends(ctx: Context) -> None:
    digest = await digests.weekly(ctx)
    assert digest.incidents_by_severity == {"P1": 1, "P2": 2, "P3": 1, "P4": 0}  # "Search is slow" is 30 h old: in the week
    assert digest.mean_acknowledge == (timedelta(minutes=4) + timedelta(minutes=10) + timedelta(minutes=20)) / 3
    assert digest.mean_resolve == (timedelta(hours=2) + timedelta(hours=1)) / 2
    assert (digest.actions.succeeded, digest.actions.finished) == (2, 3)
    assert (digest.runbook_runs.succeeded, digest.runbook_runs.finished) == (1, 2)
    assert (digest.backup_runs.succeeded, digest.backup_runs.finished) == (1, 2)
    tallies = {t.service: (t.runs, t.failing, t.warnings) for t in digest.checks}
    assert tallies == {"api": (4, 0, 0), "web": (4, 3, 1)}
    blocks = weekly_message(digest, ctx.catalog.incidents).blocks
    assert "P1 Critical: 1 · P2 High: 2" in section(blocks, "*Incidents*")
    assert "Restarts, rollbacks and restores: 2 of 3 succeeded (67 %)" in section(blocks, "*Actions*")
    assert "Backup runs: 1 of 2 succeeded (50 %)" in section(blocks, "*Actions*")
    assert "Runbook runs: 1 of 2 succeeded (50 %)" in section(blocks, "*Actions*")
    assert "❌ *web* — 3 failing and 1 warning of 4 results (75.0 % failing)" in section(blocks, "*Health checks*")
    assert "✅ no failures: api" in section(blocks, "*Health checks*")


async def ops(slack: FakeSlack, url: str, http: aiohttp.ClientSession, text: str) -> list[dict]:
    """`/ops <text>` as Slack sends it; everything the asker was shown (the ack, then response_url answers)."""
    response_url = slack.response_url()
    body, content_type = slash_command("/ops", text, user=ALICE, channel="C0OPS", response_url=response_url)
    async with http.post(f"{url}/slack/events", data=body, headers={"Content-Type": content_type, **sign(body)}) as response:
        assert response.status == 200
        acked = await response.json() if (await response.read()) else None
    return ([acked] if acked else []) + [c.args for c in slack.of("response_url") if response_url.endswith(c.path)]


async def test_ops_digest_previews_to_the_asker_only_and_ops_schedule_lists_next_runs(
        slack: FakeSlack, database_url: str, http: aiohttp.ClientSession, targets: Targets, tmp_path: Path) -> None:
    bot, runner = await start_bot(make_settings(slack, database_url), catalog(targets, tmp_path), slack, http,
                                  clock=ManualClock(NOW))
    try:
        await ops(slack, bot.url, http, "digest")
        await bot.settle()
        answers = [c.args for c in slack.of("response_url")]
        preview = answers[-1]
        assert preview["text"].startswith("Daily digest:") and preview.get("response_type") != "in_channel"
        assert preview["replace_original"] is True, "the digest takes the place of its ⏳ Gathering… note"
        assert "preview, posted only to you" in json.dumps(preview["blocks"])
        assert slack.of("chat.postMessage") == []  # a preview is never posted in the channel
        await ops(slack, bot.url, http, "digest weekly")
        await bot.settle()
        assert [c.args for c in slack.of("response_url")][-1]["text"].startswith("Weekly digest:")
        [refused] = await ops(slack, bot.url, http, "digest weekyl")
        assert "There is no digest `weekyl`. Did you mean `weekly`? Digests: `daily`, `evening`, `weekly`." in json.dumps(refused)
        [listing] = await ops(slack, bot.url, http, "schedule")
        shown = json.dumps(listing, ensure_ascii=False)
        assert "*Daily digest* · `0 9 * * *` (UTC) → <#C0OPS>" in shown
        assert "*Daily digest `evening`* · `0 18 * * *` (Europe/Berlin) → <#C0OPS>" in shown
        assert "*Backup of files* · `0 2 * * *` (UTC)" in shown
        # Next runs in each schedule's own zone: 18:00 in Berlin is 17:00 UTC in November.
        assert "(17:00:00 UTC)" in shown and "(09:00:00 UTC)" in shown and "(02:00:00 UTC)" in shown
    finally:
        await runner.cleanup()


async def test_a_digest_is_dated_in_its_schedules_zone_and_covers_the_window_ending_at_its_due_time(ctx: Context) -> None:
    due = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)  # 09:00 on Tuesday in Auckland
    digest = await digests.daily(ctx, until=due, zone="Pacific/Auckland")
    assert (digest.since, digest.until) == (due - timedelta(days=1), due)
    assert daily_message(digest, ctx.catalog.incidents).blocks[0]["text"]["text"] == "Daily digest · Tue 24 Nov 2026"


def test_a_bad_day_with_many_failing_services_still_fits_in_one_section() -> None:
    from bot.views.health import fit_lines

    lines = ["*Health*", *(f"❌ *service-{i}* — `http` " + "connection refused " * 6 for i in range(25)),
             "✅ 100 healthy: " + ", ".join(f"service-{i}" for i in range(100, 200))]
    text = fit_lines(lines, 3000)
    assert len(text) <= 3000 and text.endswith("more")
