"""A store outage is one plain answer and two log lines: every query's connection loss becomes `StoreUnavailable`, the
reply says the database cannot be reached and nothing was done, and the log says so when it starts and when it ends.

Against the real PostgreSQL (its database dropped under the running bot, then made again) and a real SQLite file
(kept from growing, so writes fail with SQLITE_FULL).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from bot.audit import AuditEntry, Outcome
from bot.errors import StoreUnavailable
from bot.store import create_store
from bot.store.outage import postgres_unreachable, sqlite_unreachable
from bot.store.sqlite import SqliteStore
from bot.tasks import BackgroundTasks
from playground.payloads import sign, slash_command
from playground.slack_api import FakeSlack
from tests.conftest import PG_ADMIN_DSN, RunningBot, make_settings, pg_dsn, start_bot

USER, CHANNEL = "U0ALICE", "C0OPS"
CATALOG = """
services:
  web:
    environment: production
    checks: [{type: http, url: "http://127.0.0.1:9/"}]
"""
DOWN = StoreUnavailable.user_text


def outage_lines(records: list[logging.LogRecord]) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in records if r.name == "bot.store"]


def faults(records: list[logging.LogRecord]) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in records if r.exc_info or r.levelno >= logging.ERROR]


# --- which errors are an outage: by type and code, never by wording --------------------------------------------


def test_sqlite_cannot_open_is_an_outage_and_a_bad_statement_is_not(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError) as cannot_open:
        sqlite3.connect(f"file:{tmp_path / 'missing' / 'x.db'}?mode=rw", uri=True)
    assert sqlite_unreachable(cannot_open.value)
    with pytest.raises(sqlite3.OperationalError) as syntax:
        sqlite3.connect(":memory:").execute("SELEC 1")
    assert not sqlite_unreachable(syntax.value)


async def test_postgres_connection_errors_are_an_outage_and_a_bad_statement_is_not(pg_database: str) -> None:
    conn = await asyncpg.connect(pg_database)
    try:
        with pytest.raises(asyncpg.PostgresError) as syntax:
            await conn.execute("SELEC 1")
        assert not postgres_unreachable(syntax.value)
    finally:
        await conn.close()
    with pytest.raises(asyncpg.PostgresError) as missing:
        await asyncpg.connect(pg_dsn("opsbot_test_no_such_database"))
    assert postgres_unreachable(missing.value)  # 3D000
    with pytest.raises(ConnectionRefusedError) as refused:
        await asyncpg.connect("postgresql://postgres@127.0.0.1:1/postgres")
    assert postgres_unreachable(refused.value)


# --- SQLite: a full database file ----------------------------------------------------------------------------


def _entry(args: str) -> AuditEntry:
    from datetime import UTC, datetime

    return AuditEntry(at=datetime.now(UTC), kind="command", name="/ops", outcome=Outcome.OK, actor_id=USER,
                      channel_id=CHANNEL, args=args, detail=None, duration_ms=1.0)


async def test_a_full_sqlite_file_is_store_unavailable_logged_once_until_it_answers_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    store = SqliteStore(tmp_path / "opsbot.db")
    await store.open()
    await store.migrate()
    try:
        pages = (await store._rows("PRAGMA page_count"))[0]["page_count"]
        await store._rows(f"PRAGMA max_page_count = {pages}")  # the file may not grow: writes fail with SQLITE_FULL
        for _ in range(3):
            with pytest.raises(StoreUnavailable):
                await store.record_audit(_entry("x" * 20000))
        assert [level for level, _ in outage_lines(caplog.records)] == ["WARNING"]
        await store._rows("PRAGMA max_page_count = 1073741823")
        await store.record_audit(_entry("x" * 20000))
        await store.record_audit(_entry("y"))
        assert [level for level, _ in outage_lines(caplog.records)] == ["WARNING", "INFO"]
        assert faults(caplog.records) == []
    finally:
        await store.close()


# --- PostgreSQL: its database dropped under the running bot, then back ----------------------------------------


@pytest.fixture
async def droppable() -> AsyncIterator[str]:
    """A fresh database's name the test may drop and make again; dropped afterwards."""
    name = f"opsbot_test_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}"')
    yield name
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _admin(sql: str) -> None:
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(sql)
    finally:
        await admin.close()


@pytest.fixture
async def bot(slack: FakeSlack, http: aiohttp.ClientSession, droppable: str) -> AsyncIterator[RunningBot]:
    running, runner = await start_bot(make_settings(slack, pg_dsn(droppable)), CATALOG, slack, http)
    yield running
    await runner.cleanup()


async def ops(bot: RunningBot, text: str) -> str:
    """`/ops …`; everything the asker was told (the ack and any answers by response_url)."""
    url = bot.slack.response_url()
    body, content_type = slash_command("/ops", text, user=USER, channel=CHANNEL, response_url=url)
    async with bot.http.post(f"{bot.url}/slack/events", data=body,
                             headers={"Content-Type": content_type, **sign(body)}) as response:
        assert response.status == 200
        told = json.dumps(await response.json(), ensure_ascii=False) if response.content_type == "application/json" else ""
    await bot.settle()
    return told + "".join(json.dumps(c.args, ensure_ascii=False) for c in bot.slack.of("response_url") if url.endswith(c.path))


async def test_a_postgres_outage_is_answered_plainly_and_logged_once_per_outage(
    bot: RunningBot, droppable: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    before = await ops(bot, "backups web")
    assert DOWN not in before and "web" in before

    await _admin(f'DROP DATABASE "{droppable}" WITH (FORCE)')  # terminates the pool's connections, too
    for _ in range(3):
        told = await ops(bot, "backups web")
        assert DOWN in told, told
        assert "Something went wrong" not in told and "Reference" not in told
    [(level, line)] = outage_lines(caplog.records)  # one line for the whole outage, not one per request
    assert level == "WARNING" and "cannot be reached" in line

    await _admin(f'CREATE DATABASE "{droppable}"')
    again = create_store(pg_dsn(droppable))
    await again.open()
    await again.migrate()
    await again.close()
    told = await ops(bot, "backups web")
    assert DOWN not in told
    assert [level for level, _ in outage_lines(caplog.records)] == ["WARNING", "INFO"]
    assert faults(caplog.records) == []
    audited = await bot.ctx.store.audit_entries()
    assert [e.outcome for e in audited if e.args == "backups web"] == [Outcome.OK]  # after it came back


async def test_a_background_task_the_store_outage_stopped_is_one_plain_line_and_any_other_failure_a_traceback(
        caplog: pytest.LogCaptureFixture) -> None:
    async def store_gone() -> None:
        raise StoreUnavailable("the store went away")

    async def broken() -> None:
        raise RuntimeError("a bug")

    tasks = BackgroundTasks()
    with caplog.at_level(logging.INFO, logger="bot.tasks"):
        for work, name in ((store_gone(), "run 1"), (broken(), "run 2")):
            with contextlib.suppress(Exception):
                await tasks.spawn(work, name=name)
        await asyncio.sleep(0)
    [gone] = [r for r in caplog.records if "run 1" in r.getMessage()]
    [bug] = [r for r in caplog.records if "run 2" in r.getMessage()]
    assert gone.levelno == logging.INFO and gone.exc_info is None and "could not be reached" in gone.getMessage()
    assert bug.levelno == logging.ERROR and bug.exc_info is not None
