"""A runbook restore that fails without touching the database must not be undone: its undo (restoring the safety
backup) would throw away every write made since the safety backup began. A plain restore says the same of itself.

Real parts: PostgreSQL, pg_dump/pg_restore, signed Slack requests. The application's write after the safety
backup is made deterministic by the catalog's `pg_dump:` — a wrapper that runs the real pg_dump and then, for the
safety backup only, inserts a row as the application would.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from bot.executors.base import Effect
from bot.runs.models import ActionState, StepState
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings, start_bot
from tests.test_approvals import ALICE, button, click, ops, text
from tests.test_runbooks import message_of

LATE_ROW = (3, "written after the safety backup")


def pg_dump_that_writes_after_the_safety_backup(directory: Path) -> Path:
    """pg_dump, then — when it wrote a safety backup — one INSERT through psql (the tool's PG* environment)."""
    script = directory / "pg_dump_then_write"
    script.write_text(f"""#!{sys.executable}
import subprocess, sys
code = subprocess.run(["pg_dump", *sys.argv[1:]]).returncode
if code == 0 and any("-safety-" in arg for arg in sys.argv[1:]):
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                    "INSERT INTO orders VALUES ({LATE_ROW[0]}, '{LATE_ROW[1]}')"], check=True)
sys.exit(code)
""")
    script.chmod(0o755)
    return script


@pytest.fixture
async def orders(pg_database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_database)
    await conn.execute("CREATE TABLE orders (id int primary key, note text)")
    await conn.execute("INSERT INTO orders VALUES (1, 'in the backup')")
    yield conn
    await conn.close()


@pytest.fixture
async def bot(slack: FakeSlack, http: aiohttp.ClientSession, pg_database: str, orders: asyncpg.Connection,
              tmp_path: Path) -> AsyncIterator[RunningBot]:
    catalog = f"""
approvals:
  environments:
    staging: {{default: {{approvals: 0}}}}
services:
  orders-db:
    environment: staging
    backup: {{type: postgres, dsn_env: ORDERS_DSN, directory: "{tmp_path / 'dumps'}",
              pg_dump: "{pg_dump_that_writes_after_the_safety_backup(tmp_path)}"}}
runbooks:
  restore-orders:
    description: Put the orders database back from a backup (safety backup first).
    services: [orders-db]
    parameters:
      backup: {{type: backup, service: orders-db}}
    steps:
      - {{kind: restore, service: orders-db, backup: "{{{{ params.backup }}}}"}}
"""
    running, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'o.db'}"), catalog, slack, http,
                                      environ={"ORDERS_DSN": pg_database})
    yield running
    await runner.cleanup()


async def backed_up(bot: RunningBot) -> int:
    plan = await ops(bot, "backup orders-db")
    await click(bot, "action.request", button(plan, "action.request")["value"], ALICE)
    [record] = await bot.ctx.store.backups("orders-db")
    return record.id or 0


async def run_restore(bot: RunningBot, backup_id: int) -> int:
    plan = await ops(bot, f"run restore-orders backup={backup_id}")
    run_id = int(button(plan, "action.request")["value"])
    await click(bot, "action.request", str(run_id), ALICE)
    return run_id


async def rows(conn: asyncpg.Connection) -> list[tuple[int, str]]:
    return [(r["id"], r["note"]) for r in await conn.fetch("SELECT id, note FROM orders ORDER BY id")]


async def test_a_restore_of_a_corrupt_archive_is_not_undone_and_writes_after_the_safety_backup_survive(
        bot: RunningBot, orders: asyncpg.Connection) -> None:
    backup_id = await backed_up(bot)
    [record] = await bot.ctx.store.backups("orders-db")
    record.path.write_bytes(record.path.read_bytes()[: record.size // 2])  # truncated on disk: fails verification
    await orders.execute("INSERT INTO orders VALUES (2, 'written before the run')")

    run_id = await run_restore(bot, backup_id)

    run = await bot.ctx.store.get_action(run_id)
    assert run is not None
    assert run.state is ActionState.FAILED, run.outcome
    assert await rows(orders) == [(1, "in the backup"), (2, "written before the run"), LATE_ROW], \
        "the safety backup was restored over a database the failed restore never touched"
    [step] = run.steps  # no undo row was added
    assert step.state is StepState.FAILED and step.effect is Effect.UNTOUCHED
    assert "is corrupted" in step.detail
    shown = text(message_of(bot, run_id))
    assert "Undo “Restore" not in shown and "↩" not in shown
    assert "is corrupted" in shown and "it changed nothing" in shown  # the step's effect, in words


async def test_a_restore_rolled_back_by_its_single_transaction_is_not_undone(
        bot: RunningBot, orders: asyncpg.Connection) -> None:
    backup_id = await backed_up(bot)
    # The archive verifies, but `pg_restore --clean` cannot drop `orders` while a view the archive does not know
    # depends on it: the single transaction fails part-way and is rolled back.
    await orders.execute("CREATE VIEW big_orders AS SELECT * FROM orders WHERE id > 1")
    await orders.execute("INSERT INTO orders VALUES (2, 'written before the run')")

    run_id = await run_restore(bot, backup_id)

    run = await bot.ctx.store.get_action(run_id)
    assert run is not None
    assert run.state is ActionState.FAILED, run.outcome
    assert "pg_restore failed" in run.steps[0].detail, run.steps[0].detail
    assert await rows(orders) == [(1, "in the backup"), (2, "written before the run"), LATE_ROW], \
        "the safety backup was restored over a database whose restore had rolled back"
    assert await orders.fetchval("SELECT count(*) FROM big_orders") == 2, "the view is still there"
    [step] = run.steps
    assert step.state is StepState.FAILED and step.effect is Effect.UNTOUCHED


async def test_a_plain_restore_of_a_corrupt_archive_says_it_changed_nothing(bot: RunningBot,
                                                                          orders: asyncpg.Connection) -> None:
    backup_id = await backed_up(bot)
    [record] = await bot.ctx.store.backups("orders-db")
    record.path.write_bytes(record.path.read_bytes()[: record.size // 2])
    await orders.execute("INSERT INTO orders VALUES (2, 'written before the restore')")

    plan = await ops(bot, f"restore orders-db {backup_id} testing")
    run_id = int(button(plan, "action.request")["value"])
    await click(bot, "action.request", str(run_id), ALICE)

    run = await bot.ctx.store.get_action(run_id)
    assert run is not None
    assert run.state is ActionState.FAILED, run.outcome
    [failed] = [s for s in run.steps if s.state is StepState.FAILED]
    # A restore is one step of the plan (its verify is part of it), not one row per thing the executor does.
    assert failed.title.startswith("Restore orders-db") and failed.effect is Effect.UNTOUCHED
    assert not any(s.state is StepState.UNDONE for s in run.steps), "nothing was restored over it"
    assert "it changed nothing" in text(bot.slack.of("chat.update")[-1].args)
    assert len(await rows(orders)) == 3, "the two rows and the one written after the safety backup"
