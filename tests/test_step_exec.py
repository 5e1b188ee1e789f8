"""The `exec` step kind: argv commands inside real podman containers and in pods of the Kubernetes double (exec over
its WebSocket channel protocol), output bounds and uploads, timeouts, effects, undo, and the refusals at load.
"""

from __future__ import annotations

import asyncio
import io
import re
import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import docker.errors
import pytest

from bot.catalog_loading import CatalogInvalid, parse_catalog
from bot.clock import SystemClock
from bot.executors.base import Effect, ExecutorError
from bot.runs import steps
from bot.runs.models import ActionKind, ActionRun
from bot.runs.steps.base import PlannedStep, UndoBook
from bot.runs.steps.exec import ExecStep
from tests.k8s_api import ExecCall, ExecReply, K8sApi

if TYPE_CHECKING:
    from tests.podman import Containers, Images, Podman

pytest_plugins = ["tests.podman"]
NASTY = "$(touch /tmp/pwned); `id` | rm -rf / ; echo *"


@dataclass
class Chat:
    uploads: list[dict[str, str]] = field(default_factory=list)

    async def upload(self, channel: str, *, filename: str, title: str, content: str, comment: str) -> None:
        self.uploads.append({"channel": channel, "filename": filename, "content": content, "comment": comment})


@dataclass
class Deps:
    catalog: Any
    chat: Chat = field(default_factory=Chat)
    clock: SystemClock = field(default_factory=SystemClock)
    environ: dict[str, str] = field(default_factory=dict)
    demo_workloads: Any = None
    store: Any = None
    http: Any = None

    async def check(self, service: str, only: Any = ()) -> Any:
        raise AssertionError("no health checks here")


def run() -> ActionRun:
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    return ActionRun(service="api", kind=ActionKind.RUNBOOK, environment="production", target="api",
                     requested_by="U1", created_at=at, expires_at=at, id=7, channel_id="C1")


def file_in(container: Any, path: str) -> bytes | None:
    """A file's bytes, read through the archive API: a second exec to `cat` it can lose its output on a busy podman
    (the output of an exec that ends before it is attached to)."""
    try:
        stream, _ = container.get_archive(path)
    except docker.errors.NotFound:
        return None
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
        member = archive.extractfile(archive.getmembers()[0])
        return member.read() if member is not None else None


async def plan(deps: Deps, values: dict[str, str | int] | None = None, **fields: Any) -> PlannedStep:
    return await steps.plan(deps, ExecStep.model_validate({"kind": "exec", "service": "api", **fields}),
                            values or {})


async def perform(deps: Deps, step: PlannedStep, data: dict[str, Any] | None = None) -> str:
    async def save(_: dict[str, Any]) -> None:
        return None

    return await steps.perform(deps, run(), step, UndoBook(data if data is not None else {}, save))


# -- podman ------------------------------------------------------------------------------------------------------


@pytest.fixture
def docker_deps(podman: Podman, containers: Containers, images: Images) -> tuple[Deps, str]:
    name = containers.name("api")
    containers.run(name, images.v1, port=containers.port())
    catalog = parse_catalog(f"""
services:
  api:
    environment: production
    target: {{type: docker, container: {name}, docker_host: "{podman.base_url}"}}
""")
    return Deps(catalog), name


async def test_a_parameter_with_shell_metacharacters_stays_one_argv_element(docker_deps: tuple[Deps, str]) -> None:
    deps, name = docker_deps
    step = await plan(deps, {"word": NASTY}, command=["printf", "[%s]", "{{ params.word }}"], read_only=True)

    detail = await perform(deps, step)

    assert detail.startswith("exit 0 in ")
    assert detail.endswith(f": [{NASTY}]")  # seen literally, as one argument: no shell expanded any of it
    assert step.title.startswith("Run `printf [%s] ") and f"(Docker container {name}) (read-only)" in step.title


async def test_a_non_zero_exit_fails_with_its_output_and_an_unknown_effect(docker_deps: tuple[Deps, str]) -> None:
    deps, _ = docker_deps
    failing = await plan(deps, command=["sh", "-c", "echo migrating; echo broken >&2; exit 3"])
    diagnostic = await plan(deps, command=["sh", "-c", "echo nope >&2; exit 1"], read_only=True)

    with pytest.raises(ExecutorError) as mutating:
        await perform(deps, failing)
    with pytest.raises(ExecutorError) as reading:
        await perform(deps, diagnostic)

    assert "exited 3 in container" in str(mutating.value) and "migrating ⏎ stderr: ⏎ broken" in str(mutating.value)
    assert mutating.value.effect is Effect.UNKNOWN  # a mutating command that failed may have changed things
    assert reading.value.effect is Effect.UNTOUCHED and "exited 1" in str(reading.value)
    assert steps.traits_of(failing).changes and not steps.traits_of(diagnostic).changes


async def test_long_output_keeps_its_end_and_is_uploaded_whole(docker_deps: tuple[Deps, str]) -> None:
    deps, _ = docker_deps
    script = "i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done"
    step = await plan(deps, command=["sh", "-c", script], max_output_kb=8)

    detail = await perform(deps, step)

    assert "line-2999" in detail and "uploaded" in detail
    [upload] = deps.chat.uploads
    assert upload["channel"] == "C1" and upload["content"].rstrip().endswith("line-2999")
    assert "were not kept" in upload["content"] and "line-0\n" not in upload["content"]
    assert len(upload["content"].encode()) < 9 * 1024  # bounded by max_output_kb


async def test_the_timeout_kills_the_command_inside_the_container(
    docker_deps: tuple[Deps, str], containers: Containers
) -> None:
    deps, name = docker_deps
    step = await plan(deps, command=["sleep", "47"], timeout=2)

    with pytest.raises(ExecutorError) as raised:
        await perform(deps, step)

    message = str(raised.value)
    assert "did not finish within" in message and raised.value.effect is Effect.UNKNOWN
    pid = re.search(r"killed \(kill -KILL (\d+) inside container", message)
    assert pid is not None, message
    assert containers.get(name).exec_run(["cat", f"/proc/{pid.group(1)}/cmdline"]).exit_code != 0  # gone


async def test_a_step_cut_from_outside_kills_its_command_too(
    docker_deps: tuple[Deps, str], containers: Containers
) -> None:
    deps, name = docker_deps
    step = await plan(deps, command=["sleep", "48"], timeout=60)

    with pytest.raises(TimeoutError):  # the engine's own timeout, or a shutdown, cancels the step
        await asyncio.wait_for(perform(deps, step), 1.5)

    running = containers.get(name).exec_run(["sh", "-c", "cat /proc/[0-9]*/cmdline"]).output
    assert b"sleep\x0048" not in running


async def test_a_missing_container_leaves_the_service_untouched(docker_deps: tuple[Deps, str]) -> None:
    deps, _ = docker_deps
    step = await plan(deps, command=["true"], container="not-there")

    with pytest.raises(ExecutorError) as raised:
        await perform(deps, step)

    assert raised.value.effect is Effect.UNTOUCHED and "has no container not-there" in str(raised.value)


async def test_undo_runs_the_undo_command(docker_deps: tuple[Deps, str], containers: Containers) -> None:
    deps, name = docker_deps
    step = await plan(deps, command=["sh", "-c", "echo on > /tmp/flag"], undo=["sh", "-c", "rm /tmp/flag"])
    data: dict[str, Any] = {}
    await perform(deps, step, data)
    assert file_in(containers.get(name), "/tmp/flag") == b"on\n"

    assert steps.can_undo(step, data) and step.undo == "run the undo command"
    assert (await steps.undo(deps, step, data)).startswith("ran `sh -c 'rm /tmp/flag'`: exit 0")
    assert file_in(containers.get(name), "/tmp/flag") is None


# -- the Kubernetes double ---------------------------------------------------------------------------------------


@pytest.fixture
async def k8s() -> AsyncIterator[tuple[Deps, K8sApi]]:
    api = K8sApi()
    await api.start()
    api.add_deployment("api", replicas=2, sidecar="registry.example/proxy:1")
    catalog = parse_catalog(f"""
services:
  api:
    environment: production
    target: {{type: kubernetes, deployment: api, api_url: "{api.url}"}}
""")
    yield Deps(catalog), api
    await api.stop()


async def test_kubernetes_exec_goes_over_the_channel_protocol(k8s: tuple[Deps, K8sApi]) -> None:
    deps, api = k8s

    async def answer(call: ExecCall) -> ExecReply:
        if call.command[0] == "migrate":
            return ExecReply(stdout=b"x" * 10_000 + b"\napplied 3\n", stderr=b"warning: slow\n", exit_code=0)
        return ExecReply(stderr=b"no such table\n", exit_code=4)

    api.exec_handler = answer
    step = await plan(deps, {"n": 3}, command=["migrate", "--steps", "{{ params.n }}", NASTY], container="sidecar")

    detail = await perform(deps, step)

    [call] = api.execs
    assert call.command == ("migrate", "--steps", "3", NASTY) and call.container == "sidecar"
    assert call.pod == api.pods("api")[0]["metadata"]["name"]  # the first ready pod, by name
    assert "applied 3" in detail and "warning: slow" in detail and "uploaded" in detail
    failing = await plan(deps, command=["check-db"], read_only=True)
    with pytest.raises(ExecutorError) as raised:
        await perform(deps, failing)
    assert "exited 4" in str(raised.value) and "no such table" in str(raised.value)
    assert raised.value.effect is Effect.UNTOUCHED


async def test_kubernetes_exec_timeout_closes_the_stream(k8s: tuple[Deps, K8sApi]) -> None:
    deps, api = k8s

    async def hang(call: ExecCall) -> ExecReply:
        await asyncio.sleep(60)
        return ExecReply()

    api.exec_handler = hang
    step = await plan(deps, command=["reindex"], timeout=1.5)

    with pytest.raises(ExecutorError) as raised:
        await perform(deps, step)

    assert "stream was closed" in str(raised.value) and raised.value.effect is Effect.UNKNOWN
    for _ in range(100):
        if api.exec_closed:
            break
        await asyncio.sleep(0.02)
    assert [c.command for c in api.exec_closed] == [("reindex",)]


async def test_kubernetes_exec_that_cannot_start_is_untouched(k8s: tuple[Deps, K8sApi]) -> None:
    deps, api = k8s
    api.exec_handler = None  # the double answers like a runtime that cannot find the executable
    step = await plan(deps, command=["nope"], container="app")

    with pytest.raises(ExecutorError) as raised:
        await perform(deps, step)

    assert "could not run" in str(raised.value) and raised.value.effect is Effect.UNTOUCHED


# -- refusals at load ----------------------------------------------------------------------------------------------


def catalog(step: str, target: str = "{type: docker, container: api}") -> str:
    return f"""
services:
  api: {{environment: production, target: {target}}}
runbooks:
  poke:
    services: [api]
    parameters:
      word: {{type: string}}
    steps:
      - {step}
"""


@pytest.mark.parametrize(("step", "says"), [
    ("{kind: exec, service: api, command: [echo, 'hello {{ params.word }}']}", "must be a whole argv element"),
    ("{kind: exec, service: api, command: [sh, -c, 'echo {{ params.word }}']}", "runs its script through a shell"),
    ("{kind: exec, service: api, command: [/bin/bash, -lc, '{{ params.word }}']}", "runs its script through a shell"),
    ("{kind: exec, service: api, command: ['true'], undo: [sh, -ec, '{{ params.word }}']}", "through a shell"),
])
def test_parameters_only_as_whole_elements_and_never_in_a_shell_script(step: str, says: str) -> None:
    with pytest.raises(CatalogInvalid) as raised:
        parse_catalog(catalog(step))
    assert says in str(raised.value) and "runbooks.poke.steps" in str(raised.value)


def test_a_shell_script_without_parameters_and_values_as_its_arguments_load() -> None:
    parse_catalog(catalog("""{kind: exec, service: api, command: [sh, -c, 'echo "$1"', sh, '{{ params.word }}']}"""))
    parse_catalog(catalog("{kind: exec, service: api, command: [app, migrate, '{{ params.word }}']}"))


def test_a_demo_target_cannot_take_an_exec_step() -> None:
    with pytest.raises(CatalogInvalid) as raised:
        parse_catalog(catalog("{kind: exec, service: api, command: ['true']}", "{type: demo, app: shop}"))
    assert ("`exec` needs a target that can run a command inside a container, but services.api.target is demo, "
            "which cannot; use a docker or kubernetes target") in str(raised.value)
