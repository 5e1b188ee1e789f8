"""The containers check against real containers (podman speaking the Docker API): running, stopped, unhealthy,
crash-looping and restarting ones, where the Docker host comes from, an unreachable and a silent Docker API."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import pytest

from bot.catalog_loading import CatalogInvalid, parse_catalog
from bot.checks import CheckDeps, Status
from bot.checks.base import Observations
from bot.checks.containers import PROJECT_LABEL
from bot.clock import ManualClock
from bot.executors.docker import DockerTarget
from tests.checks import run as check_run

if TYPE_CHECKING:
    from tests.podman import Containers, Images, Podman

pytest_plugins = ["tests.podman"]  # its fixtures: podman, images, docker_client, containers


async def run(spec: dict, deps: CheckDeps) -> tuple[Status, str]:
    return await check_run({"type": "containers", **spec}, deps)


@pytest.fixture
def project(containers: Containers) -> str:
    return containers.name("proj")


@pytest.fixture
def deps(http: aiohttp.ClientSession) -> CheckDeps:
    return CheckDeps(http=http, environ={}, observations=Observations())


def run_in(containers: Containers, project: str, base: str, image: str, **kwargs: object) -> str:
    name = containers.name(base)
    containers.run(name, image, labels={PROJECT_LABEL: project}, **kwargs)
    return name


async def until(condition: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the containers never got there"
        await asyncio.sleep(0.1)


async def test_every_container_running_is_ok(podman: Podman, images: Images, containers: Containers, project: str,
                                             deps: CheckDeps) -> None:
    for base in ("web", "worker"):
        run_in(containers, project, base, images.v1, port=containers.port())
    spec = {"project": project, "docker_host": podman.base_url, "expect": 2}
    assert await run(spec, deps) == (Status.OK, "2 containers running")


async def test_a_stopped_container_is_critical_and_named(podman: Podman, images: Images, containers: Containers,
                                                         project: str, deps: CheckDeps) -> None:
    run_in(containers, project, "web", images.v1, port=containers.port())
    gone = run_in(containers, project, "minio", images.v1, command=["sh", "-c", "exit 137"])
    await until(lambda: containers.get(gone).status == "exited")
    status, reason = await run({"project": project, "docker_host": podman.base_url}, deps)
    assert (status, reason) == (Status.CRITICAL, f"{gone} exited (code 137); 1 of 2 running")


async def test_fewer_running_than_expected_is_critical(podman: Podman, images: Images, containers: Containers,
                                                       project: str, deps: CheckDeps) -> None:
    run_in(containers, project, "web", images.v1, port=containers.port())
    status, reason = await run({"project": project, "docker_host": podman.base_url, "expect": 3}, deps)
    assert (status, reason) == (Status.CRITICAL, "only 1 running (expected at least 3); 1 of 1 running")


async def test_a_failing_healthcheck_is_critical(podman: Podman, images: Images, containers: Containers,
                                                 project: str, deps: CheckDeps) -> None:
    sick = run_in(containers, project, "api", images.v1, port=containers.port(),
                  healthcheck={"test": ["CMD", "false"], "interval": 3_600_000_000_000, "retries": 1})
    await podman.healthcheck(sick)  # podman leaves running healthchecks to a systemd timer, absent here
    status, reason = await run({"labels": {PROJECT_LABEL: project}, "docker_host": podman.base_url}, deps)
    assert (status, reason) == (Status.CRITICAL, (f"{sick} is unhealthy, its healthcheck failed once in a row; "
                                                 "1 of 1 running"))


async def test_a_crash_looping_container_is_critical(podman: Podman, images: Images, containers: Containers,
                                                     project: str, deps: CheckDeps) -> None:
    looping = run_in(containers, project, "loop", images.v1, command=["sh", "-c", "exit 3"],
                     restart_policy={"Name": "always"})
    spec = {"project": project, "docker_host": podman.base_url}
    await run(spec, deps)  # the first look records the restart count
    await until(lambda: containers.get(looping).attrs["RestartCount"] >= 4)
    status, reason = await run(spec, deps)
    # Caught between two starts it is "restarting"; caught running, its restarts since the last look count.
    assert status is Status.CRITICAL
    assert re.fullmatch(rf"{looping} (is restarting \(restarted \d+ times so far\)|restarted \d+ times in the "
                        r"last \d+ s \(limit 3\)); [01] of 1 running", reason), reason


async def test_restarts_since_an_earlier_run_are_graded_over_their_interval(
        podman: Podman, images: Images, containers: Containers, project: str, http: aiohttp.ClientSession) -> None:
    flaky = run_in(containers, project, "flaky", images.v1, command=["sh", "-c", "sleep 2; exit 1"],
                   restart_policy={"Name": "always"})
    clock = ManualClock(datetime(2026, 11, 24, 1, 0, tzinfo=UTC))
    deps = CheckDeps(http=http, environ={}, clock=clock, service="web")
    spec = {"project": project, "docker_host": podman.base_url, "restarts": {"warning": 1, "critical": 5}}
    await until(lambda: containers.get(flaky).status == "running")
    assert await run(spec, deps) == (Status.OK, "1 container running")
    await until(lambda: containers.get(flaky).attrs["RestartCount"] >= 1 and containers.get(flaky).status == "running")
    clock.advance(4 * 60)
    status, reason = await run(spec, deps)
    assert (status, reason) == (Status.WARNING, f"{flaky} restarted once in the last 4 min (limit 1); 1 of 1 running")
    # The same check of another service has its own baseline: its first look judges no growth yet.
    assert await run(spec, deps.for_service("other", None)) == (Status.OK, "1 container running")


@pytest.fixture
async def vanishing(podman: Podman, tmp_path: Path, docker_client: object) -> AsyncIterator[tuple[str, list[str]]]:
    """A Unix socket in front of podman's that removes a container (its id in the list it yields) just before
    forwarding the first request to inspect it: a container removed while the check lists them."""
    doomed: list[str] = []
    upstream = str(podman.socket_path)

    def remove(container_id: str) -> None:
        docker_client.containers.get(container_id).remove(force=True)  # type: ignore[attr-defined]

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_unix_connection(upstream)

        async def upward() -> None:
            while data := await reader.read(65536):
                for container_id in list(doomed):
                    if f"/containers/{container_id}/json".encode() in data:
                        doomed.remove(container_id)
                        await asyncio.to_thread(remove, container_id)
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def downward() -> None:
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.close()

        await asyncio.gather(upward(), downward(), return_exceptions=True)

    path = tmp_path / "vanishing.sock"
    server = await asyncio.start_unix_server(relay, str(path))
    yield f"unix://{path}", doomed
    server.close()


async def test_a_container_removed_while_listing_is_left_out(
        vanishing: tuple[str, list[str]], images: Images, containers: Containers, project: str,
        deps: CheckDeps) -> None:
    host, doomed = vanishing
    kept = run_in(containers, project, "web", images.v1, port=containers.port())
    gone = run_in(containers, project, "old", images.v1, port=containers.port())
    doomed.append(str(containers.get(gone).id))
    assert await run({"project": project, "docker_host": host}, deps) == (Status.OK, "1 container running")
    assert not doomed and kept


async def test_the_docker_host_comes_from_the_services_target_or_the_environment(
        podman: Podman, images: Images, containers: Containers, project: str, http: aiohttp.ClientSession) -> None:
    run_in(containers, project, "web", images.v1, port=containers.port())
    target = DockerTarget(type="docker", labels={PROJECT_LABEL: project}, docker_host=podman.base_url)
    from_target = CheckDeps(http=http, environ={}, service="web", target=target)
    assert await run({"project": project}, from_target) == (Status.OK, "1 container running")
    from_environment = CheckDeps(http=http, environ={"DOCKER_HOST": podman.base_url})
    assert await run({"project": project}, from_environment) == (Status.OK, "1 container running")


async def test_no_matching_container_is_critical(podman: Podman, deps: CheckDeps) -> None:
    spec = {"labels": {"com.example.team": "nobody"}, "docker_host": podman.base_url}
    assert await run(spec, deps) == (Status.CRITICAL, "no containers labelled com.example.team=nobody")


async def test_an_unreachable_docker_api_is_critical(tmp_path: Path, deps: CheckDeps) -> None:
    host = f"unix://{tmp_path}/no-docker.sock"
    status, reason = await run({"project": "gitte", "docker_host": host}, deps)
    assert status is Status.CRITICAL and reason.startswith(f"cannot reach the Docker API at {host}: ")


@pytest.fixture
async def silent_socket(tmp_path: Path) -> AsyncIterator[str]:
    """A Unix socket that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    path = tmp_path / "silent.sock"
    server = await asyncio.start_unix_server(accept, str(path))
    yield f"unix://{path}"
    for writer in held:  # the worker thread sees the end of the connection instead of waiting out its timeout
        writer.close()
    server.close()


async def test_a_docker_api_that_never_answers_times_out(silent_socket: str, deps: CheckDeps) -> None:
    spec = {"project": "gitte", "docker_host": silent_socket, "timeout": 0.3}
    assert await run(spec, deps) == (Status.ERROR, "timed out after 0.3 s")


CATALOG = """
services:
  web:
    environment: prod
    checks:
      - {check}
"""


@pytest.mark.parametrize(("check", "message"), [
    ("{type: containers}", "give exactly one of `project` (a compose project) or `labels`"),
    ("{type: containers, project: gitte, labels: {a: b}}", "give exactly one of `project`"),
    ("{type: containers, labels: {}}", "`labels` needs at least one label"),
    ("{type: containers, project: gitte, expect: 0}", "expect: must be >= 1"),
    ("{type: containers, project: gitte, restarts: {warning: 3, critical: 1}}", "must not be above critical"),
])
def test_catalog_refuses_bad_containers_checks(check: str, message: str) -> None:
    with pytest.raises(CatalogInvalid) as refused:
        parse_catalog(CATALOG.format(check=check))
    assert message in str(refused.value) and "services.web.checks[0]" in str(refused.value)


def test_catalog_takes_a_containers_check() -> None:
    catalog = parse_catalog(CATALOG.format(check="{type: containers, project: gitte, expect: 4}"))
    assert catalog.services["web"].checks[0].label == "containers gitte"

