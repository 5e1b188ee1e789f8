"""MySQL/MariaDB check: ping, then connections in use (`Threads_connected`) against `max_connections`.

Also holds the connection helpers the `sql` check shares for MySQL/MariaDB; it runs no catalog query itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import pymysql
from pydantic import field_validator

from bot import adapters
from bot.checks._dsn import DsnSource, url_field
from bot.checks._net import socket_error
from bot.checks._percent import PercentThresholds
from bot.checks._sql_guard import superuser_warning
from bot.checks.base import (
    CheckDeps,
    CheckSpec,
    Probe,
    Status,
    Thresholds,
    limit_note,
    percent,
)
from bot.executors.databases import MysqlConnection, parse_mysql_dsn

if TYPE_CHECKING:
    import aiomysql

MYSQL_SCHEMES = ("mysql", "mariadb")


class MysqlCheck(DsnSource, CheckSpec):
    type: Literal["mysql"]
    dsn: str | None = url_field("mysql://user@host:3306/db (or mariadb://), without a password")
    dsn_env: str | None = url_field("environment variable holding the DSN")
    connections_percent: PercentThresholds = Thresholds(warning=80, critical=95)

    @field_validator("dsn")
    @classmethod
    def _mysql_url(cls, dsn: str | None) -> str | None:
        if dsn is not None:
            parse_mysql_dsn(dsn, require_database=False)
        return dsn

    def default_label(self) -> str:
        return "mysql"

    def secret_envs(self) -> list[str]:
        return self.url_envs()

    def config_warnings(self) -> list[str]:
        return superuser_warning(self.dsn)

    async def probe(self, deps: CheckDeps) -> Probe:
        try:
            target = parse_mysql_dsn(self.connection_url(deps), require_database=False)
        except ValueError:
            return not_a_url(self.dsn_env, "mysql://")
        try:
            conn = await connect(target, self.timeout)
        except (ValueError, OverflowError):
            return not_a_url(self.dsn_env, "mysql://")
        except (pymysql.MySQLError, OSError) as exc:
            return connect_failure(exc, self.where(), self.timeout)
        try:
            await conn.ping(reconnect=False)
            async with conn.cursor() as cursor:
                await cursor.execute("SHOW GLOBAL STATUS LIKE 'Threads_connected'")
                row = await cursor.fetchone()
                await cursor.execute("SELECT @@max_connections")
                (limit,) = await cursor.fetchone()
        except (pymysql.MySQLError, OSError) as exc:
            return Probe(Status.CRITICAL, f"query failed on {self.where()}: {describe(exc)}")
        finally:
            conn.close()
        in_use, limit = int(row[1]) if row else 0, int(limit)
        used = percent(in_use, limit)
        status = self.connections_percent.grade(used)
        note = limit_note(status, self.connections_percent, " %")
        return Probe(status, f"{in_use} of {limit} connections in use ({used:.0f} %){note}")


async def connect(target: MysqlConnection, timeout: float) -> aiomysql.Connection:
    """One connection, autocommit off. `connect_timeout` bounds the TCP connect only; a server that accepts and
    then says nothing is left to the health runner's overall timeout."""
    # aiomysql is imported only for a catalog with a mysql check (`bot.adapters`).
    connection: aiomysql.Connection = await adapters.module("aiomysql").connect(
        host=target.host, port=target.port, user=target.user or "root", password=target.password or "",
        db=target.database or None, connect_timeout=timeout, autocommit=False,
    )
    return connection


def not_a_url(dsn_env: str | None, scheme: str) -> Probe:
    """The check's DSN cannot be used: named by its variable (or `dsn`), never quoted, since it holds the password."""
    return Probe(Status.ERROR, f"{f'${dsn_env}' if dsn_env else '`dsn`'} is not a valid {scheme} URL")


def connect_failure(exc: BaseException, where: str, timeout: float) -> Probe:
    """Why connecting failed, as a check's result: its own connect timeout firing is no answer, not a refusal."""
    if isinstance(exc, TimeoutError) or isinstance(exc.__cause__, TimeoutError):
        return Probe(Status.ERROR, f"no answer within {timeout:g} s from {where}")
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

