"""Cache flushes: FLUSHDB on one Redis database, flush_all on a Memcached server, each counting what it held.

It never decides whether a flush is wise (the actions domain and its approvals do) and never reads cache values.
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from pymemcache.client.base import Client as MemcacheClient
from pymemcache.exceptions import MemcacheError
from redis.exceptions import RedisError, ResponseError

from bot.executors._tools import scrub
from bot.executors.base import Effect, ExecutorError

REDIS_DATABASES = range(16)
FLUSH_UNKNOWN = "unknown: the connection failed after the flush was sent; the cache may or may not have been emptied"


async def flush_redis(url: str, db: int, timeout: float = 5) -> int:
    """FLUSHDB on database `db` of the server at `url` (whatever database the URL names); returns how many keys
    it held just before."""
    if db not in REDIS_DATABASES:
        raise ExecutorError(
            f"Redis database {db} is out of range (0-{REDIS_DATABASES[-1]})", state="unchanged: nothing was flushed",
            effect=Effect.UNTOUCHED,
        )
    where, secrets = _redis_where(url, db), _redis_secrets(url)
    try:
        client = aioredis.from_url(_with_db(url, db), socket_connect_timeout=timeout, socket_timeout=timeout)
    except ValueError as exc:
        raise ExecutorError(f"the Redis URL is not usable: {scrub(str(exc), secrets)}",
                            state="unchanged: nothing was flushed", effect=Effect.UNTOUCHED) from None
    try:
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            raise ExecutorError(
                f"cannot reach Redis at {where}: {_first_line(exc, secrets)}",
                state=f"unchanged: could not reach Redis at {where}", effect=Effect.UNTOUCHED,
            ) from None
        try:
            # MULTI/EXEC: the count and the flush see the same keys, with no write slipping in between.
            async with client.pipeline(transaction=True) as pipe:
                # redis-py types a pipeline's commands as awaitables; on a pipeline they return it, to chain.
                held, _ = await pipe.dbsize().flushdb().execute()  # type: ignore[attr-defined]
        except ResponseError as exc:
            # A refused command (renamed FLUSHDB, ACL, read-only replica) aborts the whole MULTI/EXEC.
            raise ExecutorError(
                f"Redis at {where} refused FLUSHDB: {_first_line(exc, secrets)}",
                state="unchanged: Redis refused the flush", effect=Effect.UNTOUCHED,
            ) from None
        except (RedisError, OSError) as exc:
            raise ExecutorError(f"FLUSHDB on Redis at {where} failed: {_first_line(exc, secrets)}", state=FLUSH_UNKNOWN,
                                effect=Effect.UNKNOWN) from None
    finally:
        await client.aclose()
    return int(held)


async def flush_memcached(host: str, port: int, timeout: float = 5) -> int:
    """flush_all on the Memcached server; returns its `curr_items` just before.

    Memcached counts expired and flushed items until it reclaims their memory, so the number can include those.
    """
    # pymemcache blocks; both calls are bounded by the socket timeout.
    return await asyncio.to_thread(_flush_memcached, host, port, timeout)


def _flush_memcached(host: str, port: int, timeout: float) -> int:
    where = f"{host}:{port}"
    client = MemcacheClient((host, port), connect_timeout=timeout, timeout=timeout)
    try:
        try:
            stats = client.stats()
        except (MemcacheError, OSError) as exc:
            raise ExecutorError(
                f"cannot reach Memcached at {where}: {_first_line(exc, [])}",
                state=f"unchanged: could not reach Memcached at {where}", effect=Effect.UNTOUCHED,
            ) from None
        held = int(stats.get(b"curr_items", 0))
        try:
            client.flush_all(noreply=False)
        except (MemcacheError, OSError) as exc:
            raise ExecutorError(f"flush_all on Memcached at {where} failed: {_first_line(exc, [])}", state=FLUSH_UNKNOWN,
                                effect=Effect.UNKNOWN) from None
    finally:
        client.close()
    return held


def _with_db(url: str, db: int) -> str:
    """The URL pointing at `db`: redis-py lets the URL's own database win over a `db=` argument."""
    parts = urlsplit(url.strip())
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key != "db"]
    if parts.scheme == "unix":
        return urlunsplit(parts._replace(query=urlencode([*query, ("db", str(db))])))
    return urlunsplit(parts._replace(path=f"/{db}", query=urlencode(query)))


def _redis_where(url: str, db: int) -> str:
    try:
        parts = urlsplit(url.strip())
        if parts.scheme == "unix":
            return f"{parts.path} db {db}"
        return f"{parts.hostname or 'localhost'}:{parts.port or 6379}/{db}"
    except ValueError:
        return f"the server in the URL, db {db}"


def _redis_secrets(url: str) -> list[str]:
    try:
        password = urlsplit(url.strip()).password
    except ValueError:
        return [url.strip()]
    if not password:
        return []
    return [unquote(password), password, quote(unquote(password), safe="")]


def _first_line(exc: BaseException, secrets: list[str]) -> str:
    if isinstance(exc, TimeoutError):  # socket.timeout too; its text is often empty
        return "timed out"
    text = str(exc).strip() or type(exc).__name__
    return scrub(text.splitlines()[0], secrets)[:200]
