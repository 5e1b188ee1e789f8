"""flush_redis against the real Redis on 127.0.0.1 (database 13, emptied before and after) and flush_memcached
against a private memcached the `memcached` fixture starts on a free port."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis.asyncio as aioredis
from pymemcache.client.base import Client as MemcacheClient

from bot.executors.base import ExecutorError
from bot.executors.caches import flush_memcached, flush_redis
from tests.conftest import REDIS_URL, free_port

DB = 13
PASSWORD = "hunter2-s3cret"


@pytest.fixture
async def redis13() -> AsyncIterator[aioredis.Redis]:
    # Not from_url(REDIS_URL, db=DB): redis-py lets the URL's own database win over db=.
    client = aioredis.from_url(urlunsplit(urlsplit(REDIS_URL)._replace(path=f"/{DB}")))
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture
async def redis_default() -> AsyncIterator[tuple[aioredis.Redis, str]]:
    """The database REDIS_URL names, with one key of this test's own in it (deleted afterwards)."""
    client = aioredis.from_url(REDIS_URL)
    key = f"opsbot-test-caches:{uuid.uuid4().hex}"
    await client.set(key, "keep me")
    yield client, key
    await client.delete(key)
    await client.aclose()


async def test_flush_redis_empties_its_database_and_returns_the_key_count(
    redis13: aioredis.Redis, redis_default: tuple[aioredis.Redis, str]
) -> None:
    await redis13.mset({"a": "1", "b": "2", "c": "3"})
    other, kept = redis_default

    # REDIS_URL names database 0: the flush must go to 13 regardless.
    held = await flush_redis(REDIS_URL, DB)

    assert held == 3
    assert await redis13.dbsize() == 0
    assert await other.get(kept) == b"keep me"


async def test_flush_redis_of_an_empty_database_returns_zero(redis13: aioredis.Redis) -> None:
    assert await flush_redis(REDIS_URL, DB, timeout=2) == 0


@pytest.mark.parametrize("db", [-1, 16])
async def test_flush_redis_refuses_a_database_out_of_range(redis13: aioredis.Redis, db: int) -> None:
    await redis13.set("a", "1")
    with pytest.raises(ExecutorError, match=f"Redis database {db} is out of range") as caught:
        await flush_redis(REDIS_URL, db)
    assert caught.value.state == "unchanged: nothing was flushed"
    assert await redis13.dbsize() == 1


async def test_flush_redis_on_an_unreachable_server_changes_nothing_and_hides_the_password() -> None:
    port = free_port()
    with pytest.raises(ExecutorError, match=f"cannot reach Redis at 127.0.0.1:{port}/{DB}") as caught:
        await flush_redis(f"redis://:{PASSWORD}@127.0.0.1:{port}/0", DB, timeout=1)
    assert caught.value.state == f"unchanged: could not reach Redis at 127.0.0.1:{port}/{DB}"
    assert PASSWORD not in str(caught.value) and PASSWORD not in caught.value.state


async def test_flush_memcached_empties_it_and_returns_the_item_count(memcached: tuple[str, int]) -> None:
    client = MemcacheClient(memcached, connect_timeout=2, timeout=2)
    try:
        for key in ("a", "b", "c"):
            assert client.set(key, "value", noreply=False)

        held = await flush_memcached(*memcached)

        assert held == 3
        assert client.get_many(["a", "b", "c"]) == {}
    finally:
        client.close()


async def test_flush_memcached_on_an_unreachable_server_changes_nothing() -> None:
    port = free_port()
    with pytest.raises(ExecutorError, match=f"cannot reach Memcached at 127.0.0.1:{port}") as caught:
        await flush_memcached("127.0.0.1", port, timeout=1)
    assert caught.value.state == f"unchanged: could not reach Memcached at 127.0.0.1:{port}"
