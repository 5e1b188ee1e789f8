"""The health fan-out's bound: which host a check talks to, and at most `per_host` checks against one host at once
(and `concurrency` in all), while checks of different hosts run together. No timing: counts only."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from bot.catalog_loading import parse_catalog
from bot.checks import CheckDeps, Status
from bot.checks.hosts import HostGates, target_host
from bot.clock import SystemClock
from bot.health import run_checks


async def spin() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def fill(gates: HostGates, hosts: list[str]) -> tuple[Counter[str], asyncio.Event, list[asyncio.Task[None]]]:
    """Start one task per entry of `hosts`, each holding its slot until released; returns who is inside."""
    inside: Counter[str] = Counter()
    release = asyncio.Event()

    async def hold(host: str) -> None:
        async with gates.slot(host):
            inside[host] += 1
            await release.wait()
            inside[host] -= 1

    tasks = [asyncio.create_task(hold(host)) for host in hosts]
    await spin()
    return inside, release, tasks


async def test_at_most_per_host_checks_hit_one_host_while_other_hosts_go_on() -> None:
    inside, release, tasks = await fill(HostGates(per_host=3, total=100), ["db"] * 10 + ["api"] * 2 + ["cache"])
    assert inside == {"db": 3, "api": 2, "cache": 1}
    release.set()
    await asyncio.gather(*tasks)
    assert sum(inside.values()) == 0


async def test_the_total_bounds_checks_across_hosts() -> None:
    inside, release, tasks = await fill(HostGates(per_host=8, total=4), [f"h{i}" for i in range(10)])
    assert sum(inside.values()) == 4
    release.set()
    await asyncio.gather(*tasks)


async def test_a_waiting_check_of_a_busy_host_does_not_hold_a_slot_of_the_total() -> None:
    # The host gate is taken first: ten checks queued on one host must not use up the total and starve other hosts.
    inside, release, tasks = await fill(HostGates(per_host=1, total=2), ["db"] * 10 + ["api"])
    assert inside == {"db": 1, "api": 1}
    release.set()
    await asyncio.gather(*tasks)


def test_the_host_of_each_kind_of_check() -> None:
    catalog = parse_catalog("""
services:
  s:
    environment: prod
    checks:
      - {type: http, url: "http://API.example.com:8080/health"}
      - {type: postgres, name: pg1, dsn: "postgresql://app@db1.internal:5432/app"}
      - {type: postgres, name: pg2, dsn_env: DB2_DSN}
      - {type: postgres, name: pg3, dsn_env: MISSING_DSN}
      - {type: tcp, host: Broker.internal, port: 5672}
      - {type: memcached, address: "cache1:11211"}
      - {type: redis, url: "redis://redis1:6379/0"}
      - {type: disk, paths: [/]}
""")
    deps = CheckDeps(http=None, environ={"DB2_DSN": "postgresql://app:pw@db2.internal/app"})  # type: ignore[arg-type]
    hosts = [target_host(spec, deps) for spec in catalog.services["s"].checks]
    assert hosts == ["api.example.com", "db1.internal", "db2.internal", "kind:postgres", "broker.internal", "cache1",
                     "redis1", "kind:disk"]


@pytest.fixture
async def counted_server() -> AsyncIterator[tuple[int, Counter[str]]]:
    """A server that records the most requests it held at once per Host header."""
    active: Counter[str] = Counter()
    peak: Counter[str] = Counter()

    async def slow(request: web.Request) -> web.Response:
        host = request.host.rsplit(":", 1)[0]
        active[host] += 1
        peak[host] = max(peak[host], active[host])
        await asyncio.sleep(0.2)
        active[host] -= 1
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", slow)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield runner.addresses[0][1], peak
    await runner.cleanup()


async def test_a_health_request_keeps_to_the_catalogs_per_host_bound(counted_server: tuple[int, Counter[str]],
                                                                   http: aiohttp.ClientSession) -> None:
    port, peak = counted_server
    entries = "".join(f"  s{i}:\n    environment: prod\n    checks:\n      - {{type: http, url: 'http://127.0.0.1:{port}/'}}\n"
                      for i in range(6))
    catalog = parse_catalog(f"health: {{per_host: 2}}\nservices:\n{entries}")
    run = await run_checks(catalog, (), CheckDeps(http=http), SystemClock())
    assert [r.status for r in run.results] == [Status.OK] * 6
    assert peak["127.0.0.1"] == 2, "six checks of one host, two at a time"


def test_the_defaults_bound_by_host_not_by_a_small_global_number() -> None:
    health = parse_catalog("services: {}\n").health
    assert (health.per_host, health.concurrency) == (8, 256)
