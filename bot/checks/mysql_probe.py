"""The client side of the mysql and sql checks and named queries on MySQL/MariaDB (pymysql, aiomysql): imported only
for a catalog with a mysql or sql check or a query (`bot.adapters`)."""

from __future__ import annotations

import contextlib
from typing import Any

import aiomysql
import pymysql
from pymysql.constants import FIELD_TYPE

from bot.checks._net import socket_error
from bot.checks._sql_read import SqlRows
from bot.checks.base import Probe, Status
from bot.checks.mysql import no_answer, not_a_url
from bot.executors.mysql_dsn import MysqlConnection

_ER_UNKNOWN_SYSTEM_VARIABLE = 1193
_ER_STATEMENT_TIMEOUT, _ER_QUERY_TIMEOUT = 1969, 3024
_MYSQL_TYPES = {code: name.lower() for name, code in vars(FIELD_TYPE).items() if name.isupper()}


async def connections(target: MysqlConnection, timeout: float, where: str, dsn_env: str | None) -> tuple[int, int] | Probe:
    """(`Threads_connected`, `max_connections`), or why they could not be read."""
    try:
        conn = await connect(target, timeout)
    except (ValueError, OverflowError):
        return not_a_url(dsn_env, "mysql://")
    except (pymysql.MySQLError, OSError) as exc:
        return connect_failure(exc, where, timeout)
    try:
        await conn.ping(reconnect=False)
        async with conn.cursor() as cursor:
            await cursor.execute("SHOW GLOBAL STATUS LIKE 'Threads_connected'")
            row = await cursor.fetchone()
            await cursor.execute("SELECT @@max_connections")
            (limit,) = await cursor.fetchone()
    except (pymysql.MySQLError, OSError) as exc:
        return Probe(Status.CRITICAL, f"query failed on {where}: {describe(exc)}")
    finally:
        conn.close()
    return (int(row[1]) if row else 0), int(limit)


async def first_value(target: MysqlConnection, query: str, timeout: float, budget: float, where: str,
                      dsn_env: str | None, scheme: str) -> tuple[Any, str, bool] | Probe:
    """The `sql` check's query, read-only and rolled back: (first value, its column type, no row), or a verdict."""
    read = await rows(target, query, timeout, budget, where, dsn_env, scheme, limit=1)
    return read if isinstance(read, Probe) else read.first_value()


async def rows(target: MysqlConnection, query: str, timeout: float, budget: float, where: str, dsn_env: str | None,
               scheme: str, *, limit: int) -> SqlRows | Probe:
    """A read-only query's first `limit` rows, read-only and rolled back, or why they could not be read."""
    try:
        conn = await connect(target, timeout)
    except (ValueError, OverflowError):
        return not_a_url(dsn_env, scheme)
    except (pymysql.MySQLError, OSError) as exc:
        return connect_failure(exc, where, timeout)
    try:
        return await _mysql_read(conn, query, budget, limit)
    except pymysql.MySQLError as exc:
        if error_code(exc) in (_ER_STATEMENT_TIMEOUT, _ER_QUERY_TIMEOUT):
            return Probe(Status.ERROR, f"the query ran past its statement timeout ({budget:.1f} s) on {where}")
        return Probe(Status.ERROR, f"the query failed on {where}: {describe(exc)}")
    finally:
        # Closing drops anything left open (a cancelled query's transaction): the server rolls it back.
        conn.close()


async def connect(target: MysqlConnection, timeout: float) -> aiomysql.Connection:
    """One connection, autocommit off. `connect_timeout` bounds the TCP connect only; a server that accepts and
    then says nothing is left to the health runner's overall timeout."""
    connection: aiomysql.Connection = await aiomysql.connect(
        host=target.host, port=target.port, user=target.user or "root", password=target.password or "",
        db=target.database or None, connect_timeout=timeout, autocommit=False,
    )
    return connection


def connect_failure(exc: BaseException, where: str, timeout: float) -> Probe:
    """Why connecting failed, as a check's result: its own connect timeout firing is no answer, not a refusal."""
    if isinstance(exc, TimeoutError) or isinstance(exc.__cause__, TimeoutError):
        return no_answer(where, timeout)
    return Probe(Status.CRITICAL, f"cannot connect to {where}: {describe(exc)}")


def error_code(exc: BaseException) -> int:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else 0


def describe(exc: BaseException) -> str:
    """The server's own message without its error-code tuple; it names the user and host, never the password."""
    args = exc.args
    if isinstance(exc, pymysql.MySQLError) and len(args) >= 2:
        text = str(args[1])
        # aiomysql keeps why it could not connect (refused, no route) as the cause, not in the message.
        if isinstance(exc.__cause__, OSError):
            text = f"{text} ({socket_error(exc.__cause__)})"
    elif isinstance(exc, OSError):
        text = socket_error(exc)
    else:
        text = str(exc) or type(exc).__name__
    text = text.strip() or type(exc).__name__
    return text.splitlines()[0][:200]


async def _mysql_read(conn: Any, query: str, budget: float, limit: int) -> SqlRows:
    async with conn.cursor() as cursor:
        await _mysql_guard(cursor, budget)
        await cursor.execute("START TRANSACTION READ ONLY")
        try:
            await cursor.execute(query)
            found = await cursor.fetchmany(limit + 1) if cursor.description else ()
            described = cursor.description or ()
        except pymysql.MySQLError:
            # The query's own error is the one to report; a connection too broken to roll back is closed anyway.
            with contextlib.suppress(pymysql.MySQLError):
                await cursor.execute("ROLLBACK")
            raise
        await cursor.execute("ROLLBACK")
    return SqlRows(columns=tuple(str(d[0]) for d in described),
                   types=tuple(_MYSQL_TYPES.get(d[1], "unknown") for d in described),
                   rows=tuple(tuple(row) for row in found[:limit]), more=len(found) > limit)


async def _mysql_guard(cursor: Any, budget: float) -> None:
    """Make the session read-only and give its statements a time limit, in each server's own dialect.

    `START TRANSACTION READ ONLY` alone is not enough there: DDL commits implicitly and would run outside it, so the
    session itself is made read-only too (`transaction_read_only`, `tx_read_only` before MySQL 8 / MariaDB 11.1).

    MySQL's max_execution_time bounds SELECT only. The query guard lets SELECT, WITH, VALUES, TABLE and SHOW through;
    SHOW is left unbounded on MySQL (MariaDB's max_statement_time bounds every statement): it reads server metadata
    and returns quickly, and the health runner's timeout still closes the connection under it.
    """
    await cursor.execute("SELECT VERSION()")
    (version,) = await cursor.fetchone()
    if "mariadb" in str(version).lower():
        await cursor.execute(f"SET SESSION max_statement_time = {budget:.3f}")  # seconds, every statement
    else:
        await cursor.execute(f"SET SESSION max_execution_time = {max(1, round(budget * 1000))}")  # ms, SELECTs
    try:
        await cursor.execute("SET SESSION transaction_read_only = 1")
    except pymysql.OperationalError as exc:
        if error_code(exc) != _ER_UNKNOWN_SYSTEM_VARIABLE:
            raise
        await cursor.execute("SET SESSION tx_read_only = 1")
