"""Each check kind against the real thing: local HTTP servers, the PostgreSQL and Redis on this machine, disks."""

from __future__ import annotations

import aiohttp
import pytest

from bot.checks import CheckDeps, Status
from tests.checks import run
from tests.conftest import PG_ADMIN_DSN, REDIS_URL, free_port
from tests.targets import Targets


@pytest.fixture
async def deps(http: aiohttp.ClientSession) -> CheckDeps:
    return CheckDeps(http=http, environ={"PG_DSN": PG_ADMIN_DSN, "API_TOKEN": "Bearer s3cret-token",
                                          "BAD_PG_DSN": "postgresql://nobody:hunter2@127.0.0.1:5432/postgres"})


# --- http -----------------------------------------------------------------------------------------------


async def test_http_ok(targets: Targets, deps: CheckDeps) -> None:
    assert await run({"type": "http", "url": targets.url("/ok"), "body_contains": "ok"}, deps) == (Status.OK, "HTTP 200")


async def test_http_unexpected_status_is_critical(targets: Targets, deps: CheckDeps) -> None:
    assert await run({"type": "http", "url": targets.url("/fail")}, deps) == (Status.CRITICAL, "HTTP 500 (expected 200)")


async def test_http_body_arriving_in_chunks_is_read_whole(targets: Targets, deps: CheckDeps) -> None:
    assert (await run({"type": "http", "url": targets.url("/chunked"), "body_contains": '"status": "ok"'}, deps))[0] is Status.OK


async def test_http_status_list(targets: Targets, deps: CheckDeps) -> None:
    status, _ = await run({"type": "http", "url": targets.url("/fail"), "expect_status": [200, 500]}, deps)
    assert status is Status.OK


async def test_http_body_without_the_expected_text_is_critical(targets: Targets, deps: CheckDeps) -> None:
    status, reason = await run({"type": "http", "url": targets.url("/ok"), "body_contains": "healthy"}, deps)
    assert status is Status.CRITICAL and "lacks 'healthy'" in reason


async def test_http_unreachable_is_critical(deps: CheckDeps) -> None:
    status, reason = await run({"type": "http", "url": f"http://127.0.0.1:{free_port()}/"}, deps)
    assert status is Status.CRITICAL and "cannot connect" in reason


async def test_http_that_never_answers_times_out(targets: Targets, deps: CheckDeps) -> None:
    assert await run({"type": "http", "url": targets.url("/hang"), "timeout": 0.3}, deps) == (Status.ERROR,
                                                                                              "timed out after 0.3 s")


async def test_http_slow_answer_warns_with_the_limit(targets: Targets, deps: CheckDeps) -> None:
    spec = {"type": "http", "url": targets.url("/slow?ms=250"), "latency_ms": {"warning": 100, "critical": 5000}}
    status, reason = await run(spec, deps)
    assert status is Status.WARNING and "limit 100 ms" in reason


async def test_http_header_secret_comes_from_the_environment(targets: Targets, deps: CheckDeps) -> None:
    spec = {"type": "http", "url": targets.url("/auth"), "headers_env": {"Authorization": "API_TOKEN"}}
    assert (await run(spec, deps))[0] is Status.OK
    missing = {"type": "http", "url": targets.url("/auth"), "headers_env": {"Authorization": "NOT_SET_ANYWHERE"}}
    assert await run(missing, deps) == (Status.ERROR, "cannot run: environment variable NOT_SET_ANYWHERE is not set")


# --- tcp ------------------------------------------------------------------------------------------------


async def test_tcp_open_and_closed_ports(targets: Targets, deps: CheckDeps) -> None:
    assert (await run({"type": "tcp", "host": "127.0.0.1", "port": targets.port}, deps))[0] is Status.OK
    status, reason = await run({"type": "tcp", "host": "127.0.0.1", "port": free_port()}, deps)
    assert status is Status.CRITICAL and "cannot connect" in reason


# --- postgres -------------------------------------------------------------------------------------------


async def test_postgres_reports_connections_against_max(deps: CheckDeps) -> None:
    status, reason = await run({"type": "postgres", "dsn_env": "PG_DSN"}, deps)
    assert status is Status.OK
    assert "connections in use" in reason


async def test_postgres_connection_thresholds_grade_the_share_in_use(deps: CheckDeps) -> None:
    spec = {"type": "postgres", "dsn_env": "PG_DSN", "connections_percent": {"warning": 0.01, "critical": 0.02}}
    status, reason = await run(spec, deps)
    assert status is Status.CRITICAL and "limit 0.02 %" in reason


async def test_postgres_failure_names_the_variable_never_the_password(deps: CheckDeps) -> None:
    status, reason = await run({"type": "postgres", "dsn_env": "BAD_PG_DSN"}, deps)
    assert status is Status.CRITICAL and "$BAD_PG_DSN" in reason
    assert "hunter2" not in reason


async def test_postgres_unreachable(deps: CheckDeps) -> None:
    status, reason = await run({"type": "postgres", "dsn": f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"}, deps)
    assert status is Status.CRITICAL and "cannot connect" in reason


# --- redis ----------------------------------------------------------------------------------------------


async def test_redis_ping_without_maxmemory(deps: CheckDeps) -> None:
    status, reason = await run({"type": "redis", "url": REDIS_URL}, deps)
    assert status is Status.OK and reason.startswith("PONG")


async def test_redis_memory_is_graded_against_maxmemory(redis_with_maxmemory: str, deps: CheckDeps) -> None:
    spec = {"type": "redis", "url": redis_with_maxmemory, "memory_percent": {"warning": 0.01, "critical": 50}}
    status, reason = await run(spec, deps)
    assert status is Status.WARNING and "of 1024.0 MiB maxmemory" in reason


async def test_redis_unreachable(deps: CheckDeps) -> None:
    status, reason = await run({"type": "redis", "url": f"redis://127.0.0.1:{free_port()}/0", "timeout": 2}, deps)
    assert status is Status.CRITICAL and "cannot reach" in reason


# --- disk -----------------------------------------------------------------------------------------------


async def test_disk_usage_is_graded(tmp_path, deps: CheckDeps) -> None:
    status, reason = await run({"type": "disk", "paths": [str(tmp_path)]}, deps)
    # Its label is `disk <path>`: the line does not name the path a second time.
    assert reason.endswith("% used") and str(tmp_path) not in reason
    status, reason = await run({"type": "disk", "name": "data", "paths": [str(tmp_path)]}, deps)
    assert reason.startswith(f"{tmp_path}: ") and reason.endswith("% used")
    tiny = {"type": "disk", "paths": [str(tmp_path)], "usage_percent": {"warning": 0.001, "critical": 0.002}}
    status, reason = await run(tiny, deps)
    assert status is Status.CRITICAL and "critical at 0.002 %" in reason


async def test_disk_missing_path_is_an_error_naming_it(tmp_path, deps: CheckDeps) -> None:
    status, reason = await run({"type": "disk", "paths": [str(tmp_path), "/no/such/dir"]}, deps)
    assert status is Status.ERROR and "/no/such/dir" in reason


async def test_a_check_that_breaks_unexpectedly_is_an_error_not_a_crash(deps: CheckDeps) -> None:
    status, reason = await run({"type": "disk", "paths": ["/tmp/\x00bad"]}, deps)
    assert (status, reason) == (Status.ERROR, "check failed: ValueError")
