"""Fixtures that build the world: real stores on fresh databases, a fake Slack, real targets, a running bot.

PostgreSQL, MariaDB and Redis are the real servers on 127.0.0.1; every test gets its own database (dropped after)
and every run its own Redis key prefix. Tests that need Memcached start their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiohttp
import asyncpg
import pymysql
import pytest
from aiohttp import web

import handlers
from bot.app import build_bolt_app, build_context, build_web_app
from bot.catalog_loading import parse_catalog
from bot.checks import CheckDeps
from bot.clock import Clock
from bot.context import Context
from bot.settings import Settings
from bot.store import Store, create_store
from bot.tracing import NO_TRACER, Tracer
from playground.payloads import SIGNING_SECRET, sign
from playground.slack_api import FakeSlack
from tests.targets import Targets

# pytest-xdist hands whole files to its workers in collection order (`--dist loadfile`): the files that take longest
# (replicas killed and restarted, the four team stacks, real Alertmanagers) go first, so that none of them starts last
# and leaves the other workers idle at the end. Seconds each on the 2-core machine, roughly: 45, 45, 60, 50, 40, 35,
# 25, 20, 20.
SLOW_FIRST = ("test_replicas.py", "test_replicas_redis.py", "test_example_ai_orchestrator.py", "test_example_iacc.py",
              "test_example_gitte.py", "test_example_financial_stronghold.py", "test_alerts_e2e.py", "test_handover.py",
              "test_runbooks_e2e.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: index for index, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: every file keeps its own order


PG_ADMIN_DSN = os.environ.get("OPSBOT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("OPSBOT_TEST_REDIS", "redis://127.0.0.1:6379/0")
MYSQL_ADMIN = os.environ.get("OPSBOT_TEST_MYSQL", "mysql://root@127.0.0.1:3306/")


def pg_dsn(database: str) -> str:
    return PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{database}"


@pytest.fixture
async def pg_database() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test; its DSN. Dropped afterwards."""
    name = f"opsbot_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield pg_dsn(name)
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each backend in turn: a SQLite file in the test's directory, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'opsbot.db'}"
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    store = create_store(database_url)
    await store.open()
    await store.migrate()
    yield store
    await store.close()


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def targets() -> AsyncIterator[Targets]:
    servers = Targets()
    await servers.start()
    yield servers
    await servers.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningBot:
    url: str
    ctx: Context
    slack: FakeSlack
    http: aiohttp.ClientSession

    async def post(self, body: str, content_type: str, *, headers: dict[str, str] | None = None,
                   signed: bool = True) -> aiohttp.ClientResponse:
        all_headers = {"Content-Type": content_type, **(sign(body) if signed else {}), **(headers or {})}
        async with self.http.post(f"{self.url}/slack/events", data=body.encode(), headers=all_headers) as response:
            await response.read()
            return response

    async def settle(self) -> None:
        """Wait until the work the requests started has finished."""
        await self.ctx.tasks.idle()


def make_settings(slack: FakeSlack, database_url: str, **extra: object) -> Settings:
    return Settings(
        slack_bot_token="xoxb-test-token-1234567890",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.api_url,
        database_url=database_url,
        **extra,
    )


async def start_bot(settings: Settings, catalog_yaml: str, slack: FakeSlack, http: aiohttp.ClientSession,
                    environ: dict[str, str] | None = None, clock: Clock | None = None,
                    tracer: Tracer = NO_TRACER) -> tuple[RunningBot, web.AppRunner]:
    ctx = build_context(settings, parse_catalog(catalog_yaml), environ=environ or {}, clock=clock, tracer=tracer)
    app = build_web_app(ctx, build_bolt_app(ctx, [handlers.register]))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return RunningBot(f"http://127.0.0.1:{port}", ctx, slack, http), runner


@pytest.fixture
def mysql_database() -> Iterator[str]:
    """A fresh, empty MariaDB/MySQL database for one test; its mysql:// DSN. Dropped afterwards."""
    parts = urlsplit(MYSQL_ADMIN)
    name = f"opsbot_test_{uuid.uuid4().hex[:12]}"

    def run(sql: str) -> None:
        conn = pymysql.connect(
            host=parts.hostname or "127.0.0.1", port=parts.port or 3306, user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""), autocommit=True,
        )
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql)
        finally:
            conn.close()

    run(f"CREATE DATABASE `{name}`")
    yield f"{MYSQL_ADMIN.rstrip('/')}/{name}"
    run(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def memcached() -> Iterator[tuple[str, int]]:
    """A private Memcached on a free port (TCP only), stopped afterwards; its (host, port)."""
    binary = shutil.which("memcached")
    if binary is None:
        pytest.fail("memcached is not installed; scripts/test installs it")
    port = free_port()
    # memcached refuses to run as root unless told which user to be.
    argv = [binary, "-p", str(port), "-U", "0", "-l", "127.0.0.1", "-u", pwd.getpwuid(os.geteuid()).pw_name]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 5
        while not accepts_connections(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                _, err = proc.communicate()
                pytest.fail(f"memcached did not start on port {port}: {err.decode(errors='replace').strip()}")
            time.sleep(0.02)
        yield "127.0.0.1", port
    finally:
        # SIGTERM waits for memcached's once-a-second clock tick; a throwaway cache has nothing to lose.
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def accepts_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A port whose accept queue is full and never drained: the kernel drops new SYNs, so connecting hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    queued = []
    for _ in range(3):
        client = socket.socket()
        client.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            client.connect(("127.0.0.1", port))
        queued.append(client)
    yield port
    for client in queued:
        client.close()
    server.close()


@pytest.fixture
async def deps(http: aiohttp.ClientSession) -> CheckDeps:
    """What a check gets with no secrets in its environment (a test module needing some defines its own)."""
    return CheckDeps(http=http, environ={})


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never says a word (no greeting, no answer): a check's timeout."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()


@pytest.fixture(scope="session")
def snapshot_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server for the session's RDB snapshots (`redis-cli --rdb`); its URL.

    Each `--rdb` is a replica's full sync, which the shared server delays by `repl-diskless-sync-delay` (5 s)
    in case more replicas come; this one starts at once, and no test's snapshot waits out another's. Started
    synchronously, so no test's event loop owns it; tests keep their keys apart by unique names.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed")
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
            "--dir", str(tmp_path_factory.mktemp("snapshot-redis"))]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not accepts_connections(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                _, err = proc.communicate()
                pytest.fail(f"redis-server did not start on port {port}: {err.decode(errors='replace').strip()}")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.communicate(timeout=10)


@pytest.fixture
async def redis_with_maxmemory() -> AsyncIterator[str]:
    """A private redis-server with maxmemory set, so memory can be graded without touching the shared server."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
        "--maxmemory", "1gb", "--save", "", "--appendonly", "no",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


@pytest.fixture
async def pg_jobs(pg_database: str) -> str:
    """A `jobs` table with 12 labelled rows stuck in `running`, 30 `done`, and a function that writes when called
    (the `sql` check's and the `query` step's tests)."""
    conn = await asyncpg.connect(pg_database)
    try:
        await conn.execute("CREATE TABLE jobs (id serial PRIMARY KEY, state text NOT NULL, label text)")
        await conn.execute("INSERT INTO jobs (state, label) SELECT 'running', 'job ' || n FROM generate_series(1, 12) n")
        await conn.execute("INSERT INTO jobs (state) SELECT 'done' FROM generate_series(1, 30)")
        await conn.execute("CREATE FUNCTION finish_all() RETURNS bigint LANGUAGE sql AS "
                           "$$ WITH d AS (UPDATE jobs SET state = 'done' RETURNING 1) SELECT count(*) FROM d $$")
    finally:
        await conn.close()
    return pg_database


async def pg_states(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return {row["state"]: row["n"] for row in await conn.fetch("SELECT state, count(*) AS n FROM jobs GROUP BY state")}
    finally:
        await conn.close()
