"""Exactly-once and nothing-lost under faults: three `opsbot serve` replicas on a private PostgreSQL and Redis behind
a fake Slack that duplicates deliveries, retries events, times out acks and rate-limits the Web API; a seeded
workload of approvals, runbooks, backups, incident declarations and mentions; a nemesis killing and pausing replicas
and crashing PostgreSQL and Redis; then a checker over what the targets recorded, the store and the logs.

Run on its own (the nemesis restarts servers): `python3 -m pytest -n 0 -s tests/faults`. OPSBOT_FAULTS_OPS sets the
number of requests (CI: 240), OPSBOT_FAULTS_SEED replays a run, OPSBOT_FAULTS_EVERY the seconds between faults."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from playground.payloads import SIGNING_SECRET
from playground.slack_api import INCIDENTS, OPS, FakeSlack, Weather
from tests.faults.checker import RESTING, check, summary
from tests.faults.cluster import PrivatePostgres, PrivateRedis, Replica
from tests.faults.nemesis import Nemesis, restore_all
from tests.faults.workload import BOB, DAVE, LEADS, EffectTarget, History, Workload, catalog
from tests.test_cli import base_env

SEED = int(os.environ.get("OPSBOT_FAULTS_SEED") or random.SystemRandom().randrange(2**32))
REQUESTS = int(os.environ.get("OPSBOT_FAULTS_OPS", "240"))
FAULT_EVERY = float(os.environ.get("OPSBOT_FAULTS_EVERY", "4"))
REPLICAS = int(os.environ.get("OPSBOT_FAULTS_REPLICAS", "3"))
CLIENTS = 4  # people acting at once
LEASE = 3.0
TIMES = {"LEASE_SECONDS": f"{LEASE:g}", "HEARTBEAT_SECONDS": "1", "TICK_SECONDS": "0.5", "CHORE_SECONDS": "1"}
SETTLE = 45.0  # after the faults: every run and declaration comes to rest within this (a dead peer's run in ~5 s)


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.init()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.destroy()


@pytest.fixture
async def effects() -> AsyncIterator[EffectTarget]:
    target = EffectTarget()
    await target.start()
    yield target
    await target.stop()


async def _at_rest(dsn: str) -> bool:
    connection = await asyncpg.connect(dsn, timeout=5)
    try:
        restless = await connection.fetchval("SELECT count(*) FROM runs WHERE NOT (state = ANY($1::text[]))",
                                             sorted(RESTING))
        half_made = await connection.fetchval("SELECT count(*) FROM incidents WHERE declare_stage <> 'declared'")
    finally:
        await connection.close()
    return bool(restless == 0 and half_made == 0)


async def test_every_effect_happens_at_most_once_and_nothing_acknowledged_is_lost_under_faults(
        postgres: PrivatePostgres, redis_server: PrivateRedis, slack: FakeSlack, effects: EffectTarget,
        tmp_path: Path) -> None:
    print(f"\nfault suite: seed {SEED}, {REQUESTS} requests, a fault every ~{FAULT_EVERY:g} s", flush=True)
    rng = random.Random(SEED)
    admin = await asyncpg.connect(postgres.dsn)
    await admin.execute('CREATE DATABASE "opsbot"')
    await admin.close()
    dsn = postgres.dsn.rsplit("/", 1)[0] + "/opsbot"
    data, backups = tmp_path / "data", tmp_path / "backups"
    data.mkdir()
    (data / "config.yml").write_text("files: 1\n")
    (tmp_path / "opsbot.yml").write_text(catalog(effects, str(data), str(backups), INCIDENTS))
    slack.groups = {LEADS: [BOB, DAVE]}
    env = base_env(SLACK_BOT_TOKEN="xoxb-test-token-1234567890", SLACK_SIGNING_SECRET=SIGNING_SECRET,
                   SLACK_API_URL=slack.api_url, DATABASE_URL=dsn, OPSBOT_CONFIG=str(tmp_path / "opsbot.yml"),
                   HOST="127.0.0.1", REDIS_URL=redis_server.url, REDIS_PREFIX="opsbot-faults:", **TIMES)
    replicas = [Replica(f"r{i}", env, tmp_path) for i in range(REPLICAS)]
    history = History()
    try:
        replicas[0].start()  # the first one creates the schema
        await asyncio.to_thread(replicas[0].wait_healthy)
        for replica in replicas[1:]:
            replica.start()
        for replica in replicas[1:]:
            await asyncio.to_thread(replica.wait_healthy)

        slack.weather = Weather(duplicate=0.1, ack_timeout=3.0, retries=3, rate_limit=0.05, retry_after=1,
                                rng=random.Random(rng.random()))
        workload = Workload(slack, replicas, random.Random(rng.random()), history)
        nemesis = Nemesis(replicas, postgres, redis_server, random.Random(rng.random()), history, LEASE)
        stop = asyncio.Event()

        async def client() -> None:
            while history.requests < REQUESTS:
                await workload.op()

        started = time.monotonic()
        faults = asyncio.create_task(nemesis.run(stop, FAULT_EVERY))
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        stop.set()
        await faults
        worked = time.monotonic() - started

        slack.weather = Weather()  # calm: the chores' own Slack calls go through
        await asyncio.to_thread(restore_all, replicas)
        deadline = time.monotonic() + SETTLE
        while time.monotonic() < deadline:  # polling the store: there is no event to wait on
            if await _at_rest(dsn):
                break
            await asyncio.sleep(1)
        await asyncio.sleep(3 * float(TIMES["CHORE_SECONDS"]))  # a last round of chores after the last run finished
        verdict = await check(dsn, history, effects, slack, backups, [r.log_path for r in replicas], {OPS, INCIDENTS})
    finally:
        for replica in replicas:
            await asyncio.to_thread(replica.stop)
    print(summary(history, effects, SEED, verdict.rested) + f"\n  workload and faults took {worked:.0f} s", flush=True)
    problems = verdict.problems
    assert not problems, f"seed {SEED} (OPSBOT_FAULTS_SEED={SEED} replays it): {len(problems)} violation(s):\n" + "\n".join(
        problems[:50])
    # Not vacuous: the faults came, and work got done through them.
    assert sum(history.faults.values()) >= 4 or REQUESTS < 200, f"seed {SEED}: too few faults: {history.faults}"
    assert verdict.rested["runs succeeded"] and verdict.rested["incidents declared"] and verdict.rested["backup archives"], (
        f"seed {SEED}: too little got done to judge: {verdict.rested}")
    assert verdict.rested["approvals given"] and effects.effects, f"seed {SEED}: no approved effect: {verdict.rested}"
