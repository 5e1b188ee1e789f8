"""What one `/metrics` scrape costs a running bot: time per scrape and exposition size. Run by hand; prints figures.

    python bench/metrics_scrape.py [scrapes]

Starts the bot on a SQLite store with the fake Slack, fills the series a busy replica would have (every check kind
and status, runs, approvals, Web API methods), then scrapes it over HTTP.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

import handlers
from bot.app import build_bolt_app, build_context, build_web_app
from bot.catalog_loading import parse_catalog
from bot.settings import Settings
from playground.payloads import SIGNING_SECRET
from playground.slack_api import FakeSlack


async def main(scrapes: int) -> None:
    slack = FakeSlack()
    await slack.start()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(slack_bot_token="xoxb-bench-0000000000", slack_signing_secret=SIGNING_SECRET,  # noqa: S106
                            slack_api_url=slack.api_url, database_url=f"sqlite:///{Path(tmp) / 'o.db'}")
        ctx = build_context(settings, parse_catalog("services: {}\n"))
        runner = web.AppRunner(build_web_app(ctx, build_bolt_app(ctx, [handlers.register])))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/metrics"
        m = ctx.metrics
        for kind in ("http", "http-json", "tcp", "postgres", "mysql", "sql", "redis", "memcached", "rabbitmq",
                     "prometheus", "disk", "memory", "containers", "log-errors", "kubernetes-pods", "backup-freshness"):
            for status in ("ok", "warning", "critical", "error"):
                m.check_done(kind, status, 0.1)
        for method in ("chat.postMessage", "chat.update", "chat.postEphemeral", "views.open", "conversations.create",
                       "conversations.invite", "pins.add", "reactions.add", "users.info", "response_url"):
            m.api_call_done(method, "ok")
        for request_kind in ("command", "action", "view", "event", "options"):
            m.request_done(request_kind, "ok", 0.02)
        async with aiohttp.ClientSession() as http:
            times, size = [], 0
            for _ in range(scrapes):
                started = time.perf_counter()
                async with http.get(url) as response:
                    size = len(await response.read())
                times.append(time.perf_counter() - started)
        times.sort()
        print(f"/metrics: {scrapes} scrapes, p50 {statistics.median(times) * 1000:.2f} ms, "
              f"p99 {times[int(len(times) * 0.99) - 1] * 1000:.2f} ms, {size / 1024:.1f} KiB per scrape")
        await runner.cleanup()
    await slack.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
