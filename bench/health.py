"""How long `/ops health` takes over many services against its slowest check. Run by hand; prints figures.

    python bench/health.py [services] [latency_ms]

Each service's check hits its own host (127.0.0.1, 127.0.0.2, … — all loopback on Linux), one slow server
listening on each, as 200 services on 200 hosts would be. The default bound (8 per host, 256 in all) is compared
with the old default (16 at once, whatever the host) and with every check on one host (where `per_host` bounds).
"""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp
from aiohttp import web

from bot.catalog_loading import parse_catalog
from bot.checks import CheckDeps
from bot.clock import SystemClock
from bot.health import run_checks
from bot.views.health import health_report


async def main(services: int, latency_ms: int) -> None:
    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(latency_ms / 1000)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    hosts = [f"127.0.{(i + 1) // 256}.{(i + 1) % 256}" for i in range(services)]
    first = web.TCPSite(runner, hosts[0], 0)
    await first.start()
    port = runner.addresses[0][1]
    for host in hosts[1:]:
        await web.TCPSite(runner, host, port).start()

    def catalog(health: str, urls: list[str]) -> str:
        entries = "".join(f"  s{i}:\n    environment: prod\n    checks:\n      - {{type: http, url: '{url}'}}\n"
                          for i, url in enumerate(urls))
        return f"health: {health}\nservices:\n{entries}"

    spread = [f"http://{host}:{port}/" for host in hosts]
    one_host = [f"http://{hosts[0]}:{port}/"] * services
    verdict = ""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        for label, health, urls in (("default bound (8 per host, 256 in all), one host each", "{}", spread),
                                    ("old default (16 at once)", "{concurrency: 16}", spread),
                                    ("default bound, every check on one host", "{}", one_host)):
            run_catalog = parse_catalog(catalog(health, urls))
            started = time.perf_counter()
            run = await run_checks(run_catalog, (), CheckDeps(http=http), SystemClock())
            checked = time.perf_counter() - started
            slowest = max(result.latency_ms for result in run.results) / 1000
            started = time.perf_counter()
            message = health_report(run)
            rendered = time.perf_counter() - started
            print(f"{services} services × {latency_ms} ms, {label}: checks {checked:5.2f} s = "
                  f"{checked / slowest:5.2f}× the slowest check ({slowest:.2f} s; target ≤ 1.25× for one host each), "
                  f"render {rendered * 1000:5.1f} ms, {len(message.blocks)} blocks")
            if not verdict:  # the first line is the target: ≤ 1.25× the slowest check, plus 0.1 s of set-up
                verdict = "PASS" if checked <= 1.25 * slowest + 0.1 else "FAIL"
    await runner.cleanup()
    print(f"{verdict}: health over {services} hosts within 1.25× the slowest check + 0.1 s")
    if verdict != "PASS":
        sys.exit(1)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200, int(sys.argv[2]) if len(sys.argv) > 2 else 300))
