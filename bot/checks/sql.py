"""SQL threshold check: one read-only query from the catalog, on PostgreSQL or MySQL/MariaDB, returning one number.

What the query may say is judged at load (`bot.checks._sql_guard`: one SELECT, WITH, VALUES, TABLE or SHOW, none of
the side effects a transaction does not stop). It then runs in a READ ONLY transaction with a server-side statement
timeout and is always rolled back; what the number means (active connections, stuck rows, replication lag) is the
catalog's business, not this module's.
"""

from __future__ import annotations

import asyncio
import decimal
import math
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from bot import adapters
from bot.checks import _sql_guard, mysql
from bot.checks._dsn import DsnSource, url_field
from bot.checks._limits import SERVER_MARGIN, NumberLimits, number
from bot.checks._sql_urls import engine_scheme, url_engine, valid_url
from bot.checks.base import CheckDeps, CheckSpec, Probe, Status, limit_note
from bot.executors.mysql_dsn import parse_mysql_dsn


class SqlCheck(DsnSource, NumberLimits, CheckSpec):
    """One read-only statement starting with SELECT, WITH, VALUES, TABLE or SHOW; its first row's first column is
    the number graded ("12 active connections (limit 10)"); no row or NULL gives `empty`. Refused at load: other
    statements, a second statement (a `;` outside quotes may only end it), `INTO` (OUTFILE/DUMPFILE), `COPY`/`TO
    PROGRAM`, locking reads, functions with side effects (`pg_terminate_backend`, `set_config`, `lo_export`,
    `pg_read_file`, `dblink`, `GET_LOCK`, …), backslashes and MySQL `/*! */` comments. It runs in a READ ONLY
    transaction with a server statement timeout, always rolled back. Connect as a monitoring role, not a superuser
    (check-config warns about an inline `root`/`postgres`): PostgreSQL `CREATE ROLE opsbot_monitor LOGIN IN ROLE
    pg_monitor; ALTER ROLE opsbot_monitor SET default_transaction_read_only = on;` plus SELECT on the tables the
    queries read; MySQL `GRANT SELECT, PROCESS ON *.* TO 'opsbot_monitor'@'%'` (or SELECT on the app's schema)."""

    type: Literal["sql"]
    dsn: str | None = url_field("postgresql://… or mysql://… (mariadb:// too), without a password")
    dsn_env: str | None = url_field("environment variable holding the DSN")
    query: str = Field(min_length=1, description="one read-only statement whose first row's first column is a number")
    unit: str = Field(default="", max_length=60, description="words after the number in the reason")

    @field_validator("dsn")
    @classmethod
    def _known_scheme(cls, dsn: str | None) -> str | None:
        if dsn is None:
            return dsn
        engine = url_engine(dsn)
        if engine is None:
            raise ValueError("`dsn` must be a postgresql://, mysql:// or mariadb:// URL")
        if not valid_url(dsn):
            raise ValueError(f"`dsn` is not a valid {engine_scheme(engine)} URL (one host, a port from 1 to 65535)")
        return dsn

    @field_validator("query")
    @classmethod
    def _read_only(cls, query: str, info: ValidationInfo) -> str:
        # `dsn` is declared before `query`, so an inline URL's engine is known here; a `dsn_env` one is not until
        # the check runs, so the query must then pass as both PostgreSQL and MySQL.
        engine = url_engine(info.data["dsn"]) if info.data.get("dsn") else None
        _sql_guard.check(query, (engine,) if engine else _sql_guard.DIALECTS)
        return query

    def default_label(self) -> str:
        return f"sql {self.unit}".strip()

    def secret_envs(self) -> list[str]:
        return self.url_envs()

    def config_warnings(self) -> list[str]:
        return _sql_guard.superuser_warning(self.dsn)

    async def probe(self, deps: CheckDeps) -> Probe:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        url = self.connection_url(deps)
        engine = url_engine(url)
        if engine is None:
            return Probe(Status.ERROR, f"{self.where()} is neither a postgresql:// nor a mysql:// URL")
        if not valid_url(url):
            return self._not_a_url(engine)
        try:
            query = _sql_guard.check(self.query, (engine,))
        except ValueError as exc:
            return Probe(Status.ERROR, f"the query is refused: {exc}")
        if engine == "postgres":
            found = await self._postgres(url, query, deadline)
        else:
            found = await self._mysql(url, query, deadline)
        if isinstance(found, Probe):
            return found
        return self._grade(found)

    def _grade(self, value: float | None) -> Probe:
        if value is None:
            return self.no_number("the query returned no number (no row, or NULL)")
        status = self.limits.grade(value)
        unit = f" {self.unit}" if self.unit else ""
        return Probe(status, f"{number(value)}{unit}{limit_note(status, self.limits)}")

    def _not_a_url(self, engine: str) -> Probe:
        return mysql.not_a_url(self.dsn_env, engine_scheme(engine))

    # --- PostgreSQL ---------------------------------------------------------------------------------------

    async def _postgres(self, url: str, query: str, deadline: float) -> float | Probe | None:
        # asyncpg is imported only for a catalog with a postgres or sql check (`bot.adapters`).
        read: tuple[Any, str, bool] | Probe = await adapters.module("bot.checks.postgres_probe").first_value(
            url, query, self.timeout, lambda: _budget(deadline, self.timeout), self.where(), self.dsn_env)
        if isinstance(read, Probe):
            return read
        return _first_number(*read)

    # --- MySQL / MariaDB ----------------------------------------------------------------------------------

    async def _mysql(self, url: str, query: str, deadline: float) -> float | Probe | None:
        try:
            target = parse_mysql_dsn(url, require_database=False)
        except ValueError:
            return self._not_a_url("mysql")
        # pymysql and aiomysql are imported only for a catalog with a mysql or sql check (`bot.adapters`).
        read: tuple[Any, str, bool] | Probe = await adapters.module("bot.checks.mysql_probe").first_value(
            target, query, self.timeout, _budget(deadline, self.timeout), self.where(), self.dsn_env,
            engine_scheme("mysql"))
        if isinstance(read, Probe):
            return read
        return _first_number(*read)


def _budget(deadline: float, timeout: float) -> float:
    # The server should give up on the query a little before the health runner gives up on the whole check, so
    # the reason says "statement timeout" (and the server stops working on it even when nobody waits any more).
    return max(0.001, deadline - asyncio.get_running_loop().time() - SERVER_MARGIN * timeout)


def _first_number(value: Any, column: str, no_row: bool) -> float | Probe | None:
    if no_row or value is None:
        return None
    # bool is an int in Python, but "true" is not a count anyone can put a threshold on.
    if isinstance(value, bool) or not isinstance(value, (int, float, decimal.Decimal)):
        return Probe(Status.ERROR, f"the query's first column is {column} ({type(value).__name__}), not a number")
    if not math.isfinite(value):
        return Probe(Status.ERROR, f"the query returned {value}, not a number a threshold can judge")
    return float(value)
