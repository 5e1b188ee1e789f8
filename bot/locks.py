"""Locks and leases: one replica at a time may act on a service. Redis when REDIS_URL is set (`bot.redis_locks`,
imported only then), else the store.

Every lease carries a fencing token that only grows. If the lock store cannot be reached, nothing runs:
`LockUnavailable` is raised (fail closed) and the user is told so.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Counter, Gauge

from bot.clock import Clock
from bot.errors import InfrastructureError, StoreUnavailable
from bot.runs.ports import LeaseStore


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
    store: LeaseStore
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

    def __init__(self, store: LeaseStore, clock: Clock, owner: str) -> None:
        self.store, self.clock, self.owner = store, clock, owner

    async def acquire(self, name: str, ttl: float) -> StoreLease | None:
        try:
            token = await self.store.acquire_lease(name, self.owner, ttl, self.clock.now())
        except StoreUnavailable as exc:
            raise LockUnavailable("the database") from exc
        return StoreLease(self.store, self.clock, name, self.owner, token) if token is not None else None


class LockServer(Protocol):
    """A shared lock server (Redis, `bot.redis_locks`), connected at start-up when REDIS_URL is set."""

    def locks(self, owner: str) -> Locks:
        """Leases on this server, held by `owner`."""

    async def readiness(self) -> str:
        """"ok", or why the server cannot be reached."""

    async def close(self) -> None: ...


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
