"""Redis check: `PING`, then used memory against `maxmemory` when one is set."""

from __future__ import annotations

from typing import Literal

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.checks._dsn import DsnSource, url_field
from bot.checks.base import CheckDeps, CheckSpec, Probe, Status, Thresholds, percent


class RedisCheck(DsnSource, CheckSpec):
    _url_field = "url"
    type: Literal["redis"]
    url: str | None = url_field("redis://host:6379/0, without a password")
    url_env: str | None = url_field("environment variable holding the Redis URL")
    memory_percent: Thresholds = Thresholds(warning=80, critical=90)

    def default_label(self) -> str:
        return "redis"

    def secret_envs(self) -> list[str]:
        return self.url_envs()

    async def probe(self, deps: CheckDeps) -> Probe:
        client = aioredis.from_url(
            self.connection_url(deps), socket_connect_timeout=self.timeout, socket_timeout=self.timeout
        )
        try:
            await client.ping()
            info = await client.info("memory")
        except (RedisError, OSError) as exc:
            return Probe(Status.CRITICAL, f"cannot reach {self.where()}: {str(exc).splitlines()[0][:200]}")
        finally:
            await client.aclose()
        used, limit = int(info.get("used_memory", 0)), int(info.get("maxmemory", 0))
        if not limit:
            return Probe(Status.OK, f"PONG, {_mib(used)} used, no maxmemory set")
        share = percent(used, limit)
        status = self.memory_percent.grade(share)
        return Probe(status, f"PONG, {_mib(used)} of {_mib(limit)} maxmemory ({share:.0f} %)")


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"
