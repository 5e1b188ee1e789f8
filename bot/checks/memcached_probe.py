"""The memcached check's wire side (aiomcache): one `stats` call. Imported only when a catalog has a memcached check
(`bot.adapters`); judging the numbers is `bot.checks.memcached`.
"""

from __future__ import annotations

import aiomcache

from bot.checks._net import socket_error
from bot.checks.base import Probe, Status
from bot.checks.memcached import split_address


async def stats(address: str) -> dict[bytes, bytes | None] | Probe:
    """memcached's `stats`, or the critical Probe that says why they could not be read."""
    host, port = split_address(address)
    # One connection: a check needs no pool, and memcached counts each one in curr_connections.
    client = aiomcache.Client(host, port, pool_size=1)
    try:
        found: dict[bytes, bytes | None] = await client.stats()
    except OSError as exc:
        return Probe(Status.CRITICAL, f"cannot connect to {address}: {socket_error(exc)}")
    except aiomcache.exceptions.ClientException as exc:
        return Probe(Status.CRITICAL, f"{address} did not answer `stats` as memcached does: {_short(exc)}")
    finally:
        await client.close()
    return found


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]
