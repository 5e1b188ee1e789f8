"""PostgreSQL check: `SELECT 1`, then connections in use against `max_connections`.

Thresholds default to the runbooks' table (80 % warns, 95 % is critical).
"""

from __future__ import annotations

from typing import Literal

import asyncpg

from bot.checks._dsn import DsnSource, url_field
from bot.checks.base import CheckDeps, CheckSpec, Probe, Status, Thresholds, percent


class PostgresCheck(DsnSource, CheckSpec):
    type: Literal["postgres"]
    dsn: str | None = url_field("postgresql://user@host:5432/db, without a password")
    dsn_env: str | None = url_field("environment variable holding the DSN")
    connections_percent: Thresholds = Thresholds(warning=80, critical=95)

    def default_label(self) -> str:
        return "postgres"

    def secret_envs(self) -> list[str]:
        return self.url_envs()

    async def probe(self, deps: CheckDeps) -> Probe:
        try:
            conn = await asyncpg.connect(self.connection_url(deps), timeout=self.timeout)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            return Probe(Status.CRITICAL, f"cannot connect to {self.where()}: {_describe(exc)}")
        try:
            await conn.fetchval("SELECT 1")
            # Background workers (checkpointer, walwriter…) are not connections clients can run out of.
            in_use = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
            limit = int(await conn.fetchval("SHOW max_connections"))
        except asyncpg.PostgresError as exc:
            return Probe(Status.CRITICAL, f"query failed on {self.where()}: {_describe(exc)}")
        finally:
            await conn.close()
        used = percent(in_use, limit)
        status = self.connections_percent.grade(used)
        note = ""
        if status is not Status.OK:
            bound = self.connections_percent.critical if status is Status.CRITICAL else self.connections_percent.warning
            note = f", limit {bound:g} %"
        return Probe(status, f"{in_use} of {limit} connections in use ({used:.0f} %{note})")


def _describe(exc: BaseException) -> str:
    # asyncpg's messages name the server, user and database but never the password.
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
