"""The `memcached` check against a real memcached: hit ratio, evictions between runs, connections, failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import aiohttp
import pytest
from pymemcache.client.base import Client as Memcache

from bot.catalog_loading import CatalogInvalid, parse_catalog
from bot.checks import CheckDeps, Status
from bot.clock import ManualClock
from tests.checks import run
from tests.conftest import free_port


@pytest.fixture
def cache(memcached: tuple[str, int]) -> Iterator[Memcache]:
    # Every command waits for memcached's answer: with pymemcache's default `noreply` a set returns before memcached
    # has stored it (or evicted for it), and a check run right after would read counters from before it.
    client = Memcache(memcached, default_noreply=False)
    client.set("present", b"x")
    yield client
    client.close()


def traffic(cache: Memcache, hits: int, misses: int) -> None:
    for _ in range(hits):
        assert cache.get("present") == b"x"
    for index in range(misses):
        assert cache.get(f"absent-{index}") is None


def address(memcached: tuple[str, int]) -> str:
    return f"{memcached[0]}:{memcached[1]}"


async def test_good_hit_ratio_is_ok(memcached: tuple[str, int], cache: Memcache, deps: CheckDeps) -> None:
    traffic(cache, hits=90, misses=10)
    assert await run({"type": "memcached", "address": address(memcached)},
                     deps) == (Status.OK, "hit ratio 90 % since memcached started (90 of 100 gets)")


async def test_too_few_gets_are_not_judged(memcached: tuple[str, int], cache: Memcache, deps: CheckDeps) -> None:
    traffic(cache, hits=0, misses=20)
    status, reason = await run({"type": "memcached", "address": address(memcached)}, deps)
    assert (status, reason) == (Status.OK, "20 gets so far: too few to judge the hit ratio (needs 100)")
    status, reason = await run({"type": "memcached", "address": address(memcached), "min_gets": 10}, deps)
    assert (status, reason) == (Status.CRITICAL, "hit ratio 0 % since memcached started (0 of 20 gets) (minimum 50 %)")


async def test_low_hit_ratio_warns(memcached: tuple[str, int], cache: Memcache, deps: CheckDeps) -> None:
    traffic(cache, hits=70, misses=30)
    status, reason = await run({"type": "memcached", "address": address(memcached)}, deps)
    assert (status, reason) == (Status.WARNING, "hit ratio 70 % since memcached started (70 of 100 gets) (minimum 80 %)")


async def test_very_low_hit_ratio_is_critical(memcached: tuple[str, int], cache: Memcache, deps: CheckDeps) -> None:
    traffic(cache, hits=30, misses=70)
    status, reason = await run({"type": "memcached", "address": address(memcached)}, deps)
    assert (status, reason) == (Status.CRITICAL, "hit ratio 30 % since memcached started (30 of 100 gets) (minimum 50 %)")


def clocked(http: aiohttp.ClientSession) -> tuple[CheckDeps, ManualClock]:
    clock = ManualClock(datetime(2026, 11, 24, 1, 0, tzinfo=UTC))
    return CheckDeps(http=http, environ={}, clock=clock, service="shop"), clock


async def test_evictions_are_judged_as_growth_over_the_interval_since_an_earlier_run(
        memcached: tuple[str, int], cache: Memcache, http: aiohttp.ClientSession) -> None:
    deps, clock = clocked(http)
    spec = {"type": "memcached", "address": address(memcached), "evictions": {"warning": 1, "critical": 100}}
    status, reason = await run(spec, deps)
    assert status is Status.OK and "0 evictions since memcached started (growth is judged from the next run)" in reason
    clock.advance(6 * 60)
    assert (await run(spec, deps)) == (
        Status.OK, "0 gets so far: too few to judge the hit ratio (needs 100); 0 evictions in the last 6 min")
    # 200 values of half a megabyte do not fit in memcached's default 64 MiB: the oldest are evicted.
    value = b"v" * (512 * 1024)
    for index in range(200):
        cache.set(f"big-{index}", value)
    clock.advance(4 * 60)
    status, reason = await run(spec, deps)
    grown = int(reason.split("; ")[1].split()[0])
    assert status is (Status.CRITICAL if grown >= 100 else Status.WARNING) and grown > 0
    assert reason.endswith(f"{grown} evictions in the last 4 min (limit {100 if grown >= 100 else 1})")
    # A manual run 30 s later does not move the 4-minute-old baseline: the scheduled run still sees the growth.
    clock.advance(30)
    again = await run(spec, deps)
    assert again[0] is status and again[1].endswith(f"{grown} evictions in the last 4 min "
                                                    f"(limit {100 if grown >= 100 else 1})")
    # Another service's check of the same memcached keeps its own baseline.
    other = await run(spec, deps.for_service("blog", None))
    assert other[0] is Status.OK and other[1].endswith("evictions since memcached started (growth is judged from the "
                                                      "next run)")


async def test_hit_ratio_is_judged_over_the_interval_when_enough_gets_happened(
        memcached: tuple[str, int], cache: Memcache, http: aiohttp.ClientSession) -> None:
    deps, clock = clocked(http)
    spec = {"type": "memcached", "address": address(memcached)}
    traffic(cache, hits=900, misses=100)
    assert await run(spec, deps) == (Status.OK, "hit ratio 90 % since memcached started (900 of 1000 gets)")
    clock.advance(10 * 60)
    traffic(cache, hits=5, misses=45)  # 50 gets: too few since the earlier run, so the ratio since start counts
    assert await run(spec, deps) == (Status.OK, "hit ratio 86 % since memcached started (905 of 1050 gets)")
    clock.advance(10 * 60)
    traffic(cache, hits=20, misses=80)
    assert await run(spec, deps) == (
        Status.CRITICAL, "hit ratio 20 % in the last 10 min (20 of 100 gets) (minimum 50 %)")


async def test_connections_are_graded(memcached: tuple[str, int], deps: CheckDeps) -> None:
    held = [Memcache(memcached) for _ in range(6)]
    for client in held:
        client.get("anything")  # pymemcache connects lazily
    try:
        spec = {"type": "memcached", "address": address(memcached), "connections": {"warning": 5, "critical": 100}}
        status, reason = await run(spec, deps)
    finally:
        for client in held:
            client.close()
    assert status is Status.WARNING and reason.endswith("connections (limit 5)"), reason
    current = int(reason.split("; ")[1].split()[0])
    assert current >= 7  # the six held and the check's own


async def test_unreachable_is_critical(deps: CheckDeps) -> None:
    port = free_port()
    status, reason = await run({"type": "memcached", "address": f"127.0.0.1:{port}"}, deps)
    assert status is Status.CRITICAL and reason.startswith(f"cannot connect to 127.0.0.1:{port}: "), reason


async def test_server_that_never_answers_times_out(silent_port: int, deps: CheckDeps) -> None:
    spec = {"type": "memcached", "address": f"127.0.0.1:{silent_port}", "timeout": 0.5}
    assert await run(spec, deps) == (Status.ERROR, "timed out after 0.5 s")


@pytest.fixture
async def garbage_port() -> AsyncIterator[int]:
    """A TCP server that answers whatever it is sent with bytes memcached would never send."""
    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(b"\x00\x01HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


@pytest.fixture
async def odd_stats_port() -> AsyncIterator[int]:
    """A server that answers `stats` in memcached's form, with a counter that is not a number."""
    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(b"STAT uptime 12\r\nSTAT cmd_get lots\r\nEND\r\n")
        await writer.drain()
        await reader.read()
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


async def test_a_port_that_speaks_something_else_is_critical(garbage_port: int, deps: CheckDeps) -> None:
    status, reason = await run({"type": "memcached", "address": f"127.0.0.1:{garbage_port}"}, deps)
    assert status is Status.CRITICAL
    assert reason.startswith(f"127.0.0.1:{garbage_port} did not answer `stats` as memcached does: "), reason


async def test_mariadb_is_not_memcached(deps: CheckDeps) -> None:
    status, reason = await run({"type": "memcached", "address": "127.0.0.1:3306"}, deps)
    assert status is Status.CRITICAL
    assert reason.startswith("127.0.0.1:3306 did not answer `stats` as memcached does: stats failed"), reason


async def test_a_stats_value_that_is_not_a_number_is_critical(odd_stats_port: int, deps: CheckDeps) -> None:
    status, reason = await run({"type": "memcached", "address": f"127.0.0.1:{odd_stats_port}"}, deps)
    assert status is Status.CRITICAL
    assert reason.startswith(f"127.0.0.1:{odd_stats_port} answered `stats` with a value that is not a number"), reason


@pytest.mark.parametrize(("check", "message"), [
    ("{type: memcached, address: 'cache:11211', hit_ratio_percent: {warning: 120, critical: 50}}",
     "warning (120) is a percentage: it must not be above 100"),
    ("{type: memcached, address: cache}", "`address` must be host:port"),
    ("{type: memcached, address: 'cache:99999'}", "`address` must be host:port"),
    ("{type: memcached, address: 'cache:11211', hit_ratio_percent: {warning: 50, critical: 80}}", "low values are the bad ones"),
    ("{type: memcached, address: 'cache:11211', min_gets: -1}", "must be >= 0"),
    ("{type: memcached, address: 'cache:11211', evictions: {warning: 10, critical: 1}}", "must not be above critical"),
])
def test_bad_memcached_checks_are_refused(check: str, message: str) -> None:
    with pytest.raises(CatalogInvalid) as caught:
        parse_catalog(f"services:\n  cache:\n    environment: prod\n    checks:\n      - {check}\n", "opsbot.yml")
    [problem] = str(caught.value).splitlines()
    assert message in problem, problem
