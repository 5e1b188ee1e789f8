"""What the Docker step-kind tests share: the ports a step kind uses, on a catalog whose service is a target on the
podman service, with the real store (SQLite) recording the images the executor sees.

Not a test module: tests/test_docker_compose.py, test_step_recreate.py and test_step_prune.py use it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.catalog_loading import parse_catalog
from bot.clock import Clock, SystemClock
from bot.runs import steps
from bot.runs.models import ActionKind, ActionRun
from bot.runs.steps.base import PlannedStep, UndoBook
from bot.store import create_store

if TYPE_CHECKING:
    from docker.models.containers import Container

    from bot.store.base import Store
    from tests.podman import Containers, Podman


@dataclass
class Deps:
    catalog: Any
    store: Store
    clock: Clock
    environ: dict[str, str]
    demo_workloads: Any = None
    chat: Any = None
    http: Any = None

    async def check(self, service: str, only: Any = ()) -> Any:
        raise AssertionError("no health checks here")


@asynccontextmanager
async def sqlite_store(directory: Path) -> AsyncIterator[Store]:
    """The real store on a SQLite file in `directory` (each test file's `store` fixture)."""
    made = create_store(f"sqlite:///{directory / 'o.db'}")
    await made.open()
    await made.migrate()
    yield made
    await made.close()


def docker_deps(podman: Podman, store: Store, target: str, *, clock: Clock | None = None, services: str = "") -> Deps:
    """A catalog whose service `api` has the docker target `target` (its selector) on podman, and `services` more."""
    catalog = parse_catalog(f"""
services:
  api:
    environment: production
    target: {{type: docker, {target}, docker_host: "{podman.base_url}", start_timeout: 20, poll_interval: 0.2}}
{services}""")
    return Deps(catalog, store, clock or SystemClock(), {})


def run() -> ActionRun:
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    return ActionRun(service="api", kind=ActionKind.RUNBOOK, environment="production", target="api",
                     requested_by="U1", created_at=at, expires_at=at, id=7, channel_id="C1")


async def perform(deps: Deps, step: PlannedStep) -> tuple[str, dict[str, Any]]:
    """Run a step once; what it returned and what its undo book kept."""
    kept: dict[str, Any] = {}

    async def save(data: dict[str, Any]) -> None:
        kept.update(data)

    return await steps.perform(deps, run(), step, UndoBook({}, save)), kept


def create(containers: Containers, name: str, image: str, labels: dict[str, str] | None = None,
           **options: Any) -> Container:
    """A container created and never started, removed with the test's others."""
    from tests.podman import TEST_LABEL  # at run time: pytest imports tests.podman as a plugin first

    return containers.client.containers.create(image, name=name, command=["sleep", "1000"],
                                               labels={**(labels or {}), TEST_LABEL: containers.run_id}, **options)
