"""Redis check: `PING`, used memory against `maxmemory` when one is set, and the length of named lists (queues).

It reads only; emptying a dead-letter queue is a runbook's job."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from bot import adapters
from bot.checks._dsn import DsnSource, url_field
from bot.checks.base import (
    CheckDeps,
    CheckSpec,
    Probe,
    Thresholds,
)


class RedisCheck(DsnSource, CheckSpec):
    """`PING`, used memory against `maxmemory` (when one is set), and `LLEN` of each key in `lists`; the worst of
    them wins. A missing list key counts as 0; a key of another type is an error."""

    _url_field = "url"
    type: Literal["redis"]
    url: str | None = url_field("redis://host:6379/0, without a password")
    url_env: str | None = url_field("environment variable holding the Redis URL")
    memory_percent: Thresholds = Field(default=Thresholds(warning=80, critical=90),
                                       description="used memory as a % of maxmemory; not graded without a maxmemory")
    lists: dict[Annotated[str, Field(min_length=1)], Thresholds | None] = Field(
        default_factory=dict, description="key -> limits on its LLEN (a length AT a level reaches it); a key with no "
                                          "limits (`key:` with nothing after it) has its length shown, never graded")

    def default_label(self) -> str:
        return "redis"

    def secret_envs(self) -> list[str]:
        return self.url_envs()

    async def probe(self, deps: CheckDeps) -> Probe:
        # redis-py is imported only for a catalog with a redis check (`bot.adapters`).
        probe: Probe = await adapters.module("bot.checks.redis_probe").probe(
            self.connection_url(deps), self.timeout, self.where(), self.memory_percent, self.lists)
        return probe
