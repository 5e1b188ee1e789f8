"""The prometheus check against a real Prometheus (Debian's binary) scraping an exporter the tests control.

One Prometheus serves the whole session (tests/prometheus.py: its first scrape takes ~6 s); the exporter is
emptied before each test, and every test still uses its own metric or label values, so a rate() reaching back
into an earlier test's window never meets them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aiohttp
import pytest
from aiohttp import web

from bot.catalog_loading import CatalogInvalid, parse_catalog
from bot.checks import CheckDeps, Status
from bot.health import _probe
from tests.checks import CHECK
from tests.conftest import free_port

if TYPE_CHECKING:
    from tests.prometheus import RunningPrometheus

pytest_plugins = ["tests.prometheus"]  # prometheus_server (one per session), prometheus

ERROR_RATE = ('sum(rate(http_requests_total{{app="{app}", status=~"5.."}}[5s])) '
              '/ sum(rate(http_requests_total{{app="{app}"}}[5s])) * 100')


@pytest.fixture
def prom(prometheus: RunningPrometheus) -> RunningPrometheus:
    return prometheus


async def run(url: str, http: aiohttp.ClientSession, **spec: object) -> tuple[Status, str]:
    check = CHECK.validate_python({"type": "prometheus", "url": url, **spec})
    return await _probe(check, CheckDeps(http=http))


@contextlib.asynccontextmanager
async def traffic(prom: RunningPrometheus, app: str, ok: int, errors: int) -> AsyncIterator[None]:
    """Requests keep arriving at `app`: every 100 ms `ok` answered 200 and `errors` answered 500. Both counters
    move in the same step, so every scrape sees them in that proportion and the error rate is exact."""

    async def grow() -> None:
        while True:
            prom.exporter.add("http_requests_total", ok, app=app, status="200")
            prom.exporter.add("http_requests_total", errors, app=app, status="500")
            await asyncio.sleep(0.1)

    task = asyncio.create_task(grow())
    try:
        yield
    finally:
        task.cancel()


async def error_rate(prom: RunningPrometheus, app: str, expected: float) -> tuple[Status, str]:
    query = ERROR_RATE.format(app=app)
    await prom.wait_for(query, lambda value: abs(value - expected) < 0.01)
    return await run(prom.url, prom.http, query=query, unit="% errors", above={"warning": 1, "critical": 5})


async def test_a_low_error_rate_is_ok(prom: RunningPrometheus) -> None:
    async with traffic(prom, "calm", ok=200, errors=1):
        assert await error_rate(prom, "calm", 0.4975) == (Status.OK, "0.4975 % errors")


async def test_an_error_rate_past_the_warning_warns(prom: RunningPrometheus) -> None:
    async with traffic(prom, "shaky", ok=98, errors=2):
        assert await error_rate(prom, "shaky", 2) == (Status.WARNING, "2 % errors (limit 1 % errors)")


async def test_a_high_error_rate_is_critical(prom: RunningPrometheus) -> None:
    async with traffic(prom, "broken", ok=90, errors=10):
        assert await error_rate(prom, "broken", 10) == (Status.CRITICAL, "10 % errors (limit 5 % errors)")


async def test_of_several_series_the_worst_is_named_by_its_labels(prom: RunningPrometheus) -> None:
    for queue, depth in (("mail", 5), ("reports", 1500), ("default", 150)):
        prom.exporter.set("jobs_ready", depth, queue=queue)
    query = "sum by (queue) (jobs_ready)"
    await prom.wait_for(query, lambda value: value == 1500)
    assert await run(prom.url, prom.http, query=query, unit="jobs", above={"warning": 100, "critical": 1000}) == (
        Status.CRITICAL, '1500 jobs for {queue="reports"} (limit 1000 jobs) (worst of 3 series)')


async def test_a_gauge_below_its_floor_warns(prom: RunningPrometheus) -> None:
    prom.exporter.set("workers_alive", 1, pool="celery")
    await prom.wait_for('workers_alive{pool="celery"}', lambda value: value == 1)
    spec = {"query": 'sum(workers_alive{pool="celery"})', "unit": "workers", "below": {"warning": 2, "critical": 1}}
    assert await run(prom.url, prom.http, **spec) == (Status.WARNING, "1 workers (minimum 2 workers)")


async def test_a_scalar_result_is_judged_too(prom: RunningPrometheus) -> None:
    assert await run(prom.url, prom.http, query="3 * 4", above={"warning": 10, "critical": 20}) == (
        Status.WARNING, "12 (limit 10)")


async def test_no_data_is_the_configured_outcome(prom: RunningPrometheus) -> None:
    query = 'http_requests_total{app="never-deployed"}'
    assert await run(prom.url, prom.http, query=query, above={"warning": 1, "critical": 5}) == (
        Status.WARNING, f"no data for {query}")
    assert await run(prom.url, prom.http, query=query, above={"warning": 1, "critical": 5}, empty="critical") == (
        Status.CRITICAL, f"no data for {query}")
    assert (await run(prom.url, prom.http, query=query, above={"warning": 1, "critical": 5}, empty="ok"))[0] is Status.OK


async def test_nan_is_no_data_and_infinity_is_past_any_limit(prom: RunningPrometheus) -> None:
    # 0/0 is what an error rate is when no request came in at all.
    assert await run(prom.url, prom.http, query="0/0", above={"warning": 1, "critical": 5}, empty="ok") == (
        Status.OK, "no defined value (NaN) for 0/0")
    assert await run(prom.url, prom.http, query="1/0", above={"warning": 1, "critical": 5}) == (
        Status.CRITICAL, "+Inf (limit 5)")


async def test_a_query_prometheus_refuses_is_critical_with_its_error(prom: RunningPrometheus) -> None:
    status, reason = await run(prom.url, prom.http, query="sum(rate(", above={"warning": 1, "critical": 5})
    assert status is Status.CRITICAL and reason.startswith("Prometheus error (bad_data): ")
    assert "parse error" in reason


async def test_a_range_result_is_an_error_in_the_query(prom: RunningPrometheus) -> None:
    status, reason = await run(prom.url, prom.http, query="up[5s]", above={"warning": 1, "critical": 5})
    assert status is Status.ERROR and reason.startswith("the query returns a matrix, not a number")


async def test_something_that_is_not_prometheus_is_critical(prom: RunningPrometheus) -> None:
    exporter = f"http://127.0.0.1:{prom.exporter.port}"
    assert await run(exporter, prom.http, query="up", above={"warning": 1, "critical": 5}) == (
        Status.CRITICAL, f"HTTP 404 from 127.0.0.1:{prom.exporter.port}, not a Prometheus API answer")


async def test_unreachable_prometheus_is_critical() -> None:
    port = free_port()
    async with aiohttp.ClientSession() as http:
        status, reason = await run(f"http://127.0.0.1:{port}", http, query="up", above={"warning": 1, "critical": 5})
    assert status is Status.CRITICAL and reason.startswith(f"cannot connect to 127.0.0.1:{port}")


async def test_a_prometheus_that_accepts_and_never_answers_times_out() -> None:
    held: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # keep the connection open and say nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as http:
            assert await run(f"http://127.0.0.1:{port}", http, query="up", timeout=0.3,
                             above={"warning": 1, "critical": 5}) == (Status.ERROR, "timed out after 0.3 s")
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


# --- load-time validation ------------------------------------------------------------------------------------


def problems(check: str) -> list[str]:
    with pytest.raises(CatalogInvalid) as caught:
        parse_catalog(f"services:\n  web:\n    environment: prod\n    checks:\n      - {check}\n")
    return [f"{p.path}: {p.message}" for p in caught.value.problems]


@pytest.mark.parametrize(("check", "problem"), [
    ("{type: prometheus, url: 'http://p:9090', query: up}",
     "services.web.checks[0]: give exactly one of `above` (high is bad) and `below` (low is bad)"),
    ("{type: prometheus, url: 'http://p:9090', query: up, above: {warning: 1, critical: 2}, below: {warning: 2, critical: 1}}",
     "services.web.checks[0]: give exactly one of `above` (high is bad) and `below` (low is bad)"),
    ("{type: prometheus, url: 'http://p:9090', query: up, above: {warning: 1, critical: 2}, empty: maybe}",
     "services.web.checks[0].empty: must be one of 'ok', 'warning' or 'critical'"),
    ("{type: prometheus, url: 'http://p:9090', query: '', above: {warning: 1, critical: 2}}",
     "services.web.checks[0].query: must not be empty"),
    ("{type: prometheus, url: 'http://u:hunter2@p:9090', query: up, above: {warning: 1, critical: 2}}",
     "services.web.checks[0].url: must not contain a password; send credentials with headers_env"),
])
def test_bad_checks_are_refused_at_load(check: str, problem: str) -> None:
    assert problems(check) == [problem]


async def test_prometheus_is_asked_to_give_up_before_the_check_does() -> None:
    """Prometheus's own `timeout` is a fifth shorter than the check's, so its "query timed out" answer (and the end of
    the evaluation on its side) comes before the health runner's bare "timed out"."""
    asked: list[dict[str, str]] = []

    async def query(request: web.Request) -> web.Response:
        asked.append(dict(request.query))
        return web.json_response({"status": "error", "errorType": "timeout",
                                  "error": "query timed out in expression evaluation"})

    app = web.Application()
    app.router.add_get("/api/v1/query", query)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as http:
            status, reason = await run(f"http://127.0.0.1:{port}", http, query="up", timeout=10,
                                       above={"warning": 1, "critical": 5})
    finally:
        await runner.cleanup()
    assert asked == [{"query": "up", "timeout": "8000ms"}]
    assert (status, reason) == (Status.CRITICAL, "Prometheus error (timeout): query timed out in expression evaluation")
