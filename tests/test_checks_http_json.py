"""The http-json check against a real local HTTP server whose health body each test sets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from bot.catalog_loading import CatalogInvalid, parse_catalog
from bot.checks import CheckDeps, Status
from bot.health import _probe
from tests.checks import CHECK
from tests.conftest import free_port
from tests.targets import Targets

HEALTHY = {"status": "healthy", "checks": {"database": "connected", "cache": "ok"},
           "queue": {"depth": 12}, "workers": {"alive": 4}, "nodes": [{"state": "up"}, {"state": "up"}]}
FIELDS = {"status": "healthy", "checks.database": {"one_of": ["connected", "ok"]},
          "queue.depth": {"above": {"warning": 100, "critical": 1000}},
          "workers.alive": {"below": {"warning": 2, "critical": 1}}, "nodes.1.state": "up"}


class HealthEndpoint:
    """GET /health answers `self.status` with `self.body` (a value sent as JSON, or raw bytes)."""

    def __init__(self) -> None:
        self.status = 200
        self.body: object = HEALTHY
        self.seen_headers: dict[str, str] = {}
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.seen_headers = dict(request.headers)
        raw = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
        return web.Response(status=self.status, body=raw, content_type="application/json")


async def moved(_: web.Request) -> web.Response:
    raise web.HTTPFound("/health")


@pytest.fixture
async def endpoint() -> AsyncIterator[HealthEndpoint]:
    served = HealthEndpoint()
    app = web.Application()
    app.router.add_get("/health", served.handle)
    app.router.add_get("/moved", moved)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    served.url = f"http://127.0.0.1:{runner.addresses[0][1]}/health"
    yield served
    await runner.cleanup()


@pytest.fixture
def deps(http: aiohttp.ClientSession) -> CheckDeps:
    return CheckDeps(http=http, environ={"API_TOKEN": "Bearer s3cret-token"})


async def run(deps: CheckDeps, url: str, fields: dict | None = None, **extra: object) -> tuple[Status, str]:
    spec = {"type": "http-json", "url": url, "fields": fields or FIELDS, **extra}
    return await _probe(CHECK.validate_python(spec), deps)


async def test_every_field_as_expected_is_ok_and_shows_the_numbers(endpoint: HealthEndpoint, deps: CheckDeps) -> None:
    assert await run(deps, endpoint.url) == (Status.OK, "HTTP 200, 5 fields as expected (queue.depth 12, workers.alive 4)")


async def test_a_queue_past_its_warning_warns_with_the_limit(endpoint: HealthEndpoint, deps: CheckDeps) -> None:
    endpoint.body = {**HEALTHY, "queue": {"depth": 150}}
    assert await run(deps, endpoint.url) == (Status.WARNING, "queue.depth is 150 (limit 100)")


async def test_too_few_workers_warn_then_go_critical(endpoint: HealthEndpoint, deps: CheckDeps) -> None:
    endpoint.body = {**HEALTHY, "workers": {"alive": 1}}
    assert await run(deps, endpoint.url) == (Status.WARNING, "workers.alive is 1 (minimum 2)")
    endpoint.body = {**HEALTHY, "workers": {"alive": 0}}
    assert await run(deps, endpoint.url) == (Status.CRITICAL, "workers.alive is 0 (minimum 1)")


async def test_every_failing_field_is_named_and_the_worst_wins(endpoint: HealthEndpoint, deps: CheckDeps) -> None:
    endpoint.body = {**HEALTHY, "status": "degraded", "checks": {"database": "down"}, "queue": {"depth": 150}}
    status, reason = await run(deps, endpoint.url)
    assert status is Status.CRITICAL
    assert reason == ('status is "degraded", expected "healthy"; checks.database is "down", expected one of "connected", '
                      '"ok"; queue.depth is 150 (limit 100)')


async def test_a_missing_field_is_critical(endpoint: HealthEndpoint, deps: CheckDeps) -> None:
    endpoint.body = {"status": "healthy", "checks": {}, "queue": {"depth": 1}, "workers": {"alive": 4},
                     "nodes": [{"state": "up"}]}
    assert await run(deps, endpoint.url) == (Status.CRITICAL, "no field checks.database; no field nodes.1.state")


async def test_values_of_another_kind_do_not_pass(endpoint: HealthEndpoint, deps: CheckDeps) -> None:
    # JSON true is not 1, and "12" is a string, not a queue depth.
    endpoint.body = {"ok": 1, "queue": {"depth": "12"}}
    status, reason = await run(deps, endpoint.url, {"ok": True, "queue.depth": {"above": {"warning": 100, "critical": 1000}}})
    assert (status, reason) == (Status.CRITICAL, 'ok is 1, expected true; queue.depth is "12", expected a number')


async def test_a_body_that_is_not_json_is_critical(endpoint: HealthEndpoint, deps: CheckDeps) -> None:
    endpoint.body = b"<html>Bad gateway</html>"
    assert await run(deps, endpoint.url) == (Status.CRITICAL, "HTTP 200, body is not JSON: '<html>Bad gateway</html>'")
    endpoint.status = 502  # a proxy's error page: the status is named once
    assert await run(deps, endpoint.url) == (
        Status.CRITICAL, "HTTP 502 (expected 200); body is not JSON: '<html>Bad gateway</html>'")


async def test_a_body_past_the_read_limit_is_not_judged(endpoint: HealthEndpoint, deps: CheckDeps) -> None:
    endpoint.body = {**HEALTHY, "padding": "x" * (1 << 20)}
    assert await run(deps, endpoint.url) == (Status.CRITICAL, "body is larger than 1 MiB, not judged")


async def test_an_unexpected_status_is_critical_and_still_reads_the_body(endpoint: HealthEndpoint, deps: CheckDeps) -> None:
    endpoint.status, endpoint.body = 503, {**HEALTHY, "checks": {"database": "down"}}
    assert await run(deps, endpoint.url) == (
        Status.CRITICAL, 'HTTP 503 (expected 200); checks.database is "down", expected one of "connected", "ok"')
    assert (await run(deps, endpoint.url, expect_status=[200, 503]))[0] is Status.CRITICAL  # the field still fails


async def test_a_redirect_is_not_followed(endpoint: HealthEndpoint, deps: CheckDeps) -> None:
    status, reason = await run(deps, endpoint.url.replace("/health", "/moved"))
    assert status is Status.CRITICAL and reason.startswith("HTTP 302 (expected 200)")


async def test_headers_come_from_the_environment(endpoint: HealthEndpoint, deps: CheckDeps) -> None:
    assert (await run(deps, endpoint.url, headers_env={"Authorization": "API_TOKEN"}))[0] is Status.OK
    assert endpoint.seen_headers["Authorization"] == "Bearer s3cret-token"
    assert await run(deps, endpoint.url, headers_env={"Authorization": "UNSET_TOKEN"}) == (
        Status.ERROR, "cannot run: environment variable UNSET_TOKEN is not set")


async def test_unreachable_is_critical(deps: CheckDeps) -> None:
    port = free_port()
    status, reason = await run(deps, f"http://127.0.0.1:{port}/health")
    assert status is Status.CRITICAL and reason.startswith(f"cannot connect to 127.0.0.1:{port}")


async def test_a_server_that_never_answers_times_out(targets: Targets, deps: CheckDeps) -> None:
    assert await run(deps, targets.url("/hang"), timeout=0.3) == (Status.ERROR, "timed out after 0.3 s")


# --- load-time validation --------------------------------------------------------------------------------


def problems(check: str) -> list[str]:
    with pytest.raises(CatalogInvalid) as caught:
        parse_catalog(f"services:\n  api:\n    environment: prod\n    checks:\n      - {check}\n")
    return [f"{problem.path}: {problem.message}" for problem in caught.value.problems]


@pytest.mark.parametrize(("fields", "message"), [
    ("{'checks..db': ok}", "'checks..db' is not a dotted path (like `checks.database` or `workers.0.state`)"),
    ("{'': ok}", "'' is not a dotted path (like `checks.database` or `workers.0.state`)"),
    ("{q: {abov: {warning: 1, critical: 2}}}", "q: expected a value or exactly one of equals, one_of, above, below (got abov)"),
    ("{q: {above: {warning: 5, critical: 1}}}", "q: above: warning (5) must not be above critical (1)"),
    ("{q: {below: {warning: 1, critical: 5}}}",
     "q: below: critical (5) must not be above warning (1): low values are the bad ones"),
    ("{q: {one_of: []}}", "q: one_of: list should have at least 1 item after validation, not 0"),
    ("{q: [a, b]}", "q: a list is not an expectation; to allow several values write {one_of: [...]}"),
    ("{}", None),
])
def test_bad_fields_are_refused_at_load_with_their_path(fields: str, message: str | None) -> None:
    [problem] = problems(f"{{type: http-json, url: 'http://app/health', fields: {fields}}}")
    if message is None:
        assert problem.startswith("services.api.checks[0].fields: ") and "at least 1 item" in problem
    else:
        assert problem == f"services.api.checks[0].fields: {message}"


def test_password_in_the_url_is_refused() -> None:
    [problem] = problems("{type: http-json, url: 'http://u:hunter2@app/health', fields: {status: ok}}")
    assert problem == "services.api.checks[0].url: must not contain a password; send credentials with headers_env"


def test_a_valid_check_loads() -> None:
    catalog = parse_catalog(
        "services:\n  api:\n    environment: prod\n    checks:\n"
        "      - {type: http-json, url: 'http://app/health', expect_status: 200, fields: {status: healthy, 'nodes.0.up': "
        "true}}\n")
    [check] = catalog.services["api"].checks
    assert check.label == "http-json /health"
