"""Locks on both implementations: one holder, fencing tokens that grow, expiry, and failing closed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from bot.clock import ManualClock
from bot.locks import Locks, LockUnavailable, StoreLocks
from bot.redis_locks import RedisLocks
from bot.store import Store, create_store
from tests.conftest import REDIS_URL, free_port


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis_client: aioredis.Redis) -> AsyncIterator[str]:
    value = f"opsbot-test-{uuid.uuid4().hex[:8]}:"
    yield value
    keys = [key async for key in redis_client.scan_iter(f"{value}*")]
    if keys:
        await redis_client.delete(*keys)


@pytest.fixture(params=["redis", "sqlite", "postgres"])
def backing(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "redis":
        return "redis"
    return f"sqlite:///{tmp_path / 'locks.db'}" if request.param == "sqlite" else str(request.getfixturevalue("pg_database"))


@pytest.fixture
async def locks_pair(backing: str, redis_client: aioredis.Redis,
                     prefix: str) -> AsyncIterator[tuple[Locks, Locks, ManualClock | None]]:
    """Two replicas' lock clients on the same backing store."""
    if backing == "redis":
        yield RedisLocks(redis_client, prefix, "replica-a"), RedisLocks(redis_client, prefix, "replica-b"), None
        return
    store = create_store(backing)
    await store.open()
    await store.migrate()
    clock = ManualClock(datetime(2026, 11, 23, tzinfo=UTC))
    yield StoreLocks(store, clock, "replica-a"), StoreLocks(store, clock, "replica-b"), clock
    await store.close()


async def test_one_holder_at_a_time_and_release_frees_it(locks_pair) -> None:
    a, b, _ = locks_pair
    results = await asyncio.gather(a.acquire("service:api", 30), b.acquire("service:api", 30))
    winners = [lease for lease in results if lease is not None]
    assert len(winners) == 1
    loser = b if results[0] is not None else a
    assert await loser.acquire("service:api", 30) is None
    await winners[0].release()
    again = await loser.acquire("service:api", 30)
    assert again is not None and again.token > winners[0].token


async def test_an_expired_lease_can_be_taken_and_the_old_holder_cannot_renew(locks_pair) -> None:
    a, b, clock = locks_pair
    first = await a.acquire("service:db", 0.2)
    assert first is not None
    if clock is not None:
        clock.advance(1)
    else:
        await asyncio.sleep(0.3)
    second = await b.acquire("service:db", 30)
    assert second is not None and second.token > first.token
    assert await first.renew(30) is False
    assert await second.renew(30) is True


async def test_unreachable_redis_fails_closed() -> None:
    client = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    try:
        with pytest.raises(LockUnavailable, match="nothing was run"):
            await RedisLocks(client, "x:", "me").acquire("service:api", 30)
    finally:
        await client.aclose()


async def test_closed_store_fails_closed(store: Store) -> None:
    locks = StoreLocks(store, ManualClock(datetime(2026, 11, 23, tzinfo=UTC)), "me")
    await store.close()
    with pytest.raises(LockUnavailable):
        await locks.acquire("service:api", 30)
    await store.open()
