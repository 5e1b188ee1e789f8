"""The PostgreSQL store: an asyncpg pool, opened at start-up and closed at clean-up.

Migrations take a transaction-scoped advisory lock, so replicas starting together apply them once.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from bot.audit import AuditEntry
from bot.errors import StoreUnavailable
from bot.health import HealthRun
from bot.store import rows
from bot.store.actions_sql import ActionQueries
from bot.store.alerts_sql import AlertQueries
from bot.store.audit_sql import AuditQueries
from bot.store.base import migrations
from bot.store.incidents_sql import IncidentQueries
from bot.store.outage import OutageLog, postgres_unreachable, quiet_pool_retries
from bot.store.schedule_sql import ScheduleQueries
from bot.store.sql import Statement

_MIGRATION_LOCK = zlib.crc32(b"opsbot:migrations")

_UNAVAILABLE = (OSError, asyncpg.InterfaceError, asyncpg.exceptions.CannotConnectNowError,
                asyncpg.exceptions.ConnectionDoesNotExistError)


def _same(value: datetime) -> datetime:
    return value


class PostgresStore(ActionQueries, IncidentQueries, ScheduleQueries, AuditQueries, AlertQueries):
    # A burst's audit entries go in up to three transactions at once, each on its own connection of the pool (ten), so
    # they do not queue behind one transaction's round trips (bench/compare.py --postgres: ack p50 56–69 → 31–36 ms).
    _group_writers = 3

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self._dsn = dsn
        self._sizes = (min_size, max_size)
        self._pool: asyncpg.Pool | None = None
        self._outage = OutageLog("the PostgreSQL store")

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreUnavailable("the PostgreSQL store is not open")
        return self._pool

    @asynccontextmanager
    async def _connection(self, timeout: float | None = None) -> AsyncIterator[PoolConnectionProxy]:
        """A pooled connection; losing the server anywhere in the block (acquiring, a query, a commit) becomes
        one `StoreUnavailable`, and the outage is logged once, not once per query."""
        pool = self.pool
        try:
            async with pool.acquire(timeout=timeout) as conn:
                yield conn
        except StoreUnavailable:
            raise
        except Exception as exc:
            if not postgres_unreachable(exc):
                raise
            self._outage.failed(exc)
            raise StoreUnavailable(f"PostgreSQL did not answer ({type(exc).__name__})") from exc
        self._outage.answered()

    async def open(self) -> None:
        quiet_pool_retries()
        try:
            self._pool = await asyncpg.create_pool(
                # timeout: a server that does not answer a new connection is an outage in 10 s, not asyncpg's 60.
                self._dsn, min_size=self._sizes[0], max_size=self._sizes[1], command_timeout=30, timeout=10
            )
        except (*_UNAVAILABLE, asyncpg.PostgresError) as exc:
            # asyncpg's messages carry host, user and database, never the password.
            raise StoreUnavailable(f"cannot connect to PostgreSQL: {exc}") from None

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def migrate(self, upto: int | None = None) -> list[int]:
        applied = []
        async with self._connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
            for version, name, sql in migrations("postgres", upto):
                if version in done:
                    continue
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
                applied.append(version)
        return applied

    async def ping(self) -> None:
        try:
            async with self._connection(timeout=5) as conn:
                await conn.fetchval("SELECT 1", timeout=5)
        except (*_UNAVAILABLE, asyncpg.PostgresError, TimeoutError) as exc:
            raise StoreUnavailable(f"PostgreSQL did not answer: {type(exc).__name__}") from exc

    async def save_health_run(self, run: HealthRun) -> int:
        row = rows.run_row(run, _same)
        async with self._connection() as conn, conn.transaction():
            run_id = await conn.fetchval(_insert_sql("health_runs", row) + " RETURNING id", *row.values())
            results = rows.result_rows(run_id, run, _same)
            if results:
                await conn.executemany(_insert_sql("health_results", results[0]), [list(r.values()) for r in results])
        return int(run_id)

    async def get_health_run(self, run_id: int) -> HealthRun | None:
        async with self._connection() as conn:
            row = await conn.fetchrow("SELECT * FROM health_runs WHERE id = $1", run_id)
            if row is None:
                return None
            results = await conn.fetch("SELECT * FROM health_results WHERE run_id = $1", run_id)
        return rows.run_from_rows(row, results, _same)

    async def health_runs_since(self, since: datetime, limit: int = 500) -> list[HealthRun]:
        async with self._connection() as conn:
            runs = await conn.fetch(
                "SELECT * FROM health_runs WHERE started_at >= $1 ORDER BY started_at DESC, id DESC LIMIT $2",
                rows.utc(since),
                limit,
            )
            if not runs:
                return []
            results = await conn.fetch(
                "SELECT * FROM health_results WHERE run_id = ANY($1::bigint[])", [run["id"] for run in runs]
            )
        grouped: dict[int, list[Any]] = defaultdict(list)
        for result in results:
            grouped[result["run_id"]].append(result)
        return [rows.run_from_rows(run, grouped[run["id"]], _same) for run in runs]

    async def audit_entries(self, *, since: datetime | None = None, limit: int = 100) -> list[AuditEntry]:
        async with self._connection() as conn:
            found = await conn.fetch(
                "SELECT * FROM audit_log WHERE $1::timestamptz IS NULL OR at >= $1 ORDER BY at DESC, id DESC LIMIT $2",
                rows.utc(since) if since else None,
                limit,
            )
        return [rows.audit_from_row(row, _same) for row in found]

    # --- primitives for the shared queries (bot/store/actions_sql.py) ------------------------------------

    def _enc(self, value: datetime | None) -> datetime | None:
        return rows.utc(value) if value is not None else None

    def _dec(self, value: Any) -> datetime | None:
        assert value is None or isinstance(value, datetime)  # asyncpg reads timestamptz as an aware datetime
        return value

    async def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        async with self._connection() as conn:
            return [dict(row) for row in await conn.fetch(_numbered(sql), *args)]

    async def _execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        async with self._connection() as conn:
            status = await conn.execute(_numbered(sql), *args)
        return int(status.rsplit(" ", 1)[-1])  # "UPDATE 1", "INSERT 0 1"

    async def _atomic(self, statements: Sequence[Statement]) -> list[list[dict[str, Any]]]:
        async with self._connection() as conn, conn.transaction():
            return [[dict(row) for row in await conn.fetch(_numbered(sql), *args)] for sql, args in statements]

    async def claim(self, key: str, at: datetime) -> bool:
        async with self._connection() as conn:
            inserted = await conn.fetchval(
                "INSERT INTO idempotency_keys (key, created_at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING key",
                key,
                rows.utc(at),
            )
        return inserted is not None


def _numbered(sql: str) -> str:
    """The shared queries use `?`; asyncpg wants $1, $2, …"""
    parts = sql.split("?")
    return "".join(part + (f"${index}" if index < len(parts) else "") for index, part in enumerate(parts, start=1))


def _insert_sql(table: str, row: dict[str, Any]) -> str:
    columns = ", ".join(row)
    marks = ", ".join(f"${index}" for index in range(1, len(row) + 1))
    return f"INSERT INTO {table} ({columns}) VALUES ({marks})"
