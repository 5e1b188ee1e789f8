"""MySQL/MariaDB check: ping, then connections in use (`Threads_connected`) against `max_connections`.

Also holds the connection helpers the `sql` check shares for MySQL/MariaDB; it runs no catalog query itself.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import unquote, urlsplit

import aiomysql
import pymysql
from pydantic import field_validator

from bot.checks._dsn import DsnSource, url_field
from bot.checks._net import socket_error
from bot.checks.base import CheckDeps, CheckSpec, Probe, Status, Thresholds, percent
from bot.executors.databases import MysqlConnection

MYSQL_SCHEMES = ("mysql", "mariadb")


class MysqlCheck(DsnSource, CheckSpec):
    type: Literal["mysql"]
    dsn: str | None = url_field("mysql://user@host:3306/db (or mariadb://), without a password")
    dsn_env: str | None = url_field("environment variable holding the DSN")
    connections_percent: Thresholds = Thresholds(warning=80, critical=95)

    @field_validator("dsn")
    @classmethod
    def _mysql_url(cls, dsn: str | None) -> str | None:
        if dsn is not None:
            parse_server_dsn(dsn)
        return dsn

    def default_label(self) -> str:
        return "mysql"

    def secret_envs(self) -> list[str]:
        return self.url_envs()

    async def probe(self, deps: CheckDeps) -> Probe:
        try:
            target = parse_server_dsn(self.connection_url(deps))
        except ValueError as exc:
            return Probe(Status.ERROR, f"{self.where()}: {exc}")
        try:
            conn = await connect(target, self.timeout)
        except (pymysql.MySQLError, OSError) as exc:
            return Probe(Status.CRITICAL, f"cannot connect to {self.where()}: {describe(exc)}")
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
        note = ""
        if status is not Status.OK:
            bound = self.connections_percent.critical if status is Status.CRITICAL else self.connections_percent.warning
            note = f", limit {bound:g} %"
        return Probe(status, f"{in_use} of {limit} connections in use ({used:.0f} %{note})")


def parse_server_dsn(dsn: str) -> MysqlConnection:
    """mysql:// or mariadb:// taken apart; unlike the executors' parser the database may be left out (a check of
    the server needs none). Errors describe the problem, never the value."""
    try:
        parts = urlsplit(dsn.strip())
        port = parts.port
    except ValueError:
        raise ValueError("the DSN is not a mysql:// URL (one host, numeric port)") from None
    if parts.scheme not in MYSQL_SCHEMES:
        raise ValueError("the DSN is not a mysql:// or mariadb:// URL")
    if parts.query:
        raise ValueError("the MySQL DSN must not carry query parameters")
    return MysqlConnection(
        host=parts.hostname or "localhost",
        port=port or 3306,
        database=unquote(parts.path.lstrip("/")),
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


async def connect(target: MysqlConnection, timeout: float) -> aiomysql.Connection:
    """One connection, autocommit off. `connect_timeout` bounds the TCP connect only; a server that accepts and
    then says nothing is left to the health runner's overall timeout."""
    return await aiomysql.connect(
        host=target.host, port=target.port, user=target.user or "root", password=target.password or "",
        db=target.database or None, connect_timeout=timeout, autocommit=False,
    )


def error_code(exc: BaseException) -> int:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else 0


def describe(exc: BaseException) -> str:
    """The server's own message without its error-code tuple; it names the user and host, never the password."""
    args = getattr(exc, "args", ())
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

