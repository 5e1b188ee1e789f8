"""MySQL/MariaDB check: ping, then connections in use (`Threads_connected`) against `max_connections`.

The client side (pymysql, aiomysql), shared with the `sql` check, is `bot.checks.mysql_probe`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from bot import adapters
from bot.checks._dsn import DsnSource, url_field
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
from bot.executors.mysql_dsn import parse_mysql_dsn


class MysqlCheck(DsnSource, CheckSpec):
    """MySQL or MariaDB: a ping, then `Threads_connected` against `max_connections` ("42 of 151 connections in use
    (28 %)"). A monitoring user with PROCESS is enough (check-config warns about root); the database is optional."""

    type: Literal["mysql"]
    dsn: str | None = url_field("mysql://user@host:3306/db (or mariadb://), without a password")
    dsn_env: str | None = url_field("environment variable holding the DSN")
    connections_percent: PercentThresholds = Field(default=Thresholds(warning=80, critical=95),
                                                   description="Threads_connected as a % of max_connections")

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
        # pymysql and aiomysql are imported only for a catalog with a mysql or sql check (`bot.adapters`).
        found: tuple[int, int] | Probe = await adapters.module("bot.checks.mysql_probe").connections(
            target, self.timeout, self.where(), self.dsn_env)
        if isinstance(found, Probe):
            return found
        in_use, limit = found
        used = percent(in_use, limit)
        status = self.connections_percent.grade(used)
        note = limit_note(status, self.connections_percent, " %")
        return Probe(status, f"{in_use} of {limit} connections in use ({used:.0f} %){note}")


def not_a_url(dsn_env: str | None, scheme: str) -> Probe:
    """The check's DSN cannot be used: named by its variable (or `dsn`), never quoted, since it holds the password."""
    return Probe(Status.ERROR, f"{f'${dsn_env}' if dsn_env else '`dsn`'} is not a valid {scheme} URL")


def no_answer(where: str, timeout: float) -> Probe:
    """The server did not answer within the check's own timeout: no answer, not a refusal."""
    return Probe(Status.ERROR, f"no answer within {timeout:g} s from {where}")
