"""Three `opsbot serve` processes against one PostgreSQL (with Redis leases, and with database leases only)
and one fake Slack, a digest due every two seconds: each occurrence is posted exactly once, also while a
replica is killed with SIGKILL mid-run and another is started in its place.

The replicas' lease, heartbeat, tick and chore times are shortened through their settings (LEASE_SECONDS…), so
the story a production replica tells in minutes plays out here in seconds."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
import redis.asyncio as aioredis

from bot.scheduling.cron import CronSchedule
from playground.payloads import SIGNING_SECRET
from playground.slack_api import FakeSlack
from tests.replicas import Replica
from tests.targets import Targets
from tests.test_cli import base_env

OPS = "C0OPS"
EVERY = "*/2 * * * * *"  # seconds first: every 2 s
LEASE = 3.0  # LEASE_SECONDS: a killed replica's occurrence is taken over this long after its last renewal
TIMES = {"LEASE_SECONDS": f"{LEASE:g}", "HEARTBEAT_SECONDS": "1", "TICK_SECONDS": "0.5", "CHORE_SECONDS": "2"}
KILL_AFTER, REPLACE_AFTER = 2.5, 6.0  # seconds into the observed window
RUN_FOR = 12.0  # seconds of schedule observed; every occurrence in it is checked
SETTLE = LEASE + 3.0  # an occurrence due this close to the end may still be finishing (or waiting for a lease)


def catalog(targets: Targets) -> str:
    # The health check takes 1 s, so a digest is under way half the time: a kill lands mid-run.
    return f"""
schedules:
  channel: {OPS}
  digests:
    daily: {{cron: "{EVERY}"}}
    weekly: off
services:
  api:
    environment: production
    checks: [{{type: http, url: "{targets.url('/slow?ms=1000')}", timeout: 5}}]
"""


async def running_owner_pid(dsn: str) -> int | None:
    connection = await asyncpg.connect(dsn)
    try:
        owner = await connection.fetchval("SELECT owner FROM schedule_occurrences WHERE state = 'running' ORDER BY due_at DESC "
                                          "LIMIT 1")
    finally:
        await connection.close()
    return int(owner.split(":")[1]) if owner else None


async def test_three_replicas_post_each_occurrence_once_through_a_kill_and_a_restart(
        slack: FakeSlack, targets: Targets, pg_database: str, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    await three_replicas("database", slack, targets, pg_database, http, tmp_path)


async def three_replicas(leases: str, slack: FakeSlack, targets: Targets, pg_database: str,
                         http: aiohttp.ClientSession, tmp_path: Path) -> None:
    """The scenario, with Redis leases or the database's (tests/test_replicas_redis.py runs the Redis one, in a file
    of its own so the two run on different workers: each takes about 40 s)."""
    (tmp_path / "opsbot.yml").write_text(catalog(targets))
    prefix = f"opsbot-replicas-{uuid.uuid4().hex[:8]}:"
    env = base_env(SLACK_BOT_TOKEN="xoxb-test-token-1234567890", SLACK_SIGNING_SECRET=SIGNING_SECRET,
                   SLACK_API_URL=slack.api_url, DATABASE_URL=pg_database, OPSBOT_CONFIG=str(tmp_path / "opsbot.yml"),
                   HOST="127.0.0.1", **TIMES)
    if leases == "redis":
        env.update(REDIS_URL="redis://127.0.0.1:6379/0", REDIS_PREFIX=prefix)
    # One replica first creates the schema; the others start against it, as a rolling deploy would.
    replicas = [Replica(env, tmp_path, "r0")]
    try:
        await replicas[0].healthy(http)
        replicas += [Replica(env, tmp_path, f"r{i}") for i in (1, 2)]
        for replica in replicas[1:]:
            await replica.healthy(http)
        started = datetime.now(UTC)
        killed = None
        while (elapsed := (datetime.now(UTC) - started).total_seconds()) < RUN_FOR:
            if killed is None and elapsed > KILL_AFTER:
                pid = await running_owner_pid(pg_database)
                victim = next((r for r in replicas if pid is not None and r.proc.pid == pid), None)
                if victim is not None:
                    victim.proc.send_signal(signal.SIGKILL)  # mid-run: it holds a running occurrence
                    victim.proc.wait()
                    killed = victim
            if killed is not None and len(replicas) == 3 and elapsed > REPLACE_AFTER:
                replicas.append(Replica(env, tmp_path, "r3"))  # a new replica takes the dead one's place
            await asyncio.sleep(0.1)
        assert killed is not None, "no replica was ever seen running an occurrence"
        await asyncio.sleep(SETTLE)  # let the last occurrences (and the dead replica's, once its lease lapses) finish
        ended = datetime.now(UTC)
    finally:
        for replica in replicas:  # all at once: each waits for its running occurrence to finish
            replica.terminate()
        for replica in replicas:
            replica.stop()
        if leases == "redis":
            client = aioredis.from_url("redis://127.0.0.1:6379/0")
            keys = [key async for key in client.scan_iter(f"{prefix}*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()

    posted = Counter(m["metadata"]["event_payload"]["key"] for (channel, _), m in slack.messages.items()
                     if channel == OPS and "metadata" in m)
    duplicates = {key: n for key, n in posted.items() if n > 1}
    assert not duplicates, f"posted more than once: {duplicates}"
    # Every occurrence from the first one after all three were up to the end of the observed window: no gap.
    due = CronSchedule(cron=EVERY).between(started, ended - timedelta(seconds=SETTLE))
    expected = {f"digest:daily@{at:%Y-%m-%dT%H:%M:%SZ}:{OPS}" for at in due}
    assert len(expected) >= 5
    missing = sorted(expected - set(posted))
    assert not missing, f"never posted: {missing}"
    connection = await asyncpg.connect(pg_database)
    try:
        rows = await connection.fetch("SELECT due_at, state, attempt, detail FROM schedule_occurrences WHERE due_at <= $1 "
                                      "ORDER BY due_at", ended - timedelta(seconds=SETTLE))
    finally:
        await connection.close()
    assert {row["state"] for row in rows} == {"done"}, [dict(row) for row in rows if row["state"] != "done"]
    # The killed replica's occurrence was taken over: run again by another replica, still posted once.
    assert any(row["attempt"] >= 2 for row in rows), [dict(row) for row in rows]
    survivors_logs = "".join(r.log() for r in replicas if r is not killed)
    assert "Traceback" not in survivors_logs, survivors_logs[-3000:]
