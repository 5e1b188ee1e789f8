"""How long `/ops health` takes over many services, and what concurrency buys. Run by hand, prints figures.

    python bench/health.py [services] [latency_ms]
"""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp
from aiohttp import web

from bot.catalog import parse_catalog
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
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as http:
        for concurrency in (1, 16, 64, 256):
            entries = "".join(
                f"  s{i}:\n    environment: prod\n    checks:\n      - {{type: http, url: 'http://127.0.0.1:{port}/'}}\n"
                for i in range(services)
            )
            catalog = parse_catalog(f"health: {{concurrency: {concurrency}}}\nservices:\n{entries}")
            started = time.perf_counter()
            run = await run_checks(catalog, (), CheckDeps(http=http), SystemClock())
            checked = time.perf_counter() - started
            started = time.perf_counter()
            message = health_report(run)
            rendered = time.perf_counter() - started
            print(
                f"{services} services × {latency_ms} ms, concurrency {concurrency:>3}: "
                f"checks {checked:6.2f} s, render {rendered * 1000:5.1f} ms, {len(message.blocks)} blocks"
            )
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200, int(sys.argv[2]) if len(sys.argv) > 2 else 100))
