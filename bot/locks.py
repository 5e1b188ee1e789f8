"""Locks and leases: one replica at a time may act on a service. Redis when REDIS_URL is set, else the store.

Every lease carries a fencing token that only grows. If the lock store cannot be reached, nothing runs:
`LockUnavailable` is raised (fail closed) and the user is told so.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge
from redis.exceptions import RedisError

from bot.clock import Clock
from bot.errors import InfrastructureError, StoreUnavailable
from bot.store import Store


class LockUnavailable(InfrastructureError):
    def __init__(self, where: str) -> None:
        super().__init__(f"opsbot cannot reach its lock store ({where}), so it will not act: nothing was run. Try again shortly.")


def process_owner() -> str:
    """Who holds a lease: this host and process (so an operator can find it), plus a random part for restarts
    that reuse a pid."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease(Protocol):
    name: str
    token: int

    async def renew(self, ttl: float) -> bool:
        """Extend; False when the lease was lost (expired and taken by someone else)."""

    async def release(self) -> None: ...


class Locks(Protocol):
    async def acquire(self, name: str, ttl: float) -> Lease | None:
        """The lease, or None when someone else holds `name`. Raises LockUnavailable when unreachable."""


@dataclass
class StoreLease:
    store: Store
    clock: Clock
    name: str
    owner: str
    token: int

    async def renew(self, ttl: float) -> bool:
        try:
            return await self.store.renew_lease(self.name, self.owner, self.token, ttl, self.clock.now())
        except StoreUnavailable as exc:
            raise LockUnavailable("the database") from exc

    async def release(self) -> None:
        await self.store.release_lease(self.name, self.owner, self.token)


class StoreLocks:
    """A lease row per name (PostgreSQL or SQLite), taken with one compare-and-set statement."""

    def __init__(self, store: Store, clock: Clock, owner: str) -> None:
        self.store, self.clock, self.owner = store, clock, owner

    async def acquire(self, name: str, ttl: float) -> StoreLease | None:
        try:
            token = await self.store.acquire_lease(name, self.owner, ttl, self.clock.now())
        except StoreUnavailable as exc:
            raise LockUnavailable("the database") from exc
        return StoreLease(self.store, self.clock, name, self.owner, token) if token is not None else None


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


class _LeaseMeter(Protocol):
    """What the lease wrappers count (bot.metrics.Metrics has these)."""

    @property
    def leases_held(self) -> Gauge: ...

    @property
    def leases_lost(self) -> Counter: ...


@dataclass
class CountedLease:
    """A lease that keeps the held gauge and the lost counter: lost when a renewal finds it gone or unreachable."""

    inner: Lease
    meter: _LeaseMeter
    name: str
    token: int
    _held: bool = True

    async def renew(self, ttl: float) -> bool:
        try:
            kept = await self.inner.renew(ttl)
        except LockUnavailable:
            self._lost()
            raise
        if not kept:
            self._lost()
        return kept

    async def release(self) -> None:
        self._let_go()
        await self.inner.release()

    def _lost(self) -> None:
        if self._held:
            self.meter.leases_lost.inc()
        self._let_go()

    def _let_go(self) -> None:
        if self._held:
            self._held = False
            self.meter.leases_held.dec()


@dataclass
class CountedLocks:
    inner: Locks
    meter: _LeaseMeter

    async def acquire(self, name: str, ttl: float) -> CountedLease | None:
        lease = await self.inner.acquire(name, ttl)
        if lease is None:
            return None
        self.meter.leases_held.inc()
        return CountedLease(lease, self.meter, lease.name, lease.token)
