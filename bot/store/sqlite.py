"""The embedded store: SQLite through the standard library's sqlite3, the default when DATABASE_URL is not PostgreSQL.

sqlite3 blocks, so every call runs on one dedicated thread: the event loop never stalls on disk,
and the connection is only ever used from the thread that made it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from bot.audit import AuditEntry
from bot.errors import StoreUnavailable
from bot.health import HealthRun
from bot.store import rows
from bot.store.actions_sql import ActionQueries
from bot.store.alerts_sql import AlertQueries
from bot.store.audit_sql import AuditQueries
from bot.store.base import migrations
from bot.store.incidents_sql import IncidentQueries
from bot.store.outage import OutageLog, sqlite_unreachable
from bot.store.schedule_sql import ScheduleQueries
from bot.store.sql import Statement

T = TypeVar("T")

# Prepared statements kept per connection (sqlite3's default is 128). The migrations alone leave about 90 in it at
# start-up, each holding its compiled program, never to run again: 32 keeps what requests and chores repeat, for
# 0.3 MB less RSS (bench/compare.py); one prepared again costs microseconds, next to the thread hop around it.
STATEMENT_CACHE = 32
# SQLite's own page cache, in KiB (its default is 2000): it fills as the audit log grows and duplicates what the
# operating system's page cache holds of the same file, so a page it no longer keeps is read back from memory, not
# disk. 512 KiB keeps the hot pages (the newest audit rows, open runs): 0.3-0.5 MB less RSS after bench/compare.py's
# 5000 requests, up to 1.5 MB once the file outgrows the cache.
PAGE_CACHE_KIB = 512


def _encode(value: datetime) -> str:
    return value.isoformat(timespec="microseconds")


def _decode(value: str) -> datetime:
    return datetime.fromisoformat(value)


class SqliteStore(ActionQueries, IncidentQueries, ScheduleQueries, AuditQueries, AlertQueries):
    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None
        self._outage = OutageLog(f"the SQLite store at {path}")

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._executor is None or self._db is None:
            raise StoreUnavailable("the SQLite store is not open")
        db = self._db
        try:
            result = await asyncio.get_running_loop().run_in_executor(self._executor, fn, db)
        except sqlite3.Error as exc:
            # By SQLite's result code (busy, locked, I/O error, full, cannot open, …), never by its message: a
            # mistake in a statement stays the error it is.
            if not sqlite_unreachable(exc):
                raise
            self._outage.failed(exc)
            raise StoreUnavailable(f"SQLite store at {self.path}: {exc}") from exc
        self._outage.answered()
        return result

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")

        def connect() -> sqlite3.Connection:
            if str(self.path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we open transactions ourselves with BEGIN IMMEDIATE, so a writer
            # takes the lock up front instead of failing half-way when another process holds it.
            conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False,
                                   cached_statements=STATEMENT_CACHE)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")  # negative: KiB, not pages
            conn.execute("PRAGMA foreign_keys=ON")
            return conn

        try:
            self._db = await asyncio.get_running_loop().run_in_executor(self._executor, connect)
        except sqlite3.Error as exc:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise StoreUnavailable(f"cannot open SQLite store at {self.path}: {exc}") from exc

    async def close(self) -> None:
        if self._executor is None:
            return
        if self._db is not None:
            db = self._db
            await asyncio.get_running_loop().run_in_executor(self._executor, db.close)
        self._executor.shutdown(wait=True)
        self._executor, self._db = None, None

    async def migrate(self, upto: int | None = None) -> list[int]:
        def apply(db: sqlite3.Connection) -> list[int]:
            applied = []
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            for version, name, sql in migrations("sqlite", upto):
                with _transaction(db):
                    done = db.execute("SELECT 1 FROM schema_migrations WHERE version = ?", [version]).fetchone()
                    if done:
                        continue
                    for statement in _statements(sql):
                        db.execute(statement)
                    db.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, datetime('now'))",
                        [version, name],
                    )
                    applied.append(version)
            return applied

        return await self._call(apply)

    async def ping(self) -> None:
        await self._call(lambda db: db.execute("SELECT 1").fetchone())

    async def save_health_run(self, run: HealthRun) -> int:
        def save(db: sqlite3.Connection) -> int:
            with _transaction(db):
                row = rows.run_row(run, _encode)
                cursor = db.execute(_insert_sql("health_runs", row), list(row.values()))
                run_id = _inserted_id(cursor)
                for result in rows.result_rows(run_id, run, _encode):
                    db.execute(_insert_sql("health_results", result), list(result.values()))
            return run_id

        return await self._call(save)

    async def get_health_run(self, run_id: int) -> HealthRun | None:
        def get(db: sqlite3.Connection) -> HealthRun | None:
            found = _query(db, "SELECT * FROM health_runs WHERE id = ?", [run_id])
            if not found:
                return None
            row = found[0]
            results = _query(db, "SELECT * FROM health_results WHERE run_id = ?", [run_id])
            return rows.run_from_rows(row, results, _decode)

        return await self._call(get)

    async def health_runs_since(self, since: datetime, limit: int = 500) -> list[HealthRun]:
        def query(db: sqlite3.Connection) -> list[HealthRun]:
            runs = _query(
                db,
                "SELECT * FROM health_runs WHERE started_at >= ? ORDER BY started_at DESC, id DESC LIMIT ?",
                [_encode(rows.utc(since)), limit],
            )
            if not runs:
                return []
            ids = [run["id"] for run in runs]
            marks = ",".join("?" for _ in ids)
            grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for result in _query(db, f"SELECT * FROM health_results WHERE run_id IN ({marks})", ids):
                grouped[result["run_id"]].append(result)
            return [rows.run_from_rows(run, grouped[run["id"]], _decode) for run in runs]

        return await self._call(query)

    async def audit_entries(self, *, since: datetime | None = None, limit: int = 100) -> list[AuditEntry]:
        def query(db: sqlite3.Connection) -> list[AuditEntry]:
            floor = _encode(rows.utc(since)) if since else ""
            found = _query(db, "SELECT * FROM audit_log WHERE at >= ? ORDER BY at DESC, id DESC LIMIT ?", [floor, limit])
            return [rows.audit_from_row(row, _decode) for row in found]

        return await self._call(query)

    async def claim(self, key: str, at: datetime) -> bool:
        def insert(db: sqlite3.Connection) -> bool:
            with _transaction(db):
                cursor = db.execute(
                    "INSERT OR IGNORE INTO idempotency_keys (key, created_at) VALUES (?, ?)",
                    [key, _encode(rows.utc(at))],
                )
                return cursor.rowcount == 1

        return await self._call(insert)


    # --- primitives for the shared queries (bot/store/actions_sql.py) ------------------------------------

    def _enc(self, value: datetime | None) -> str | None:
        return _encode(rows.utc(value)) if value is not None else None

    def _dec(self, value: Any) -> datetime | None:
        return _decode(value) if value is not None else None

    async def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return await self._call(lambda db: _query(db, sql, args))

    async def _execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        def run(db: sqlite3.Connection) -> int:
            with _transaction(db):
                return db.execute(sql, list(args)).rowcount

        return await self._call(run)

    async def _atomic(self, statements: Sequence[Statement]) -> list[list[dict[str, Any]]]:
        def run(db: sqlite3.Connection) -> list[list[dict[str, Any]]]:
            results = []
            with _transaction(db):
                for sql, args in statements:
                    results.append(_query(db, sql, args))
            return results

        return await self._call(run)


class _transaction:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any error."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        if not exc_type:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:
            # SQLite rolls back by itself on some errors (a full disk, an I/O error): a second ROLLBACK would fail
            # and hide the error that matters.
            self.conn.execute("ROLLBACK")


def _query(db: sqlite3.Connection, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """A statement's rows as dicts by column name (the shape the shared queries in bot/store/*_sql.py read)."""
    cursor = db.execute(sql, list(args))
    names = [column[0] for column in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _inserted_id(cursor: sqlite3.Cursor) -> int:
    """The rowid an INSERT just wrote (typeshed types `lastrowid` as optional: it is None before any insert)."""
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _insert_sql(table: str, row: dict[str, Any]) -> str:
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    return f"INSERT INTO {table} ({columns}) VALUES ({marks})"


def _statements(sql: str) -> list[str]:
    # Migration files hold plain DDL with no semicolons inside statements; comments are dropped first.
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    return [statement.strip() for statement in "\n".join(lines).split(";") if statement.strip()]
