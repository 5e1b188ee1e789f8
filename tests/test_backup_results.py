"""Backups of the new kinds (MySQL, Redis) through the bot, and their results posted to the service's own channel:
asked in Slack or scheduled, ✅ with file, size and time or ❌ with the reason; never twice in the same channel.

Real MariaDB and Redis; Slack is the fake Web API server, and what the bot posted is read back from it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pymysql
import pytest

from bot import digests
from bot.clock import ManualClock
from bot.executors.redis_backup import RestoreUnsupported
from bot.runs import requests, targets
from bot.runs.models import (
    SCHEDULER,
    ActionKind,
    ActionRun,
    ActionState,
    BackupLabel,
    BackupRecord,
)
from bot.runs.outcomes import Ending, RunOutcome
from bot.views.backups import backup_result_message
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, free_port, make_settings, start_bot
from tests.test_approvals import ALICE, CHANNEL, button, click, ops, text

SHOP = "C0SHOP"  # the team channel of shop-db and cache; commands in these tests come from CHANNEL
T0 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


def catalog(tmp_path: Path) -> str:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "settings.yml").write_text("a: 1\n")
    return f"""
approvals:
  environments:
    staging: {{default: {{approvals: 0}}}}
services:
  shop-db:
    environment: staging
    channel: {SHOP}
    backup: {{type: mysql, dsn_env: SHOP_DB_URL, directory: "{tmp_path / 'mysql'}", retention_days: 1, keep_min: 1}}
  cache:
    environment: staging
    channel: {SHOP}
    backup: {{type: redis, url_env: CACHE_URL, directory: "{tmp_path / 'redis'}"}}
  files:
    environment: staging
    channel: {CHANNEL}
    backup: {{type: directory, paths: ["{tmp_path / 'data'}"], directory: "{tmp_path / 'files'}"}}
"""


@pytest.fixture
async def bot(slack: FakeSlack, http: aiohttp.ClientSession, mysql_database: str, tmp_path: Path,
              snapshot_redis: str) -> AsyncIterator[RunningBot]:
    parts = urlsplit(mysql_database)
    conn = pymysql.connect(host=parts.hostname, port=parts.port or 3306, user=parts.username or "root",
                           database=parts.path.lstrip("/"), autocommit=True)
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE orders (id INT PRIMARY KEY)")
        cursor.execute("INSERT INTO orders VALUES (1), (2)")
    conn.close()
    environ = {"SHOP_DB_URL": mysql_database, "CACHE_URL": snapshot_redis}  # a Redis that snapshots at once
    running, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'o.db'}"), catalog(tmp_path), slack, http,
                                      environ=environ, clock=ManualClock(T0))
    yield running
    await runner.cleanup()


def posts(slack: FakeSlack, channel: str) -> list[str]:
    return [str(c.args.get("text", "")) for c in slack.of("chat.postMessage") if c.args.get("channel") == channel]


async def backup_through_slack(bot: RunningBot, service: str) -> int:
    plan = await ops(bot, f"backup {service}")
    run_id = button(plan, "action.request")["value"]
    await click(bot, "action.request", run_id, ALICE)
    return int(run_id)


async def test_an_asked_mysql_backup_is_announced_in_the_service_channel(bot: RunningBot, slack: FakeSlack) -> None:
    run_id = await backup_through_slack(bot, "shop-db")
    run = await bot.ctx.store.get_action(run_id)
    assert run is not None and run.state is ActionState.SUCCEEDED, run.outcome
    [record] = await bot.ctx.store.backups("shop-db")
    assert record.kind == "mysql" and record.path.name.endswith(".sql.gz")
    [line] = posts(slack, SHOP)
    assert line.startswith(f"✅ Backup of `shop-db`: `{record.path.name}`, ") and line.endswith(f"verified (action #{run_id})")
    assert " in 0.0 s" in line  # the manual clock did not move while it ran


async def test_a_mysql_restore_through_slack_takes_a_safety_backup_first_and_is_not_announced(
        bot: RunningBot, slack: FakeSlack, mysql_database: str) -> None:
    await backup_through_slack(bot, "shop-db")
    [record] = await bot.ctx.store.backups("shop-db")
    parts = urlsplit(mysql_database)
    conn = pymysql.connect(host=parts.hostname, port=parts.port or 3306, user=parts.username or "root",
                           database=parts.path.lstrip("/"), autocommit=True)
    try:
        with conn.cursor() as cursor:
            cursor.execute("DELETE FROM orders")
        plan = await ops(bot, f"restore shop-db {record.id}")
        assert "Safety backup: Dump database" in text(plan) and "Restore into" in text(plan)
        run_id = button(plan, "action.request")["value"]
        await click(bot, "action.request", run_id, ALICE)
        run = await bot.ctx.store.get_action(int(run_id))
        assert run is not None and run.state is ActionState.SUCCEEDED, run.outcome
        with conn.cursor() as cursor:
            cursor.execute("SELECT id FROM orders ORDER BY id")
            assert cursor.fetchall() == ((1,), (2,))
    finally:
        conn.close()
    assert sorted(b.label.value for b in await bot.ctx.store.backups("shop-db")) == ["manual", "safety"]
    assert len(posts(slack, SHOP)) == 1  # the backup's line; a restore (and its safety backup) is not a backup run


def test_no_executor_is_handed_out_to_restore_redis(bot: RunningBot) -> None:
    # Runbook restore steps ask for the executor before taking their safety backup: this refusal comes first.
    with pytest.raises(RestoreUnsupported, match="stop Redis"):
        targets.backups_for(bot.ctx, "cache", ActionKind.RESTORE)


async def test_a_failed_backup_is_announced_with_its_reason_and_no_secret(bot: RunningBot, slack: FakeSlack) -> None:
    bot.ctx.environ["SHOP_DB_URL"] = f"mysql://shop:t0ps3cret@127.0.0.1:{free_port()}/shop"
    run_id = await backup_through_slack(bot, "shop-db")
    run = await bot.ctx.store.get_action(run_id)
    assert run is not None and run.state is ActionState.FAILED
    [line] = posts(slack, SHOP)
    assert line.startswith("❌ Backup of `shop-db` failed: mysql failed") and line.endswith(f"(action #{run_id})")
    assert "t0ps3cret" not in line


async def test_a_backup_asked_in_the_service_channel_is_not_announced_twice(bot: RunningBot, slack: FakeSlack) -> None:
    run_id = await backup_through_slack(bot, "files")
    run = await bot.ctx.store.get_action(run_id)
    assert run is not None and run.state is ActionState.SUCCEEDED and run.channel_id == CHANNEL
    assert not [line for line in posts(slack, CHANNEL) if "Backup of" in line]
    assert posts(slack, SHOP) == []


async def test_a_scheduled_backup_is_announced_and_applies_retention(bot: RunningBot, slack: FakeSlack) -> None:
    first = await requests.run_scheduled_backup(bot.ctx, "shop-db", "backup:shop-db@2026-11-24T01:00:00Z")
    assert first.state is ActionState.SUCCEEDED, first.outcome
    clock = bot.ctx.clock
    assert isinstance(clock, ManualClock)
    clock.advance(timedelta(days=2).total_seconds())
    second = await requests.run_scheduled_backup(bot.ctx, "shop-db", "backup:shop-db@2026-11-26T01:00:00Z")
    # The retention step's own result, in the run's summary of its steps.
    assert second.state is ActionState.SUCCEEDED and "1 removed" in second.outcome
    [kept] = await bot.ctx.store.backups("shop-db")
    [gone] = [b for b in await bot.ctx.store.backups("shop-db", include_deleted=True) if b.deleted_at is not None]
    assert kept.label is BackupLabel.SCHEDULED and kept.path.exists() and not gone.path.exists()
    lines = posts(slack, SHOP)
    assert len(lines) == 2 and all(line.startswith("✅ Backup of `shop-db`") and line.endswith("(scheduled)") for line in lines)
    assert kept.path.name in lines[1]


async def test_a_redis_backup_is_announced_and_its_restore_refused_before_anything_is_asked(bot: RunningBot,
                                                                                            slack: FakeSlack) -> None:
    run_id = await backup_through_slack(bot, "cache")
    [record] = await bot.ctx.store.backups("cache")
    assert record.kind == "redis" and record.path.read_bytes()[:5] == b"REDIS"
    [line] = posts(slack, SHOP)
    assert line.startswith(f"✅ Backup of `cache`: `{record.path.name}`") and line.endswith(f"(action #{run_id})")

    listing = await ops(bot, "backups cache")
    assert f"`{record.id}`" in text(listing) and "backup.restore" not in text(listing) and "restored by hand" in text(listing)

    answer = await ops(bot, f"restore cache {record.id}")
    assert "stop Redis" in text(answer) and "dump.rdb" in text(answer) and str(record.path.parent) in text(answer)
    assert "action.request" not in text(answer)
    assert [r.id for r in await bot.ctx.store.actions(service="cache")] == [run_id]  # no restore run was planned
    assert len(await bot.ctx.store.backups("cache")) == 1  # and no safety backup was taken


async def test_the_new_kinds_are_in_the_digest_and_their_secrets_known_to_check_config(bot: RunningBot) -> None:
    await requests.run_scheduled_backup(bot.ctx, "shop-db", "backup:shop-db@2026-11-24T01:00:00Z")
    weekly = await digests.weekly(bot.ctx)
    facts = {f.service: f for f in weekly.backups}
    assert facts["shop-db"].latest is not None and facts["cache"].latest is None
    assert (weekly.backup_runs.succeeded, weekly.backup_runs.finished) == (1, 1)
    envs = bot.ctx.catalog.secret_envs()
    assert ("services.shop-db.backup", "SHOP_DB_URL") in envs and ("services.cache.backup", "CACHE_URL") in envs


async def test_a_backup_refused_because_the_service_is_busy_is_announced_as_not_started(
        bot: RunningBot, slack: FakeSlack) -> None:
    lease = await bot.ctx.locks.acquire("service:shop-db", 60)  # another replica's action holds the service
    assert lease is not None
    try:
        run = await requests.run_scheduled_backup(bot.ctx, "shop-db", "backup:shop-db@2026-11-24T01:00:00Z")
    finally:
        await lease.release()
    assert run.state is ActionState.FAILED and run.started_at is None
    [line] = posts(slack, SHOP)
    assert line == "⏸ Backup of `shop-db` not started: another action is running on `shop-db` (scheduled)"
    assert await bot.ctx.store.backups("shop-db") == []


async def test_the_announced_file_is_the_runs_own_however_many_newer_records_there_are(
        bot: RunningBot, slack: FakeSlack, tmp_path: Path) -> None:
    for n in range(25):  # newer than the backup below, as a clock running ahead elsewhere would leave them
        await bot.ctx.store.add_backup(BackupRecord(
            service="shop-db", kind="mysql", path=tmp_path / "mysql" / f"other-{n}.sql.gz", size=1, sha256="0" * 64,
            created_at=T0 + timedelta(days=1, minutes=n), verified_at=T0 + timedelta(days=1, minutes=n)))
    run_id = await backup_through_slack(bot, "shop-db")
    [record] = [b for b in await bot.ctx.store.backups("shop-db", limit=100) if b.run_id == run_id]
    [line] = posts(slack, SHOP)
    assert line.startswith(f"✅ Backup of `shop-db`: `{record.path.name}`, ") and line.endswith(f"verified (action #{run_id})")


def finished(state: ActionState, outcome: str, *, started: bool = True, data: RunOutcome | None = None) -> ActionRun:
    return ActionRun(service="shop-db", kind=ActionKind.BACKUP, environment="staging", target="database shop",
                     requested_by=SCHEDULER, created_at=T0, expires_at=T0, state=state, outcome=outcome,
                     started_at=T0 if started else None, finished_at=T0, id=7, outcome_data=data)


def test_a_succeeded_backup_without_its_record_at_hand_still_reads_as_a_success() -> None:
    line = backup_result_message(finished(ActionState.SUCCEEDED, "Backup `12` written: 1.2 MiB, verified"), None).text
    assert line == "✅ Backup of `shop-db`: Backup `12` written: 1.2 MiB, verified (scheduled)"


def test_a_backup_that_failed_part_way_reads_as_failed_and_one_never_started_does_not() -> None:
    failed = backup_result_message(finished(ActionState.FAILED, "mysqldump failed (exit 2): Access denied"), None).text
    assert failed == "❌ Backup of `shop-db` failed: mysqldump failed (exit 2): Access denied (scheduled)"
    unreachable = RunOutcome(ending=Ending.UNREACHABLE, services=("shop-db",), why="opsbot cannot reach its lock store (x).")
    refused = finished(ActionState.FAILED, "Not run: opsbot cannot reach its lock store (x).", started=False,
                       data=unreachable)
    assert backup_result_message(refused, None).text == (
        "⏸ Backup of `shop-db` not started: opsbot cannot reach its lock store (x). (scheduled)")
