"""What every Docker operation shares: the client (made on first use, closed by `close`), blocking calls run in a
thread with their errors turned into the executor's, finding a target's containers and waiting until they are ready.

Not responsible for any one operation (restart, deploy, scale, prune: `bot.executors.docker` and the modules beside it).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions
from docker.models.containers import Container

from bot.clock import Clock
from bot.executors.base import DeployHistory, Effect, ExecutorError, TargetNotFound, TargetState
from bot.executors.docker_target import ASIDE_SUFFIX, DockerTarget

UNCHANGED = TargetState("nothing was changed", Effect.UNTOUCHED)
UNKNOWN = TargetState("unknown: see `docker ps -a`", Effect.UNKNOWN)
DEFAULT_STOP_TIMEOUT = 10  # seconds; what `docker restart` waits when the container sets none
STOPPED = ("created", "exited", "dead")
# `docker compose run` marks its one-off containers so; they carry the service's labels but are not the service.
ONEOFF_LABEL = "com.docker.compose.oneoff"
API_VERSION = "1.41"  # the Engine API opsbot speaks unless DOCKER_API_VERSION says another
T = TypeVar("T")


class DockerSession:
    """One service's containers on one Docker host, and the client that reaches them."""

    def __init__(self, service: str, target: DockerTarget, history: DeployHistory, clock: Clock) -> None:
        self._service, self._target, self._history, self._clock = service, target, history, clock
        self._docker: docker.DockerClient | None = None

    async def close(self) -> None:
        if self._docker is not None:
            await asyncio.to_thread(self._docker.close)
            self._docker = None

    def _wait_title(self) -> str:
        return f"Wait until running and healthy ({self._target.start_timeout:g} s)"

    # -- finding ---------------------------------------------------------------------------------------------

    async def _find(self) -> list[Container]:
        found = await self._call(f"look up {self._target.subject}", self._find_blocking, state=UNCHANGED)
        if not found:
            how = "matching" if self._target.labels else "named"
            raise TargetNotFound(f"No Docker container {how} {self._target.selector}.", state=UNCHANGED.text,
                                 effect=UNCHANGED.effect)
        return found

    def _find_blocking(self) -> list[Container]:
        client = self._client()
        if self._target.container is not None:
            try:
                return [client.containers.get(self._target.container)]
            except docker.errors.NotFound:
                return []
        labels = [f"{key}={value}" for key, value in (self._target.labels or {}).items()]
        found = client.containers.list(all=True, filters={"label": labels})
        return sorted((c for c in found if not name_of(c).endswith(ASIDE_SUFFIX)
                       and (c.labels or {}).get(ONEOFF_LABEL) != "True"), key=name_of)

    # -- waiting -----------------------------------------------------------------------------------------------

    async def _wait_ready(self, containers: list[Container], started: float, done: Effect) -> float:
        """Poll until every container is running (and healthy, if it has a healthcheck); returns the seconds taken.
        `done` is what the step did before waiting: the effect of a failure here."""
        deadline = started + self._target.start_timeout
        seen_running: dict[str, str] = {}
        while True:
            waiting: list[str] = []
            for container in containers:
                await self._call(f"inspect container {container.name}", container.reload,
                                 state=TargetState(UNKNOWN.text, done))
                state = container.attrs.get("State") or {}
                status, health = state.get("Status", "unknown"), (state.get("Health") or {}).get("Status") or ""
                if status in ("exited", "dead"):
                    described = describe_container(container)
                    raise ExecutorError(f"{described} right after starting", state=described, effect=done)
                if status != "running":
                    waiting.append(describe_container(container))
                elif health and health != "none":
                    if health != "healthy":
                        waiting.append(describe_container(container))
                elif seen_running.get(id_of(container)) != state.get("StartedAt"):
                    # Running once may be a process about to exit: count it up when a second look agrees.
                    seen_running[id_of(container)] = state.get("StartedAt", "")
                    waiting.append(describe_container(container))
            if not waiting:
                return self._clock.monotonic() - started
            if self._clock.monotonic() >= deadline:
                raise ExecutorError(
                    f"Not running and healthy within {self._target.start_timeout:g} s: " + "; ".join(waiting),
                    state="; ".join(waiting), effect=done,
                )
            await self._clock.sleep(self._target.poll_interval)

    async def _state_of(self, container: Container) -> str:
        try:
            await self._call(f"inspect container {container.name}", container.reload, state=UNCHANGED)
        except ExecutorError:
            return f"the state of container {container.name} is unknown"
        return describe_container(container)

    # -- talking to Docker -------------------------------------------------------------------------------------

    def _client(self) -> docker.DockerClient:
        # Made on first use, in a worker thread: docker-py asks the daemon for its API version when built.
        if self._docker is None:
            self._docker = docker_client(self._target.docker_host)
        return self._docker

    async def _call(self, doing: str, function: Callable[..., T], *args: Any, state: TargetState, **kwargs: Any) -> T:
        """Run a blocking docker-py call in a thread, turning its errors into the executor's; `state` is what a
        failure of this call leaves (a read leaves things untouched, a change part-way is unknown)."""
        try:
            return await asyncio.to_thread(function, *args, **kwargs)
        except docker.errors.NotFound as exc:
            raise TargetNotFound(f"Could not {doing}: {exc.explanation or exc}", state=state.text,
                                 effect=state.effect) from exc
        except docker.errors.APIError as exc:
            raise ExecutorError(f"Could not {doing}: Docker said {exc.explanation or exc}", state=state.text,
                                effect=state.effect) from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            where = self._target.docker_host or "DOCKER_HOST"
            raise ExecutorError(f"Could not {doing}: cannot reach Docker at {where} ({exc})", state=state.text,
                                effect=state.effect) from exc


def part_way(index: int) -> Effect:
    """A change to the `index`th container failed: the ones before it were changed; the failing call itself may
    or may not have acted."""
    return Effect.CHANGED if index else Effect.UNKNOWN


def docker_client(
    host: str | None, environ: Mapping[str, str] | None = None, timeout: float | None = None
) -> docker.DockerClient:
    """A client for `host`, else for DOCKER_HOST in `environ` (default: the process's) or the default socket.
    `timeout` bounds each request (docker-py's: 60 s). The Engine API version is fixed (DOCKER_API_VERSION, default
    1.41: Docker 20.10 and later, Podman 3 and later) rather than asked for: docker-py would ask the daemon at every
    client it builds, and Podman answers that by querying the host's package manager (most of its CPU in the tests)."""
    env = environ if environ is not None else os.environ
    extra: dict[str, Any] = {"version": env.get("DOCKER_API_VERSION") or API_VERSION}
    if timeout is not None:
        extra["timeout"] = timeout
    if host:
        return docker.DockerClient(base_url=host, **extra)
    return docker.DockerClient.from_env(environment=dict(environ) if environ is not None else None, **extra)


def name_of(container: Container) -> str:
    """A listed or fetched container is inspected, so it has a name; docker-py types `name` as optional."""
    return container.name or ""


def id_of(container: Container) -> str:
    """Likewise its id."""
    return container.id or ""


def describe_container(container: Container) -> str:
    state = container.attrs.get("State") or {}
    status, health = state.get("Status", "unknown"), (state.get("Health") or {}).get("Status") or ""
    if status in ("exited", "dead"):
        return f"container {container.name} is {status} (code {state.get('ExitCode')})"
    if status == "running" and health and health not in ("none", "healthy"):
        streak = (state.get("Health") or {}).get("FailingStreak") or 0
        failed = f", {streak} failed checks in a row" if streak else ""
        return f"container {container.name} is running but {health}{failed}"
    return f"container {container.name} is {status}"


def stop_timeout(container: Container) -> int:
    return int(container.attrs["Config"].get("StopTimeout") or DEFAULT_STOP_TIMEOUT)


def short_id(image_id: str) -> str:
    """An image id as `docker images` shows it: 12 hex digits."""
    return image_id.removeprefix("sha256:")[:12]
