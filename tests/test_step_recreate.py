"""The `recreate` step kind against podman: a new build under the running tag is picked up and its undo recreates onto
the image before; a pull that outlasts its time, or fails with nothing newer on the host, leaves the container
untouched. There is no registry here, so every pull fails: the host's own newer copy of the tag is what is used.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import docker.errors
import pytest

from bot.catalog_loading import CatalogInvalid, parse_catalog
from bot.clock import SystemClock
from bot.executors.base import Effect, ExecutorError, Revision
from bot.executors.docker import DockerTarget, DockerWorkload
from bot.runs import steps
from bot.runs.steps.recreate import RecreateStep
from tests.docker_steps import docker_deps, perform, sqlite_store
from tests.test_executor_docker import http_get

if TYPE_CHECKING:
    import docker

    from bot.store.base import Store
    from tests.podman import Containers, Images, Podman

pytest_plugins = ["tests.podman"]


def short(image_id: str | None) -> str:
    return str(image_id).removeprefix("sha256:")[:12]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with sqlite_store(tmp_path) as made:
        yield made


@pytest.fixture
def patch_tag(docker_client: docker.DockerClient, images: Images, containers: Containers) -> Iterator[str]:
    """A tag of the test's own on build 1, which the test may move; removed afterwards (the builds keep theirs)."""
    tag = f"patch-{containers.run_id}"
    docker_client.images.get(images.v1).tag(images.repository, tag)
    yield f"{images.repository}:{tag}"
    with suppress(docker.errors.ImageNotFound):
        docker_client.images.remove(f"{images.repository}:{tag}")


async def plan(deps: Any, **fields: Any) -> steps.PlannedStep:
    return await steps.plan(deps, RecreateStep.model_validate({"kind": "recreate", "service": "api", **fields}), {})


async def test_a_new_build_of_the_running_tag_is_recreated_onto_and_the_undo_puts_the_old_image_back(
    podman: Podman, images: Images, containers: Containers, docker_client: docker.DockerClient, store: Store,
    patch_tag: str,
) -> None:
    name, port = containers.name("api"), containers.port()
    containers.run(name, patch_tag, port=port)
    deps = docker_deps(podman, store, f"container: {name}")
    build1, build2 = (short(docker_client.images.get(image).id) for image in (images.v1, images.v2))

    step = await plan(deps)

    assert step.title == f"Pull the image api runs again and recreate its containers if it changed (Docker container {name})"
    assert step.probe == f"read-only look: runs {patch_tag} (image {build1}) now"
    docker_client.images.get(images.v2).tag(*patch_tag.rsplit(":", 1))  # a patched build under the same tag

    done, kept = await perform(deps, step)

    assert done.startswith(f"Recreated container {name} on {patch_tag} ({build2}), was {build1}; running in ")
    assert "The pull failed (" in done and f"so the host's own newer {patch_tag} was used." in done
    assert await http_get(port) == "2"
    assert docker_client.containers.get(name).attrs["Config"]["Image"] == patch_tag
    assert kept == {"image_id": docker_client.images.get(images.v1).id}

    assert steps.undo_title(step, kept).endswith(f"”: recreate onto image {build1} again")
    back = await steps.undo(deps, step, kept)

    assert back.startswith(f"Recreated container {name} on image {build1}, an earlier {patch_tag}, was {build2}; ")
    assert await http_get(port) == "1"
    assert short(docker_client.containers.get(name).attrs["Image"]) == build1
    assert await steps.undo(deps, step, kept) == f"Nothing to do: container {name} already runs image {build1}."


async def test_a_pull_that_fails_with_nothing_newer_or_outlasts_its_time_leaves_the_container_untouched(
    podman: Podman, containers: Containers, store: Store, patch_tag: str,
) -> None:
    name = containers.name("api")
    containers.run(name, patch_tag, command=["sleep", "1000"])
    started = containers.get(name).attrs["State"]["StartedAt"]
    deps = docker_deps(podman, store, f"container: {name}")

    with pytest.raises(ExecutorError) as slow:
        await perform(deps, await plan(deps, pull_timeout=0.1))
    with pytest.raises(ExecutorError) as failed:
        await perform(deps, await plan(deps))

    assert str(slow.value) == f"Pulling {patch_tag} did not finish within 0.1 s."
    assert slow.value.effect is Effect.UNTOUCHED and "may still be pulling it" in slow.value.state
    assert str(failed.value).startswith(f"Could not pull {patch_tag} (")
    assert str(failed.value).endswith(f"and the host's own {patch_tag} is the image container {name} is running: "
                                      "nothing was recreated.")
    assert failed.value.effect is Effect.UNTOUCHED
    assert containers.get(name).attrs["State"]["StartedAt"] == started


def test_a_recreate_step_on_a_kubernetes_target_is_refused_at_load() -> None:
    with pytest.raises(CatalogInvalid) as raised:
        parse_catalog("""
services:
  jobs: {environment: production, target: {type: kubernetes, deployment: jobs}}
runbooks:
  patch:
    services: [jobs]
    steps:
      - {kind: recreate, service: jobs}
""")
    assert ("runbooks.patch.steps[1].kind: `recreate` needs a target that can recreate its containers from a fresh "
            "pull of their image, but services.jobs.target is kubernetes, which cannot") in str(raised.value)


async def test_containers_created_from_an_image_id_are_pulled_by_the_reference_that_image_was_recorded_under(
    store: Store,
) -> None:
    """Docker names an undone recreate's container by the image id (the tag had moved on): the next recreate pulls
    the reference the deploy history recorded for that image, and refuses, untouched, when there is none."""
    build = "sha256:" + "5" * 64
    workload = DockerWorkload("api", DockerTarget(type="docker", container="api"), store, SystemClock())
    container = SimpleNamespace(name="api", attrs={"Config": {"Image": build}, "Image": build})
    running = Revision(id=build, image=build, digest=build)

    with pytest.raises(ExecutorError) as raised:
        await workload._reference(container, running)  # type: ignore[arg-type]
    await store.record_deploy("api", build, build, datetime.now(UTC))  # recorded by its id once: not a reference
    await store.record_deploy("api", "shop/api:stable", build, datetime.now(UTC))

    assert await workload._reference(container, running) == "shop/api:stable"  # type: ignore[arg-type]
    assert str(raised.value) == (f"Container api was created from image {'5' * 12}, not from a reference opsbot can "
                                 "pull again: deploy a tag to it first.")
    assert raised.value.effect is Effect.UNTOUCHED
