"""The redis check's client side (redis-py): imported only for a catalog with a redis check (`bot.adapters`)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeout

from bot.checks.base import Probe, Status, Thresholds, limit_note, percent


async def probe(url: str, timeout: float, where: str, memory_percent: Thresholds, lists: dict[str, Thresholds | None]) -> Probe:
    """`PING`, used memory against `maxmemory`, and the length of each list in `lists` (graded when it has limits)."""
    client = aioredis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        await client.ping()
        info = await client.info("memory")
        judged = [_memory(info, memory_percent)]
        for key, limits in lists.items():
            judged.append(await _list_length(client, key, limits))
    except RedisTimeout:
        # The same verdict as the runner's own timeout, whichever of the two fires first.
        raise TimeoutError from None
    except (RedisError, OSError) as exc:
        return Probe(Status.CRITICAL, f"cannot reach {where}: {str(exc).splitlines()[0][:200]}")
    finally:
        await client.aclose()
    return Probe(Status.worst([status for status, _ in judged]), "; ".join(text for _, text in judged))


def _memory(info: dict[str, Any], limits: Thresholds) -> tuple[Status, str]:
    used, limit = int(info.get("used_memory", 0)), int(info.get("maxmemory", 0))
    if not limit:
        return Status.OK, f"PONG, {_mib(used)} used, no maxmemory set"
    share = percent(used, limit)
    status = limits.grade(share)
    return status, f"PONG, {_mib(used)} of {_mib(limit)} maxmemory ({share:.0f} %){limit_note(status, limits, ' %')}"


async def _list_length(client: aioredis.Redis, key: str, limits: Thresholds | None) -> tuple[Status, str]:
    try:
        # LLEN of a missing key is 0: an empty queue and a queue nobody has used yet look the same, as in Redis.
        length = int(await client.llen(key))
    except ResponseError as exc:
        if not str(exc).startswith("WRONGTYPE"):
            return Status.ERROR, f"LLEN {key} failed: {str(exc).splitlines()[0][:200]}"  # e.g. an ACL refusing it
        kind = await client.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        return Status.ERROR, f"{key} is a {kind}, not a list"
    items = "item" if length == 1 else "items"
    if limits is None:  # shown for the reader, judged by nobody
        return Status.OK, f"{key}: {length} {items}"
    status = limits.grade(length)
    return status, f"{key}: {length} {items}{limit_note(status, limits)}"


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"
