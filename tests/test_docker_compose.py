"""Scaling a Docker Compose service: which containers a count removes, starts or copies and how copies are set up (in
memory), then the `scale` step kind against real podman containers — up by copies, down by removing the
highest-numbered, back by its undo, and a failed copy removed again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bot.executors.base import Effect, ExecutorError
from bot.executors.docker_compose import (
    NUMBER_LABEL,
    PROJECT_LABEL,
    SERVICE_LABEL,
    ComposeService,
    Member,
    ScaleChange,
    choose,
    compose_service,
    copy_config,
    member,
)
from bot.executors.docker_target import DockerTarget
from bot.runs import steps
from bot.runs.steps.scale import ScaleStep
from tests.docker_steps import create, docker_deps, perform, sqlite_store

if TYPE_CHECKING:
    import docker

    from bot.store.base import Store
    from tests.podman import Containers, Images, Podman

pytest_plugins = ["tests.podman"]
SHOP = ComposeService("shop", "api")


def replicas(*states: str, names: str = "shop-api-{}") -> list[Member]:
    return [Member(names.format(n), n, state) for n, state in enumerate(states, start=1)]


# -- in memory: which containers, named how ---------------------------------------------------------------------


def test_a_compose_service_needs_both_its_project_and_service_labels() -> None:
    def target(labels: dict[str, str]) -> DockerTarget:
        return DockerTarget(type="docker", labels=labels)

    assert compose_service(target({PROJECT_LABEL: "shop", SERVICE_LABEL: "api", "tier": "web"})) == SHOP
    assert compose_service(target({SERVICE_LABEL: "api"})) is None
    assert compose_service(DockerTarget(type="docker", container="shop-api-1")) is None


def test_a_replicas_number_is_its_compose_label_else_the_end_of_its_name() -> None:
    assert member("shop-api-7", {NUMBER_LABEL: "3"}, "running", {}).number == 3
    assert member("shop_api_12", {}, "exited", {}).number == 12
    with pytest.raises(ExecutorError, match="cannot tell its place among the replicas") as raised:
        member("api", {}, "running", {})
    assert raised.value.effect is Effect.UNTOUCHED
    ports = {"HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                                             "81/tcp": [{"HostPort": "9000-9009"}], "82/tcp": [{"HostPort": ""}]}}}
    assert member("shop-api-1", {}, "running", ports).fixed_ports == ("8080:80/tcp",)


def test_scaling_down_removes_the_highest_numbered_running_and_leaves_stopped_ones_alone() -> None:
    found = replicas("running", "exited", "running", "running")

    change = choose(SHOP, found, 1)

    assert change == ScaleChange(1, ("shop-api-1", "shop-api-3", "shop-api-4"), remove=("shop-api-4", "shop-api-3"))
    assert change.words() == "removes shop-api-4, shop-api-3"
    assert choose(SHOP, found, 3).words() == "changes nothing (3 containers running)"


def test_scaling_up_starts_stopped_ones_lowest_first_then_copies_the_lowest_numbered_after_the_highest() -> None:
    found = replicas("exited", "running", "created", "dead")

    assert choose(SHOP, found, 2).start == ("shop-api-1",)
    change = choose(SHOP, found, 5)

    assert change.start == ("shop-api-1", "shop-api-3")  # a dead container is not started, nor counted
    assert change.create == (("shop-api-5", 5), ("shop-api-6", 6)) and change.source == "shop-api-1"
    assert change.words(done=True) == ("started shop-api-1, shop-api-3; created shop-api-5, shop-api-6 as copies "
                                       "of shop-api-1")


def test_copies_are_named_with_the_separator_the_service_uses() -> None:
    change = choose(ComposeService("old_shop", "api"), replicas("running", names="old_shop_api_{}"), 2)
    assert change.create == (("old_shop_api_2", 2),)


@pytest.mark.parametrize(("found", "says"), [
    ([Member("api-main", 1, "running")], ("not named as Compose names replicas (shop-api-1): its compose file gives "
                                         "it a `container_name`")),
    ([Member("shop-api-1", 1, "running", ("8080:80/tcp",))], ("publishes host port 8080:80/tcp, which a copy cannot "
                                                             "also take")),
])
def test_a_service_whose_container_cannot_be_copied_is_refused_untouched(found: list[Member], says: str) -> None:
    assert choose(SHOP, found, 1).words().startswith("changes nothing")  # no copy needed, nothing refused
    with pytest.raises(ExecutorError) as raised:
        choose(SHOP, found, 2)
    assert says in str(raised.value) and raised.value.effect is Effect.UNTOUCHED


def test_a_negative_count_is_refused_at_load_and_by_the_executor_never_read_as_removing_replicas() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        ScaleStep.model_validate({"kind": "scale", "service": "api", "replicas": -1})
    assert ScaleStep.model_validate({"kind": "scale", "service": "api", "replicas": 0}).replicas == 0
    # A parameter's value is substituted after load (an integer parameter may allow a negative `min`).
    with pytest.raises(ExecutorError, match="cannot be scaled to -1") as raised:
        choose(SHOP, replicas("running", "running", "running"), -1)
    assert raised.value.effect is Effect.UNTOUCHED


def test_a_copy_keeps_the_originals_setup_with_its_own_number_alias_mac_and_anonymous_volumes() -> None:
    anonymous = "ab" * 32
    attrs: dict[str, Any] = {
        "Id": "f" * 64, "Name": "/shop-api-1",
        "Config": {"Hostname": "ffffffffffff", "Image": "shop/api:2", "Env": ["MODE=live", "PATH=/bin"],
                   "Labels": {PROJECT_LABEL: "shop", SERVICE_LABEL: "api", NUMBER_LABEL: "1", "built": "ci"},
                   "Cmd": ["serve"], "MacAddress": "02:42:ac:11:00:02"},
        "HostConfig": {"NetworkMode": "shop_default", "Binds": [f"{anonymous}:/cache:rw", "shop_data:/data"],
                       "RestartPolicy": {"Name": "always"}},
        "Mounts": [{"Type": "volume", "Name": anonymous, "Destination": "/cache"},
                   {"Type": "volume", "Name": "shop_data", "Destination": "/data"}],
        "NetworkSettings": {"Networks": {"shop_default": {"Aliases": ["shop-api-1", "api", "ffffffffffff"]},
                                         "shop_back": {"Aliases": ["api"]}}},
    }
    image = {"Env": ["PATH=/bin"], "Labels": {"built": "ci"}, "Cmd": ["serve"]}

    config, networks = copy_config(attrs, image, "shop/api:2", "shop-api-3", 3)

    assert config["Image"] == "shop/api:2" and config["Env"] == ["MODE=live"] and "MacAddress" not in config
    assert config["Labels"] == {PROJECT_LABEL: "shop", SERVICE_LABEL: "api", NUMBER_LABEL: "3"}
    assert config["HostConfig"]["Binds"] == ["shop_data:/data"]  # the named volume is shared, as Compose shares it
    assert config["Volumes"] == {"/cache": {}}  # a fresh anonymous volume of its own
    assert config["HostConfig"]["RestartPolicy"] == {"Name": "always"} and "Hostname" not in config
    assert config["NetworkingConfig"] == {"EndpointsConfig": {"shop_default": {"Aliases": ["shop-api-3", "api"]}}}
    assert networks == {"shop_back": {"Aliases": ["api"]}}


# -- the step kind against podman ----------------------------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with sqlite_store(tmp_path) as made:
        yield made


def service_containers(client: docker.DockerClient, project: str) -> dict[str, str]:
    """{name: status} of the service's replicas (one-off containers left out, as Compose leaves them out)."""
    found = client.containers.list(all=True, filters={"label": [f"{PROJECT_LABEL}={project}",
                                                                 "com.docker.compose.oneoff=False"]})
    return {c.name or "": c.status for c in sorted(found, key=lambda c: c.name or "")}


async def test_a_compose_service_scales_up_by_copies_down_by_removing_the_highest_and_back_by_undo(
    podman: Podman, images: Images, containers: Containers, docker_client: docker.DockerClient, store: Store
) -> None:
    project = f"shop{containers.run_id}"
    labels = {PROJECT_LABEL: project, SERVICE_LABEL: "api", NUMBER_LABEL: "1", "com.docker.compose.oneoff": "False"}
    first = f"{project}-api-1"
    containers.run(first, images.v1, labels=labels, command=["sleep", "1000"], environment={"MODE": "live"},
                   volumes=["/cache"])
    # `docker compose run` leaves one-off containers with the service's labels: never counted, never touched.
    oneoff = create(containers, f"{project}-api-run-1", images.v1, {**labels, "com.docker.compose.oneoff": "True"})
    # A container already holding the third replica's name makes the first try fail part-way.
    squatter = create(containers, f"{project}-api-3", images.v1)
    deps = docker_deps(podman, store, f"labels: {{{PROJECT_LABEL}: {project}, {SERVICE_LABEL}: api}}")

    def scale(count: int) -> ScaleStep:
        return ScaleStep.model_validate({"kind": "scale", "service": "api", "replicas": count})

    up = await steps.plan(deps, scale(3), {})
    assert up.probe == (f"read-only look: 1 running now; creates {project}-api-2, {project}-api-3 as copies of "
                        f"{first}")
    with pytest.raises(ExecutorError) as raised:
        await perform(deps, up)
    assert raised.value.effect is Effect.UNTOUCHED and raised.value.state == "the new container was removed again"
    assert f"create container {project}-api-3" in str(raised.value)
    assert service_containers(docker_client, project) == {first: "running"}

    squatter.remove()
    done, kept = await perform(deps, up)

    assert done.startswith(f"Scaled Compose service api (project {project}) to 3: created {project}-api-2, "
                           f"{project}-api-3 as copies of {first}; running in ")
    assert kept == {"running": True, "replicas": 1}
    assert service_containers(docker_client, project) == {first: "running", f"{project}-api-2": "running",
                                                          f"{project}-api-3": "running"}
    original, copy = docker_client.containers.get(first), docker_client.containers.get(f"{project}-api-3")
    assert copy.labels == {**original.labels, NUMBER_LABEL: "3"}  # the test's own label too: it is cleaned up
    assert copy.attrs["Config"]["Image"] == images.v1 and copy.attrs["Image"] == original.attrs["Image"]
    assert "MODE=live" in copy.attrs["Config"]["Env"] and copy.attrs["Config"]["Cmd"] == ["sleep", "1000"]
    [cache] = [m["Name"] for m in copy.attrs["Mounts"] if m["Destination"] == "/cache"]
    assert cache != next(m["Name"] for m in original.attrs["Mounts"] if m["Destination"] == "/cache")

    # The undo scales back to the one that ran: the highest-numbered go.
    assert steps.undo_title(up, kept).endswith("”: scale back to 1")
    back = await steps.undo(deps, up, kept)
    assert back == f"Scaled Compose service api (project {project}) to 1: removed {project}-api-3, {project}-api-2."
    assert service_containers(docker_client, project) == {first: "running"}

    # 0 stops and keeps the container, so its undo starts the same one again.
    down = await steps.plan(deps, scale(0), {})
    assert down.probe == "read-only look: 1 running now; stops them all, keeping them to start again"
    _, kept = await perform(deps, down)
    assert service_containers(docker_client, project) == {first: "exited"}
    assert (await steps.undo(deps, down, kept)).startswith(
        f"Scaled Compose service api (project {project}) to 1: started {first}; running in ")
    assert service_containers(docker_client, project) == {first: "running"}
    oneoff.reload()
    assert oneoff.status == "created"
