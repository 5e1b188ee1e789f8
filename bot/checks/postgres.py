"""PostgreSQL check: `SELECT 1`, then connections in use against `max_connections`.

Thresholds default to the runbooks' table (80 % warns, 95 % is critical).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bot import adapters
from bot.checks._dsn import DsnSource, url_field
from bot.checks.base import CheckDeps, CheckSpec, Probe, Thresholds


class PostgresCheck(DsnSource, CheckSpec):
    """Connects and runs `SELECT 1` (the runbooks' `pg_isready`), then grades the connections in use against
    `max_connections`; no connection is critical."""

    type: Literal["postgres"]
    dsn: str | None = url_field("postgresql://user@host:5432/db, without a password")
    dsn_env: str | None = url_field("environment variable holding the DSN")
    connections_percent: Thresholds = Field(default=Thresholds(warning=80, critical=95),
                                            description="connections in use, as a % of max_connections")

    def default_label(self) -> str:
        return "postgres"

    def secret_envs(self) -> list[str]:
        return self.url_envs()

    async def probe(self, deps: CheckDeps) -> Probe:
        # asyncpg is imported only for a catalog with a postgres or sql check (`bot.adapters`).
        probe: Probe = await adapters.module("bot.checks.postgres_probe").connections(
            self.connection_url(deps), self.timeout, self.where(), self.connections_percent)
        return probe
