"""The containers check's Docker side (docker-py): list the service's containers. Imported only when a catalog has a
containers check or a Docker target (`bot.adapters`); judging each container is `bot.checks.containers`.
"""

from __future__ import annotations

import asyncio

import docker.errors
import requests.exceptions
from docker.models.containers import Container

from bot.checks.base import CheckDeps, Probe, Status
from bot.checks.containers import ContainersCheck
from bot.executors.docker import ASIDE_SUFFIX, docker_client


async def found(self: ContainersCheck, host: str | None, deps: CheckDeps) -> list[Container] | Probe:
    """The containers the check selects, or the critical Probe that says why Docker could not be asked."""
    try:
        return await asyncio.to_thread(_list, self, host, deps)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        where = host or deps.environ.get("DOCKER_HOST") or "the default socket"
        return Probe(Status.CRITICAL, f"cannot reach the Docker API at {where}: {_first_line(exc)}")


def _list(self: ContainersCheck, host: str | None, deps: CheckDeps) -> list[Container]:
    # The client's own timeout ends the worker thread even after the runner has given up on the check.
    client = docker_client(host, deps.environ, timeout=self.timeout)
    try:
        labels = [f"{key}={value}" for key, value in self.selector.items()]
        # ignore_removed: a container removed between the listing and its inspection (a deploy replacing it)
        # is simply not there, rather than a 404 failing the whole check.
        found = client.containers.list(all=True, filters={"label": labels}, ignore_removed=True)
    finally:
        client.close()
    # A container the executor set aside during a deploy is not one of the service's.
    # Listed containers are inspected, so each has a name (docker-py types `name` as optional).
    return sorted((c for c in found if not (c.name or "").endswith(ASIDE_SUFFIX)), key=lambda c: c.name or "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
