"""Leases on Redis, for replicas sharing a REDIS_URL: the only module of the core that imports redis-py.

Imported at start-up by the composition root (`bot.adapters`, kind `settings:redis`) when REDIS_URL is set, so a
replica without Redis never holds redis-py (nor the OpenTelemetry SDK it loads when installed).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.locks import LockUnavailable

_TOKEN_MEMORY_MS = 30 * 24 * 3600 * 1000  # 30 days

# Only the holder may extend or delete: compare the stored value before touching the key.
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


@dataclass
class RedisLease:
    redis: aioredis.Redis
    key: str
    value: str
    name: str
    token: int

    async def renew(self, ttl: float) -> bool:
        try:
            return bool(await self.redis.eval(_RENEW, 1, self.key, self.value, int(ttl * 1000)))
        except (RedisError, OSError) as exc:
            raise LockUnavailable("Redis") from exc

    async def release(self) -> None:
        try:
            await self.redis.eval(_RELEASE, 1, self.key, self.value)
        except (RedisError, OSError) as exc:
            raise LockUnavailable("Redis") from exc


class RedisLocks:
    """`SET key value NX PX ttl`; the value is owner + fencing token (from INCR, so tokens only grow)."""

    def __init__(self, redis: aioredis.Redis, prefix: str, owner: str) -> None:
        self.redis, self.prefix, self.owner = redis, prefix, owner

    async def acquire(self, name: str, ttl: float) -> RedisLease | None:
        key = f"{self.prefix}lock:{name}"
        try:
            counter = f"{self.prefix}lock-token:{name}"
            async with self.redis.pipeline(transaction=True) as pipe:
                # The counter outlives any lease by far (so tokens still only grow for whoever could hold
                # one), yet one-off names (a scheduled occurrence) do not pile up in Redis forever.
                # redis-py types a pipeline's commands as awaitables; on a pipeline they return it, to chain.
                token = int((await pipe.incr(counter).pexpire(counter, _TOKEN_MEMORY_MS).execute())[0])  # type: ignore[attr-defined]
            value = f"{self.owner}:{token}"
            taken = await self.redis.set(key, value, nx=True, px=int(ttl * 1000))
        except (RedisError, OSError) as exc:
            raise LockUnavailable("Redis") from exc
        return RedisLease(self.redis, key, value, name, token) if taken else None


@dataclass
class RedisServer:
    """The shared Redis connection pool: its leases, its readiness, and closing it (a `bot.locks.LockServer`)."""

    client: aioredis.Redis
    prefix: str

    def locks(self, owner: str) -> RedisLocks:
        return RedisLocks(self.client, self.prefix, owner)

    async def readiness(self) -> str:
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            return f"unreachable: {type(exc).__name__}"
        return "ok"

    async def close(self) -> None:
        await self.client.aclose()


def connect(url: str, prefix: str) -> RedisServer:
    """A pool for `url` (connections open on first use), with 5 s connect and socket timeouts."""
    return RedisServer(aioredis.from_url(url, socket_connect_timeout=5, socket_timeout=5), prefix)
