"""Database maintenance: one catalog statement on PostgreSQL or MySQL/MariaDB, and long PostgreSQL queries.

It runs what the catalog wrote, verbatim and alone, and never decides when or whether (the actions domain does).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import asyncpg
import pymysql

from bot.clock import Clock, SystemClock
from bot.executors._tools import scrub
from bot.executors.base import Effect, ExecutorError, TargetNotFound
from bot.executors.mysql_dsn import MysqlConnection, parse_mysql_dsn, secret_forms

Engine = Literal["postgres", "mysql"]

_CONNECT_TIMEOUT = 10.0
# The server enforces the statement timeout; the client waits this much longer before giving up on it itself.
_GRACE = 5.0
# long_queries / terminate_queries read one small view; a server slower than this is not one to act on.
_ACTIVITY_TIMEOUT = 10.0
_QUERY_CHARS = 200

PG_ROLLED_BACK = (
    "PostgreSQL rolled back its unfinished work (a VACUUM or ANALYZE keeps the tables it had already finished)"
)
PG_CONCURRENTLY = "; a failed CONCURRENTLY build leaves an INVALID index behind, to drop or rebuild"
PG_LOST = "unknown: the connection was lost while the statement ran; it may have finished or been rolled back"
MYSQL_STOPPED = (
    "the statement was stopped part-way; MySQL keeps what it had already finished "
    "(e.g. the tables a multi-table OPTIMIZE completed) and discards the rest"
)
MYSQL_LOST = (
    "unknown: the connection was lost while the statement ran; it may have finished before KILL QUERY reached it, "
    "check the table"
)
REJECTED = "unchanged: the server rejected the statement before running it"
NOT_RUN = "unchanged: nothing was run"
NOT_TERMINATED = "unchanged: nothing was terminated"
SOME_TERMINATED = (
    "some of the matching queries may have been terminated before the error (that cannot be undone); "
    "list them again to see what is left"
)

# MariaDB's max_statement_time, MySQL's max_execution_time, and KILL QUERY (ours after a lost connection).
_ER_STATEMENT_TIMEOUT, _ER_QUERY_TIMEOUT, _ER_QUERY_INTERRUPTED = 1969, 3024, 1317
_ER_UNKNOWN_SYSTEM_VARIABLE, _ER_BAD_DB, _ER_NO_SUCH_TABLE = 1193, 1049, 1146
_CR_SERVER_GONE, _CR_SERVER_LOST = 2006, 2013
_SECOND_KEYWORDS = {
    "TABLE", "TABLES", "INDEX", "ANALYZE", "FULL", "VERBOSE", "FROM", "INTO", "MATERIALIZED", "SCHEMA", "DATABASE",
    "SYSTEM", "LOCAL", "NO_WRITE_TO_BINLOG",
}
# Access denied for a database, a table, a column, or a privilege: refused before anything ran.
_MYSQL_DENIED = {1044, 1142, 1143, 1227}


@dataclass(frozen=True)
class LongQuery:
    """A PostgreSQL backend busy with one query for a while; `query` is shortened to 200 characters."""

    pid: int
    user: str
    database: str
    seconds: float
    state: str
    query: str


async def run_statement(engine: Engine, dsn: str, statement: str, timeout: float, *, clock: Clock | None = None) -> str:
    """Run one maintenance statement verbatim, cancelled by the server after `timeout` seconds.

    Returns a one-line summary with the time taken ("VACUUM in 0.4 s", "OPTIMIZE TABLE: shop.orders OK in 1.2 s").
    """
    if timeout <= 0:
        raise ExecutorError(f"the statement timeout must be positive, not {timeout:g} s", state=NOT_RUN, effect=Effect.UNTOUCHED)
    if not statement.strip():
        raise ExecutorError("the statement is empty", state=NOT_RUN, effect=Effect.UNTOUCHED)
    clock = clock or SystemClock()
    if engine == "postgres":
        return await _postgres_statement(dsn, statement, timeout, clock)
    if engine == "mysql":
        try:
            target = parse_mysql_dsn(dsn)
        except ValueError as exc:
            raise ExecutorError(str(exc), state=NOT_RUN, effect=Effect.UNTOUCHED) from None
        # PyMySQL blocks; the server's own limit bounds how long the thread outlives a cancelled action.
        return await asyncio.to_thread(_mysql_statement, target, statement, timeout, clock)
    raise ExecutorError(f"unknown database engine {engine!r}", state=NOT_RUN, effect=Effect.UNTOUCHED)


# --- PostgreSQL ------------------------------------------------------------------------------------------


async def _postgres_statement(dsn: str, statement: str, timeout: float, clock: Clock) -> str:
    shown, where, secrets = _short(statement, 80), _pg_where(dsn), _pg_secrets(dsn)
    conn = await _pg_connect(dsn, secrets, state=f"unchanged: could not connect to PostgreSQL at {where}")
    started = clock.monotonic()
    try:
        # A session setting rather than SET LOCAL: VACUUM and CONCURRENTLY builds refuse to run in a transaction.
        await conn.execute(f"SET statement_timeout = {max(1, round(timeout * 1000))}")
        # A prepared statement holds exactly one command, so a catalog string can never smuggle in a second.
        prepared = await conn.prepare(statement, timeout=timeout + _GRACE)
        await prepared.fetch(timeout=timeout + _GRACE)
        status = prepared.get_statusmsg() or _verb(statement)
    except asyncpg.QueryCanceledError as exc:
        elapsed = clock.monotonic() - started
        state = f"cancelled after {elapsed:.1f} s; {_pg_rolled_back(statement)}"
        # The same SQLSTATE covers an administrator's pg_cancel_backend, which can come before the limit.
        if elapsed + 0.05 >= timeout:
            raise ExecutorError(f"`{shown}` on {where} was cancelled after {timeout:g} s: it ran into the statement "
                                "timeout", state=state, effect=_pg_cancelled(statement)) from None
        raise ExecutorError(f"`{shown}` on {where} was cancelled on the server: {_pg_text(exc, secrets)}", state=state,
                            effect=_pg_cancelled(statement)) from None
    except TimeoutError:
        # asyncpg sends the server a cancel request when its own timeout fires; whether it arrived before the
        # statement finished (or at all: the server did not answer), opsbot cannot tell.
        state = (f"unknown: no answer within {timeout + _GRACE:g} s; a cancel was sent, and if it arrived, "
                 f"{_pg_rolled_back(statement)}")
        raise ExecutorError(f"`{shown}` on {where} did not answer within {timeout + _GRACE:g} s and was cancelled",
                            state=state, effect=Effect.UNKNOWN) from None
    except asyncpg.UndefinedTableError as exc:
        raise TargetNotFound(f"`{shown}` on {where}: {_pg_text(exc, secrets)}", state=REJECTED, effect=Effect.UNTOUCHED) from None
    except asyncpg.PostgresError as exc:
        # Class 42 is "syntax error or access rule violation": found while parsing or checking, before running.
        if (exc.sqlstate or "").startswith("42"):
            raise ExecutorError(f"`{shown}` failed on {where}: {_pg_text(exc, secrets)}", state=REJECTED,
                                effect=Effect.UNTOUCHED) from None
        raise ExecutorError(f"`{shown}` failed on {where}: {_pg_text(exc, secrets)}",
                            state=f"the statement failed; {_pg_rolled_back(statement)}",
                            effect=_pg_cancelled(statement)) from None
    except (OSError, asyncpg.InterfaceError) as exc:
        raise ExecutorError(f"`{shown}` on {where}: connection lost: {_pg_text(exc, secrets)}", state=PG_LOST,
                            effect=Effect.UNKNOWN) from None
    finally:
        await _pg_close(conn)
    return f"{status} in {clock.monotonic() - started:.1f} s"


_ACTIVITY = f"""
    SELECT pid, coalesce(usename, '') AS usename, coalesce(datname, '') AS datname,
           extract(epoch FROM now() - query_start)::float8 AS seconds, state, left(query, {_QUERY_CHARS + 1}) AS query
    {{terminate}}
    FROM pg_stat_activity
    WHERE backend_type = 'client backend'
      AND pid <> pg_backend_pid()
      AND datname = current_database()
      AND state <> 'idle'
      AND query_start < now() - make_interval(secs => $1)
    ORDER BY query_start
"""  # noqa: S608 - only a constant of this module is formatted in


async def long_queries(dsn: str, older_than_minutes: float) -> list[LongQuery]:
    """Client backends in the DSN's database, other than ours and not idle, whose current query started more than
    `older_than_minutes` ago; oldest first. Reads only (it is what the plan shows)."""
    rows = await _activity(dsn, older_than_minutes, terminate=False)
    return [_long_query(row) for row in rows]


async def terminate_queries(dsn: str, older_than_minutes: float) -> list[LongQuery]:
    """Terminate the backends `long_queries` would list right now, and return those it terminated.

    The age is checked again in the same statement that terminates, so a query that finished since the plan was
    shown (and a connection now running something new) is left alone.
    """
    rows = await _activity(dsn, older_than_minutes, terminate=True)
    return [_long_query(row) for row in rows if row["terminated"]]


async def _activity(dsn: str, older_than_minutes: float, *, terminate: bool) -> list[asyncpg.Record]:
    if older_than_minutes <= 0:
        raise ExecutorError(f"the age threshold must be positive, not {older_than_minutes:g} minutes",
                            state=NOT_TERMINATED, effect=Effect.UNTOUCHED)
    where, secrets = _pg_where(dsn), _pg_secrets(dsn)
    conn = await _pg_connect(dsn, secrets, state=f"{NOT_TERMINATED}: could not connect to PostgreSQL at {where}")
    # Scoped to the DSN's own database: a service's runbook must not reach into its neighbours on a shared server.
    sql = _ACTIVITY.format(terminate=", pg_terminate_backend(pid) AS terminated" if terminate else "")
    try:
        return await conn.fetch(sql, older_than_minutes * 60, timeout=_ACTIVITY_TIMEOUT)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
        what = "terminating" if terminate else "listing"
        # Listing only reads; terminating may have ended some backends before the error.
        state, effect = (SOME_TERMINATED, Effect.UNKNOWN) if terminate else (NOT_TERMINATED, Effect.UNTOUCHED)
        raise ExecutorError(f"{what} long queries on {where} failed: {_pg_text(exc, secrets)}", state=state,
                            effect=effect) from None
    finally:
        await _pg_close(conn)


def _long_query(row: asyncpg.Record) -> LongQuery:
    return LongQuery(
        pid=row["pid"], user=row["usename"], database=row["datname"], seconds=float(row["seconds"] or 0.0),
        state=row["state"] or "", query=_short(row["query"] or "", _QUERY_CHARS),
    )


async def _pg_connect(dsn: str, secrets: list[str], *, state: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(dsn, timeout=_CONNECT_TIMEOUT)
    except asyncpg.InvalidCatalogNameError as exc:
        raise TargetNotFound(f"PostgreSQL at {_pg_where(dsn)}: {_pg_text(exc, secrets)}", state=state,
                             effect=Effect.UNTOUCHED) from None
    except (OSError, TimeoutError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        # Not connected: nothing was sent.
        raise ExecutorError(f"cannot connect to PostgreSQL at {_pg_where(dsn)}: {_pg_text(exc, secrets)}", state=state,
                            effect=Effect.UNTOUCHED) from None


async def _pg_close(conn: asyncpg.Connection) -> None:
    try:
        await conn.close(timeout=_CONNECT_TIMEOUT)
    except (OSError, TimeoutError, asyncpg.InterfaceError):
        # close() has already aborted the socket; the server ends the session when it sees it gone.
        conn.terminate()


def _pg_cancelled(statement: str) -> Effect:
    """What a PostgreSQL statement that failed or was cancelled part-way leaves: its transaction is rolled back,
    except the tables a VACUUM or ANALYZE had finished and the INVALID index of a CONCURRENTLY build."""
    keeps = "CONCURRENTLY" in statement.upper() or _verb(statement).split(" ")[0] in ("VACUUM", "ANALYZE")
    return Effect.CHANGED if keeps else Effect.UNTOUCHED


def _pg_rolled_back(statement: str) -> str:
    return PG_ROLLED_BACK + (PG_CONCURRENTLY if "CONCURRENTLY" in statement.upper() else "")


def _pg_where(dsn: str) -> str:
    try:
        parts = urlsplit(dsn.strip())
        port = parts.port or 5432
    except ValueError:
        return "the server in the DSN"
    return f"{parts.hostname or 'localhost'}:{port}/{unquote(parts.path.lstrip('/')) or parts.username or 'postgres'}"


def _pg_secrets(dsn: str) -> list[str]:
    try:
        password = urlsplit(dsn.strip()).password
    except ValueError:
        # Unparseable: hide the whole string rather than guess where its password is.
        return [dsn.strip()]
    return secret_forms(unquote(password) if password is not None else None)


def _pg_text(exc: BaseException, secrets: list[str]) -> str:
    text = str(exc).strip() or type(exc).__name__
    return scrub(text.splitlines()[0], secrets)[:300]


# --- MySQL / MariaDB -------------------------------------------------------------------------------------


def _mysql_statement(target: MysqlConnection, statement: str, timeout: float, clock: Clock) -> str:
    shown, where, secrets = _short(statement, 80), target.where(), target.secrets()
    conn = _mysql_connect(target, read_timeout=timeout + _GRACE)
    started, limit = clock.monotonic(), "the statement timeout"
    try:
        with conn.cursor() as cursor:
            limit = _mysql_limit(cursor, timeout)
            started = clock.monotonic()
            # PyMySQL leaves CLIENT.MULTI_STATEMENTS off, so the server refuses a second statement in the string.
            affected = cursor.execute(statement)
            columns = [column[0] for column in cursor.description or ()]
            rows = list(cursor.fetchall()) if cursor.description else None
    except pymysql.MySQLError as exc:
        elapsed = clock.monotonic() - started
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
        text = _mysql_text(exc, secrets)
        if code in (_ER_STATEMENT_TIMEOUT, _ER_QUERY_TIMEOUT):
            raise ExecutorError(
                f"`{shown}` on {where} was cancelled after {timeout:g} s: it ran into {limit}",
                state=f"cancelled after {elapsed:.1f} s; {MYSQL_STOPPED}", effect=Effect.UNKNOWN,
            ) from None
        if code in (_CR_SERVER_GONE, _CR_SERVER_LOST):
            kill = _mysql_kill(target, conn.thread_id())
            raise ExecutorError(f"`{shown}` on {where}: connection lost after {elapsed:.1f} s ({text}); {kill}",
                                state=MYSQL_LOST, effect=Effect.UNKNOWN) from None
        if code == _ER_NO_SUCH_TABLE:
            raise TargetNotFound(f"`{shown}` on {where}: {text}", state=REJECTED, effect=Effect.UNTOUCHED) from None
        if isinstance(exc, pymysql.ProgrammingError) or code in _MYSQL_DENIED:
            raise ExecutorError(f"`{shown}` failed on {where}: {text}", state=REJECTED, effect=Effect.UNTOUCHED) from None
        # Stopped part-way: what it had finished stays, and how much that was is not known.
        if code == _ER_QUERY_INTERRUPTED:
            raise ExecutorError(f"`{shown}` on {where} was interrupted on the server: {text}", state=MYSQL_STOPPED,
                                effect=Effect.UNKNOWN) from None
        raise ExecutorError(f"`{shown}` failed on {where}: {text}", state=MYSQL_STOPPED, effect=Effect.UNKNOWN) from None
    finally:
        # PyMySQL has already closed a connection it lost, and closing it twice raises.
        if conn.open:
            conn.close()
    elapsed = clock.monotonic() - started
    verb = _verb(statement)
    if rows is not None and columns == ["Table", "Op", "Msg_type", "Msg_text"]:
        return _admin_summary(verb, where, rows, elapsed)
    if rows is not None:
        return f"{verb}: {len(rows)} row(s) in {elapsed:.1f} s"
    return f"{verb}: {affected} row(s) affected in {elapsed:.1f} s"


def _mysql_connect(target: MysqlConnection, *, read_timeout: float) -> pymysql.connections.Connection:
    state = f"unchanged: could not connect to MySQL at {target.host}:{target.port}"
    try:
        return pymysql.connect(
            host=target.host, port=target.port, user=target.user, password=target.password or "",
            database=target.database, connect_timeout=_CONNECT_TIMEOUT, read_timeout=read_timeout,
            write_timeout=read_timeout, autocommit=True,
        )
    except pymysql.MySQLError as exc:
        text = _mysql_text(exc, target.secrets())
        if exc.args and exc.args[0] == _ER_BAD_DB:
            raise TargetNotFound(f"MySQL at {target.host}:{target.port}: {text}", state=state, effect=Effect.UNTOUCHED) from None
        raise ExecutorError(f"cannot connect to MySQL at {target.host}:{target.port}: {text}", state=state,
                            effect=Effect.UNTOUCHED) from None
    except OSError as exc:
        raise ExecutorError(f"cannot connect to MySQL at {target.host}:{target.port}: {exc.strerror or exc}",
                            state=state, effect=Effect.UNTOUCHED) from None


def _mysql_limit(cursor: pymysql.cursors.Cursor, timeout: float) -> str:
    """Have the server cancel the statement after `timeout`; returns the setting's name for messages."""
    try:
        cursor.execute(f"SET SESSION max_statement_time = {timeout:.3f}")  # MariaDB: seconds, every statement
        return "max_statement_time"
    except pymysql.OperationalError as exc:
        if exc.args[0] != _ER_UNKNOWN_SYSTEM_VARIABLE:
            raise
    # MySQL 5.7.8+: milliseconds, and only SELECTs; the client's read timeout and KILL QUERY cover the rest.
    try:
        cursor.execute(f"SET SESSION max_execution_time = {max(1, round(timeout * 1000))}")
        return "max_execution_time"
    except pymysql.OperationalError as exc:
        if exc.args[0] != _ER_UNKNOWN_SYSTEM_VARIABLE:
            raise
    return "the client's read timeout"


def _mysql_kill(target: MysqlConnection, thread_id: int) -> str:
    """Stop a statement whose connection we lost, so it does not keep running unseen; says how that went."""
    try:
        conn = _mysql_connect(target, read_timeout=_CONNECT_TIMEOUT)
    except ExecutorError as exc:
        return f"KILL QUERY could not be sent ({exc})"
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"KILL QUERY {int(thread_id)}")
    except pymysql.MySQLError as exc:
        return f"KILL QUERY {thread_id} failed ({_mysql_text(exc, target.secrets())})"
    finally:
        conn.close()
    return f"KILL QUERY {thread_id} sent"


def _admin_summary(verb: str, where: str, rows: list[tuple[Any, ...]], elapsed: float) -> str:
    """OPTIMIZE/ANALYZE/CHECK/REPAIR report per-table errors as result rows, not as SQL errors."""
    failed = {table: text for table, _op, kind, text in rows if str(kind).lower() == "error"}
    done = [f"{table} {text}" for table, _op, kind, text in rows if str(kind).lower() == "status" and table not in failed]
    if failed:
        ok = sorted({table for table, *_ in rows} - set(failed))
        state = f"not done for {', '.join(failed)}" + (f"; done for {', '.join(ok)}" if ok else "; nothing was changed")
        details = "; ".join(f"{table}: {text}" for table, text in failed.items())
        raise ExecutorError(f"{verb} failed on {where}: {details}", state=state,
                            effect=Effect.CHANGED if ok else Effect.UNTOUCHED)
    return f"{verb}: {', '.join(done) or f'{len(rows)} row(s)'} in {elapsed:.1f} s"


def _mysql_text(exc: BaseException, secrets: list[str]) -> str:
    args = exc.args
    text = str(args[1]) if len(args) >= 2 else (str(exc) or type(exc).__name__)
    return scrub(text.strip().splitlines()[0] if text.strip() else type(exc).__name__, secrets)[:300]


# --- shared ----------------------------------------------------------------------------------------------


def _verb(statement: str) -> str:
    """The leading keywords for summaries: "OPTIMIZE TABLE", "VACUUM ANALYZE", "DELETE FROM"."""
    words = [word.upper() for word in re.findall(r"[A-Za-z_]+", statement)[:2]]
    if len(words) == 2 and words[1] not in _SECOND_KEYWORDS:
        words = words[:1]
    return " ".join(words) or "statement"


def _short(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
