"""The client side of the postgres check, the sql check and named queries on PostgreSQL (asyncpg): imported only for
a catalog with a postgres or sql check or a query (`bot.adapters`). Not responsible for grading: the checks turn
what it reads into a status.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg

from bot.checks._net import socket_error
from bot.checks._sql_read import SqlRows
from bot.checks.base import Probe, Status, Thresholds, percent
from bot.checks.mysql import no_answer, not_a_url


async def connections(url: str, timeout: float, where: str, limits: Thresholds) -> Probe:
    """`SELECT 1`, then client connections in use against `max_connections`, graded by `limits`."""
    try:
        conn = await asyncpg.connect(url, timeout=timeout)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return Probe(Status.CRITICAL, f"cannot connect to {where}: {pg_text(exc)}")
    try:
        await conn.fetchval("SELECT 1")
        # Background workers (checkpointer, walwriter…) are not connections clients can run out of.
        in_use = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
        limit = int(await conn.fetchval("SHOW max_connections"))
    except asyncpg.PostgresError as exc:
        return Probe(Status.CRITICAL, f"query failed on {where}: {pg_text(exc)}")
    finally:
        await conn.close()
    used = percent(in_use, limit)
    status = limits.grade(used)
    note = ""
    if status is not Status.OK:
        bound = limits.critical if status is Status.CRITICAL else limits.warning
        note = f", limit {bound:g} %"
    return Probe(status, f"{in_use} of {limit} connections in use ({used:.0f} %{note})")


async def first_value(url: str, query: str, timeout: float, budget: Callable[[], float], where: str,
                      dsn_env: str | None) -> tuple[Any, str, bool] | Probe:
    """The sql check's query on PostgreSQL: (first column of the first row, its type's name, no row at all), or why
    it could not be read. `budget()` is the statement timeout left once connected."""
    read = await rows(url, query, timeout, budget, where, dsn_env, limit=1)
    return read if isinstance(read, Probe) else read.first_value()


async def rows(url: str, query: str, timeout: float, budget: Callable[[], float], where: str, dsn_env: str | None,
               *, limit: int) -> SqlRows | Probe:
    """A read-only query's first `limit` rows, or why they could not be read (a Probe: its reason is plain words)."""
    try:
        conn = await asyncpg.connect(url, timeout=timeout)
    except (ValueError, OverflowError):
        # A URL asyncpg cannot use (an option it refuses); its message may quote the value.
        return not_a_url(dsn_env, "postgresql://")
    except TimeoutError:
        # asyncpg's own limit (the whole check's timeout) fired before the health runner's.
        return no_answer(where, timeout)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        text = socket_error(exc) if isinstance(exc, OSError) else pg_text(exc)
        return Probe(Status.CRITICAL, f"cannot connect to {where}: {text}")
    seconds = budget()
    try:
        read = await _read(conn, query, seconds, limit)
    except asyncpg.QueryCanceledError:
        await _close(conn)
        return Probe(Status.ERROR, f"the query ran past its statement timeout ({seconds:.1f} s) on {where}")
    except asyncpg.PostgresError as exc:
        await _close(conn)
        return Probe(Status.ERROR, f"the query failed on {where}: {pg_text(exc)}")
    except BaseException:
        # Cancelled mid-query (the runner's timeout): a busy connection cannot be closed politely; dropping it
        # ends the transaction, and the statement timeout ends the query.
        conn.terminate()
        raise
    await _close(conn)
    return read


async def _read(conn: asyncpg.Connection, query: str, budget: float, limit: int) -> SqlRows:
    """Run the query in a READ ONLY transaction that is rolled back, never committed, whatever happens."""
    transaction = conn.transaction(readonly=True)
    await transaction.start()
    try:
        await conn.execute(f"SET LOCAL statement_timeout = {max(1, round(budget * 1000))}")
        # A prepared statement holds exactly one command: the server refuses a second one outright.
        statement = await conn.prepare(query)
        # A portal fetched `limit + 1` rows at a time: only what is shown (and whether there is more) is read.
        cursor = await statement.cursor()
        found = await cursor.fetch(limit + 1)
    except asyncpg.PostgresError:
        await transaction.rollback()
        raise
    await transaction.rollback()
    attributes = statement.get_attributes()
    return SqlRows(columns=tuple(a.name for a in attributes), types=tuple(a.type.name for a in attributes),
                   rows=tuple(tuple(row) for row in found[:limit]), more=len(found) > limit)


def pg_text(exc: BaseException) -> str:
    # asyncpg's messages name the server, user and database but never the password.
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


async def _close(conn: asyncpg.Connection) -> None:
    try:
        await conn.close(timeout=1)
    except (OSError, TimeoutError, asyncpg.InterfaceError):
        conn.terminate()
