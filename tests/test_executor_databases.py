"""run_statement, long_queries and terminate_queries against the real PostgreSQL and MariaDB on 127.0.0.1.

Fresh databases come from `pg_database` and `mysql_database`; PostgreSQL DSNs carry a fake password (trust auth
ignores it) to prove it never reaches a message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import asyncpg
import pymysql
import pytest

from bot.executors.base import Effect, ExecutorError, TargetNotFound
from bot.executors.databases import (
    REJECTED,
    LongQuery,
    MysqlConnection,
    long_queries,
    parse_mysql_dsn,
    run_statement,
    terminate_queries,
)
from tests.conftest import PG_ADMIN_DSN, free_port

PASSWORD = "hunter2-s3cret"
# 0.6 s: the tests' "long" queries have run a second, their "short" ones a tenth of that.
THRESHOLD_MINUTES = 0.01


def with_password(dsn: str, port: int | None = None) -> str:
    parts = urlsplit(dsn)
    return f"{parts.scheme}://{parts.username}:{PASSWORD}@{parts.hostname}:{port or parts.port}{parts.path}"


def assert_no_secret(exc: ExecutorError) -> None:
    assert PASSWORD not in str(exc) and PASSWORD not in exc.state


@pytest.fixture
async def items(pg_database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_database)
    await conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
    await conn.execute("INSERT INTO items SELECT n, 'item ' || (n % 50) FROM generate_series(1, 200) AS n")
    yield conn
    await conn.close()


# --- run_statement on PostgreSQL -------------------------------------------------------------------------


async def test_vacuum_analyze_runs_and_updates_the_statistics(pg_database: str, items: asyncpg.Connection) -> None:
    await items.execute("DELETE FROM items WHERE id > 150")
    assert await items.fetchval("SELECT reltuples FROM pg_class WHERE relname = 'items'") == -1

    summary = await run_statement("postgres", with_password(pg_database), "VACUUM ANALYZE items", timeout=10)

    assert summary.startswith("VACUUM in ") and summary.endswith(" s")
    assert await items.fetchval("SELECT reltuples FROM pg_class WHERE relname = 'items'") == 150


async def test_statement_over_the_timeout_is_cancelled_by_the_server(pg_database: str, items: asyncpg.Connection) -> None:
    started = time.monotonic()
    with pytest.raises(ExecutorError) as caught:
        await run_statement("postgres", with_password(pg_database), "SELECT pg_sleep(5)", timeout=0.5)

    assert time.monotonic() - started < 3
    assert "`SELECT pg_sleep(5)`" in str(caught.value)
    assert "was cancelled after 0.5 s: it ran into the statement timeout" in str(caught.value)
    assert caught.value.state.startswith("cancelled after 0.5 s; PostgreSQL rolled back its unfinished work")
    assert caught.value.effect is Effect.UNTOUCHED
    assert_no_secret(caught.value)
    # This test's database only: another test (tests/test_query.py) may be sleeping in its own beside it.
    still_running = ("SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(5)' AND state = 'active' "
                     "AND datname = current_database()")
    assert await items.fetchval(still_running) == 0


async def test_statement_naming_a_missing_table_fails_without_the_password(pg_database: str) -> None:
    with pytest.raises(TargetNotFound) as caught:
        await run_statement("postgres", with_password(pg_database), "VACUUM ANALYZE no_such_table", timeout=5)

    assert 'relation "no_such_table" does not exist' in str(caught.value)
    assert (caught.value.state, caught.value.effect) == (REJECTED, Effect.UNTOUCHED)
    assert_no_secret(caught.value)


async def test_misspelt_statement_is_rejected_and_changes_nothing(pg_database: str) -> None:
    with pytest.raises(ExecutorError) as caught:
        await run_statement("postgres", with_password(pg_database), "VACUM ANALYZE", timeout=5)
    assert "syntax error" in str(caught.value)
    assert (caught.value.state, caught.value.effect) == (REJECTED, Effect.UNTOUCHED)
    assert_no_secret(caught.value)


async def test_a_second_statement_in_the_string_is_refused(pg_database: str, items: asyncpg.Connection) -> None:
    with pytest.raises(ExecutorError, match="cannot insert multiple commands") as caught:
        await run_statement("postgres", pg_database, "VACUUM items; DROP TABLE items", timeout=5)
    assert (caught.value.state, caught.value.effect) == (REJECTED, Effect.UNTOUCHED)
    assert await items.fetchval("SELECT count(*) FROM items") == 200


async def test_failed_concurrent_index_build_says_it_left_an_invalid_index(pg_database: str, items: asyncpg.Connection) -> None:
    statement = "CREATE UNIQUE INDEX CONCURRENTLY items_name ON items (name)"
    with pytest.raises(ExecutorError, match="could not create unique index") as caught:
        await run_statement("postgres", with_password(pg_database), statement, timeout=10)

    assert caught.value.state.startswith("the statement failed; PostgreSQL rolled back its unfinished work")
    assert "INVALID index" in caught.value.state and caught.value.effect is Effect.CHANGED
    assert await items.fetchval("SELECT indisvalid FROM pg_index WHERE indexrelid = 'items_name'::regclass") is False
    assert_no_secret(caught.value)


async def test_unreachable_postgres_fails_before_anything_runs(pg_database: str) -> None:
    port = free_port()
    with pytest.raises(ExecutorError) as caught:
        await run_statement("postgres", with_password(pg_database, port), "VACUUM", timeout=5)
    assert f"cannot connect to PostgreSQL at 127.0.0.1:{port}/" in str(caught.value)
    assert caught.value.state.startswith(f"unchanged: could not connect to PostgreSQL at 127.0.0.1:{port}/")
    assert caught.value.effect is Effect.UNTOUCHED
    assert_no_secret(caught.value)


async def test_missing_postgres_database_is_target_not_found(pg_database: str) -> None:
    dsn = with_password(pg_database).rsplit("/", 1)[0] + "/opsbot_no_such_database"
    with pytest.raises(TargetNotFound, match="opsbot_no_such_database") as caught:
        await run_statement("postgres", dsn, "VACUUM", timeout=5)
    assert caught.value.state.startswith("unchanged")
    assert_no_secret(caught.value)


# --- run_statement on MariaDB ----------------------------------------------------------------------------


@pytest.fixture
def orders(mysql_database: str) -> Iterator[MysqlConnection]:
    target = parse_mysql_dsn(mysql_database)
    conn = pymysql.connect(host=target.host, port=target.port, user=target.user, database=target.database, autocommit=True)
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE orders (id int PRIMARY KEY, total int NOT NULL) ENGINE=InnoDB")
        cursor.execute("INSERT INTO orders VALUES (1, 10), (2, 20), (3, 30)")
    conn.close()
    return target


def order_ids(target: MysqlConnection) -> list[int]:
    conn = pymysql.connect(host=target.host, port=target.port, user=target.user, database=target.database)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT id FROM orders ORDER BY id")
            return [row[0] for row in cursor.fetchall()]
    finally:
        conn.close()


async def test_optimize_table_on_mariadb_reports_the_table_status(mysql_database: str, orders: MysqlConnection) -> None:
    summary = await run_statement("mysql", mysql_database, "OPTIMIZE TABLE orders", timeout=10)
    assert summary.startswith(f"OPTIMIZE TABLE: {orders.database}.orders OK in ")
    assert order_ids(orders) == [1, 2, 3]


async def test_optimize_of_a_missing_table_fails_although_mariadb_reports_it_as_a_row(mysql_database: str,
                                                                                      orders: MysqlConnection) -> None:
    with pytest.raises(ExecutorError, match="doesn't exist") as caught:
        await run_statement("mysql", mysql_database, "OPTIMIZE TABLE orders, no_such_table", timeout=10)
    assert caught.value.state == f"not done for {orders.database}.no_such_table; done for {orders.database}.orders"
    assert caught.value.effect is Effect.CHANGED  # the table that was done stays done


async def test_mariadb_statement_reports_rows_affected_and_accepts_the_mariadb_scheme(mysql_database: str,
                                                                                      orders: MysqlConnection) -> None:
    dsn = mysql_database.replace("mysql://", "mariadb://", 1)
    summary = await run_statement("mysql", dsn, "DELETE FROM orders WHERE id > 1", timeout=5)
    assert summary.startswith("DELETE FROM: 2 row(s) affected in ")
    assert order_ids(orders) == [1]


async def test_mariadb_statement_over_the_timeout_is_cancelled_by_the_server(mysql_database: str,
                                                                             orders: MysqlConnection) -> None:
    started = time.monotonic()
    with pytest.raises(ExecutorError) as caught:
        await run_statement("mysql", mysql_database, "SELECT SLEEP(5)", timeout=0.5)
    assert time.monotonic() - started < 3
    assert "was cancelled after 0.5 s: it ran into max_statement_time" in str(caught.value)
    assert caught.value.state.startswith("cancelled after 0.5 s; the statement was stopped part-way")
    assert caught.value.effect is Effect.UNKNOWN  # how much of it MySQL kept, opsbot cannot tell


async def test_a_second_mariadb_statement_in_the_string_is_refused(mysql_database: str, orders: MysqlConnection) -> None:
    with pytest.raises(ExecutorError, match="SQL syntax") as caught:
        await run_statement("mysql", mysql_database, "SELECT 1; DROP TABLE orders", timeout=5)
    assert (caught.value.state, caught.value.effect) == (REJECTED, Effect.UNTOUCHED)
    assert order_ids(orders) == [1, 2, 3]


async def test_mariadb_missing_table_is_target_not_found(mysql_database: str, orders: MysqlConnection) -> None:
    with pytest.raises(TargetNotFound, match="doesn't exist") as caught:
        await run_statement("mysql", mysql_database, "DELETE FROM no_such_table", timeout=5)
    assert (caught.value.state, caught.value.effect) == (REJECTED, Effect.UNTOUCHED)


async def test_mariadb_login_failure_does_not_leak_the_password(mysql_database: str) -> None:
    with pytest.raises(ExecutorError, match="Access denied") as caught:
        await run_statement("mysql", with_password(mysql_database), "OPTIMIZE TABLE orders", timeout=5)
    assert caught.value.state == "unchanged: could not connect to MySQL at 127.0.0.1:3306"
    assert_no_secret(caught.value)


async def test_unreachable_mariadb_fails_before_anything_runs() -> None:
    port = free_port()
    with pytest.raises(ExecutorError, match=f"cannot connect to MySQL at 127.0.0.1:{port}") as caught:
        await run_statement("mysql", f"mysql://root:{PASSWORD}@127.0.0.1:{port}/shop", "OPTIMIZE TABLE orders", timeout=5)
    assert caught.value.state == f"unchanged: could not connect to MySQL at 127.0.0.1:{port}"
    assert_no_secret(caught.value)


def test_mysql_dsn_is_taken_apart_and_keeps_its_password_out_of_the_repr() -> None:
    target = parse_mysql_dsn("mysql://shop:p%40ss%3Aword@db.internal:3307/shop")
    assert target == MysqlConnection("db.internal", 3307, "shop", "shop", "p@ss:word")
    assert "p@ss" not in repr(target) and "p%40ss" not in repr(target)
    assert parse_mysql_dsn("mariadb://db/shop") == MysqlConnection("db", 3306, "shop", None, None)


def test_a_server_check_may_leave_the_database_out() -> None:
    # The `mysql` and `sql` checks look at the server itself; statements and backups need a database.
    assert parse_mysql_dsn("mysql://monitor@db:3307/", require_database=False) == MysqlConnection("db", 3307, "", "monitor")
    with pytest.raises(ValueError, match="names no database"):
        parse_mysql_dsn("mysql://monitor@db:3307/")
    with pytest.raises(ValueError, match="numeric port"):
        parse_mysql_dsn("mysql://monitor@db:99999/", require_database=False)


@pytest.mark.parametrize(("dsn", "problem"), [
    ("postgresql://db/shop", "not a mysql:// or mariadb:// URL"),
    ("mysql://root:pw@db:port/shop", "numeric port"),
    ("mysql://root:pw@db:3306/", "names no database"),
    ("mysql://root:pw@db:3306/shop?ssl=1", "query parameters"),
])
def test_unusable_mysql_dsn_is_refused_without_echoing_it(dsn: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as caught:
        parse_mysql_dsn(dsn)
    assert "pw" not in str(caught.value)


# --- long_queries and terminate_queries ------------------------------------------------------------------


class Sleeper:
    """A second connection busy with `SELECT pg_sleep(30)` until terminated or cancelled."""

    def __init__(self, conn: asyncpg.Connection, comment: str = "") -> None:
        self.conn = conn
        self.pid = conn.get_server_pid()
        self.sql = f"SELECT pg_sleep(30){comment}"
        self.task = asyncio.create_task(conn.fetchval(self.sql))

    @classmethod
    async def start(cls, dsn: str, comment: str = "") -> Sleeper:
        sleeper = cls(await asyncpg.connect(dsn), comment)
        admin = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            # Wait until the server has it as the running query, so its age counts from a known moment.
            for _ in range(100):
                if await admin.fetchval("SELECT state = 'active' FROM pg_stat_activity WHERE pid = $1", sleeper.pid):
                    break
                await asyncio.sleep(0.01)
        finally:
            await admin.close()
        return sleeper

    async def stop(self) -> None:
        if not self.task.done():
            admin = await asyncpg.connect(PG_ADMIN_DSN)
            try:
                await admin.execute("SELECT pg_cancel_backend($1)", self.pid)
            finally:
                await admin.close()
        await asyncio.gather(self.task, return_exceptions=True)
        self.conn.terminate()


@pytest.fixture
async def sleepers() -> AsyncIterator[list[Sleeper]]:
    started: list[Sleeper] = []
    yield started
    for sleeper in started:
        await sleeper.stop()


async def test_long_queries_lists_running_queries_oldest_first_but_not_idle_ones(pg_database: str,
                                                                                 sleepers: list[Sleeper]) -> None:
    idle = await asyncpg.connect(pg_database)
    await idle.execute("SELECT 1")
    sleepers.append(await Sleeper.start(pg_database))
    await asyncio.sleep(0.2)
    sleepers.append(await Sleeper.start(pg_database, comment=" /* " + "x" * 300 + " */"))
    await asyncio.sleep(0.8)

    found = await long_queries(with_password(pg_database), THRESHOLD_MINUTES)
    await idle.close()

    database = urlsplit(pg_database).path[1:]
    assert [q.pid for q in found] == [sleepers[0].pid, sleepers[1].pid]
    first, second = found
    assert first == LongQuery(first.pid, "postgres", database, first.seconds, "active", "SELECT pg_sleep(30)")
    assert first.seconds > second.seconds >= THRESHOLD_MINUTES * 60
    assert len(second.query) == 200 and second.query.startswith("SELECT pg_sleep(30) /* xxx") and second.query.endswith("…")
    assert not sleepers[0].task.done()


async def test_terminate_queries_kills_long_ones_and_leaves_short_ones_and_other_databases(
    pg_database: str, sleepers: list[Sleeper]
) -> None:
    long = await Sleeper.start(pg_database)
    elsewhere = await Sleeper.start(PG_ADMIN_DSN, comment=" /* another database */")
    sleepers += [long, elsewhere]
    await asyncio.sleep(1.0)
    short = await Sleeper.start(pg_database)
    sleepers.append(short)

    killed = await terminate_queries(with_password(pg_database), THRESHOLD_MINUTES)

    assert [(q.pid, q.query) for q in killed] == [(long.pid, "SELECT pg_sleep(30)")]
    with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)):
        await asyncio.wait_for(long.task, 5)
    await asyncio.sleep(0.1)
    assert not short.task.done() and not elsewhere.task.done()
    assert await long_queries(pg_database, THRESHOLD_MINUTES) == []


async def test_listing_long_queries_on_an_unreachable_server_fails_cleanly(pg_database: str) -> None:
    port = free_port()
    for call in (long_queries, terminate_queries):
        with pytest.raises(ExecutorError) as caught:
            await call(with_password(pg_database, port), THRESHOLD_MINUTES)
        assert caught.value.state.startswith("unchanged: nothing was terminated: could not connect")
        assert_no_secret(caught.value)


async def test_a_threshold_of_zero_minutes_is_refused(pg_database: str) -> None:
    with pytest.raises(ExecutorError, match="must be positive") as caught:
        await terminate_queries(pg_database, 0)
    assert caught.value.state == "unchanged: nothing was terminated"
