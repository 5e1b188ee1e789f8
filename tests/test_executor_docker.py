"""The Docker executor against real containers run by podman's Docker-compatible API.

Arranging and inspecting goes through the test's own docker client; the executor under test makes its own.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import ValidationError

from bot.clock import SystemClock
from bot.executors.base import DeployHistory, Effect, ExecutorError, RecordingProgress, TargetNotFound
from bot.executors.docker import DockerTarget, DockerWorkload
from bot.store import create_store

if TYPE_CHECKING:
    from tests.podman import Containers, Images, Podman

pytest_plugins = ["tests.podman"]  # its fixtures: podman, images, docker_client, containers

SERVICE = "api"
AN_HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)
MakeWorkload = Callable[..., DockerWorkload]


async def http_get(port: int, path: str = "/version") -> str:
    """GET from a container, retrying briefly: a server that was just started may not listen yet."""

    def get() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return str(response.read().decode().strip())

    for _ in range(30):
        try:
            return await asyncio.to_thread(get)
        except OSError:
            await asyncio.sleep(0.1)
    return await asyncio.to_thread(get)


def started_at(containers: Containers, name: str) -> str:
    return str(containers.get(name).attrs["State"]["StartedAt"])


@pytest.fixture
async def history(tmp_path: Path) -> AsyncIterator[DeployHistory]:
    """The real store, on a SQLite file in the test's directory."""
    store = create_store(f"sqlite:///{tmp_path / 'h.db'}")
    await store.open()
    await store.migrate()
    yield store
    await store.close()


@pytest.fixture
async def workload(podman: Podman, history: DeployHistory) -> AsyncIterator[MakeWorkload]:
    """Builds executors on the podman service with short timeouts; closes them afterwards."""
    made: list[DockerWorkload] = []

    def make(**fields: object) -> DockerWorkload:
        options = {"type": "docker", "docker_host": podman.base_url, "start_timeout": 10, "poll_interval": 0.2}
        made.append(DockerWorkload(SERVICE, DockerTarget.model_validate({**options, **fields}), history, SystemClock()))
        return made[-1]

    yield make
    for each in made:
        await each.close()


# -- restart ---------------------------------------------------------------------------------------------------


async def test_restart_changes_started_at_and_waits_until_running(
    containers: Containers, images: Images, workload: MakeWorkload, history: DeployHistory
) -> None:
    name, port = containers.name("api"), containers.port()
    containers.run(name, images.v1, port=port)
    before = started_at(containers, name)
    executor = workload(container=name)
    progress = RecordingProgress()

    summary = await executor.restart(progress)

    assert started_at(containers, name) != before
    assert containers.get(name).status == "running"
    assert [s.title for s in progress.steps] == executor.restart_plan()
    assert [s.state for s in progress.steps] == ["succeeded", "succeeded"]
    assert progress.steps[1].detail.startswith("running again in ")
    assert summary.startswith(f"Restarted container {name}; running again in ")
    assert await http_get(port) == "1"
    [recorded] = await history.deploy_history(SERVICE)
    assert recorded.image == images.v1 and recorded.digest and recorded.digest.startswith("sha256:")


async def test_restart_waits_until_the_healthcheck_passes(
    podman: Podman, containers: Containers, images: Images, workload: MakeWorkload
) -> None:
    name, port = containers.name("api"), containers.port()
    check = ["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{port}/health"]
    containers.run(name, images.v1, port=port, healthcheck={"test": check, "interval": 1_000_000_000, "retries": 1})
    progress = RecordingProgress()

    async with podman.health_timer(name):
        await workload(container=name).restart(progress)

    assert containers.get(name).attrs["State"]["Health"]["Status"] == "healthy"
    assert progress.steps[1].state == "succeeded"


async def test_restart_of_an_unhealthy_container_fails_saying_unhealthy(
    podman: Podman, containers: Containers, images: Images, workload: MakeWorkload
) -> None:
    name, port = containers.name("api"), containers.port()
    check = ["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{port}/missing"]
    containers.run(name, images.v1, port=port, healthcheck={"test": check, "interval": 1_000_000_000, "retries": 1})
    progress = RecordingProgress()

    async with podman.health_timer(name):
        with pytest.raises(ExecutorError) as raised:
            await workload(container=name, start_timeout=3).restart(progress)

    assert f"container {name} is running but unhealthy" in raised.value.state
    assert raised.value.effect is Effect.CHANGED  # restarted, and not healthy since
    assert "within 3 s" in str(raised.value)
    assert [s.state for s in progress.steps] == ["succeeded", "failed"]


async def test_restart_by_labels_restarts_every_matching_container_and_no_other(
    containers: Containers, images: Images, workload: MakeWorkload
) -> None:
    service = {"com.docker.compose.service": f"api-{containers.run_id}"}
    names = [containers.name("api-1"), containers.name("api-2")]
    for name in names:
        containers.run(name, images.v1, port=containers.port(), labels=service)
    other = containers.name("worker")
    containers.run(other, images.v1, port=containers.port(), labels={"com.docker.compose.service": "worker"})
    before = {name: started_at(containers, name) for name in [*names, other]}
    executor = workload(labels=service)
    progress = RecordingProgress()

    await executor.restart(progress)

    assert all(started_at(containers, name) != before[name] for name in names)
    assert started_at(containers, other) == before[other]
    assert [s.title for s in progress.steps] == executor.restart_plan()
    assert progress.steps[0].title == f"Restart the containers matching com.docker.compose.service=api-{containers.run_id}"
    assert progress.steps[0].detail == f"restarted {names[0]}, {names[1]}"


async def test_restart_of_a_missing_container_raises_target_not_found(
    workload: MakeWorkload, containers: Containers
) -> None:
    with pytest.raises(TargetNotFound, match=r"^No Docker container named opsbot-nowhere\.$"):
        await workload(container="opsbot-nowhere").restart(RecordingProgress())
    with pytest.raises(TargetNotFound, match=r"^No Docker container matching app=nowhere-\w+.$") as raised:
        await workload(labels={"app": f"nowhere-{containers.run_id}"}).restart(RecordingProgress())
    assert (raised.value.state, raised.value.effect) == ("nothing was changed", Effect.UNTOUCHED)


async def test_restart_of_a_container_that_exits_right_away_fails_saying_exited(
    containers: Containers, images: Images, workload: MakeWorkload
) -> None:
    name, port = containers.name("api"), containers.port()
    # Serves on its first start; every later start finds the marker and exits 3 at once.
    script = f"[ -e /tmp/started ] && exit 3; : > /tmp/started; exec httpd -f -p {port} -h /www"
    containers.run(name, images.v1, command=["sh", "-c", script])
    assert await http_get(port) == "1"
    progress = RecordingProgress()

    with pytest.raises(ExecutorError) as raised:
        await workload(container=name).restart(progress)

    assert raised.value.state == f"container {name} is exited (code 3)" and raised.value.effect is Effect.CHANGED
    assert progress.steps[-1].state == "failed"


async def test_unreachable_docker_is_an_executor_error_that_changed_nothing(workload: MakeWorkload) -> None:
    executor = workload(container="api", docker_host="unix:///nonexistent/docker.sock")
    with pytest.raises(ExecutorError, match=r"cannot reach Docker at unix:///nonexistent/docker\.sock") as raised:
        await executor.restart(RecordingProgress())
    assert (raised.value.state, raised.value.effect) == ("nothing was changed", Effect.UNTOUCHED)


# -- rollback --------------------------------------------------------------------------------------------------


async def test_rollback_recreates_the_previous_image_keeping_name_labels_env_ports_and_volumes(
    containers: Containers, images: Images, workload: MakeWorkload, history: DeployHistory
) -> None:
    name, port, volume = containers.name("api"), containers.port(), containers.name("data")
    settings: dict[str, Any] = {
        "network_mode": "bridge",
        "ports": {"8080/tcp": ("127.0.0.1", port)},  # the image's own command listens on 8080
        "environment": {"APP_MODE": "test"},
        "labels": {"team": "payments"},
        "volumes": {volume: {"bind": "/www/data", "mode": "rw"}},
        "restart_policy": {"Name": "on-failure", "MaximumRetryCount": 3},
    }
    containers.run(name, images.v1, **settings)
    executor = workload(container=name)
    await executor.restart(RecordingProgress())  # the bot saw it run version 1
    containers.get(name).remove(force=True)  # then someone deployed version 2
    deployed = containers.run(name, images.v2, **settings)
    mountpoint = Path(containers.client.volumes.get(volume).attrs["Mountpoint"])
    (mountpoint / "note").write_text("kept\n")
    assert await http_get(port) == "2"
    progress = RecordingProgress()

    summary = await executor.rollback(None, progress)

    now = containers.get(name)
    assert now.id != deployed.id
    assert now.attrs["Config"]["Image"] == images.v1
    assert {"APP_MODE=test", "IMAGE_VERSION=1"} <= set(now.attrs["Config"]["Env"])
    assert "IMAGE_VERSION=2" not in now.attrs["Config"]["Env"]  # the old image's env is not pinned
    assert now.attrs["Config"]["Labels"]["team"] == "payments"
    assert now.attrs["Config"]["Labels"]["org.opsbot.image"] == "1"
    assert now.attrs["HostConfig"]["PortBindings"] == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    assert now.attrs["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert await http_get(port) == "1"
    assert await http_get(port, "/data/note") == "kept"
    assert [c.name for c in containers.client.containers.list(all=True, filters={"name": name})] == [name]
    assert [s.title for s in progress.steps] == executor.rollback_plan(None)
    assert progress.steps[0].detail == images.v1
    assert summary.startswith(f"Rolled back container {name} from {images.v2} to {images.v1}; running in ")
    revisions = await executor.revisions()
    assert [(r.image, r.current) for r in revisions] == [(images.v2, False), (images.v1, True)]


async def test_rollback_keeps_the_container_on_its_own_network_with_its_aliases(
    containers: Containers, images: Images, workload: MakeWorkload, history: DeployHistory
) -> None:
    await history.record_deploy(SERVICE, images.v1, None, AN_HOUR_AGO)
    network, name = containers.name("net"), containers.name("api")
    containers.client.networks.create(network)
    endpoint = containers.client.api.create_endpoint_config(aliases=["api"])
    containers.run(name, images.v2, network=network, networking_config={network: endpoint})

    await workload(container=name).rollback("1", RecordingProgress())

    networks = containers.get(name).attrs["NetworkSettings"]["Networks"]
    assert list(networks) == [network]
    assert "api" in networks[network]["Aliases"]


async def test_rollback_to_a_bare_tag_recreates_every_labelled_container(
    containers: Containers, images: Images, workload: MakeWorkload, history: DeployHistory
) -> None:
    await history.record_deploy(SERVICE, images.v1, None, AN_HOUR_AGO)
    service = {"com.docker.compose.service": f"api-{containers.run_id}"}
    ports = {containers.name("api-1"): containers.port(), containers.name("api-2"): containers.port()}
    for name, port in ports.items():
        containers.run(name, images.v2, port=port, labels=service, environment={"APP_MODE": "test"})
    executor = workload(labels=service)
    progress = RecordingProgress()

    await executor.rollback("1", progress)

    for name, port in ports.items():
        assert containers.get(name).attrs["Config"]["Image"] == images.v1
        assert "APP_MODE=test" in containers.get(name).attrs["Config"]["Env"]
        assert await http_get(port) == "1"
    assert [s.title for s in progress.steps] == executor.rollback_plan("1")
    assert [r.image for r in await executor.revisions() if r.current] == [images.v1]


async def test_rollback_to_an_image_that_exits_puts_the_old_container_back(
    containers: Containers, images: Images, workload: MakeWorkload, history: DeployHistory
) -> None:
    await history.record_deploy(SERVICE, images.broken, None, AN_HOUR_AGO)
    name, port = containers.name("api"), containers.port()
    original = containers.run(name, images.v2, port=port)
    progress = RecordingProgress()

    with pytest.raises(ExecutorError) as raised:
        await workload(container=name).rollback("broken", progress)

    assert f"Rolling back to {images.broken} failed: container {name} is exited (code 1)" in str(raised.value)
    assert raised.value.state.startswith(f"put back: container {name} runs {images.v2} again")
    assert raised.value.effect is Effect.UNTOUCHED  # the old container runs again, as before
    assert containers.get(name).id == original.id
    assert containers.get(name).status == "running"
    assert await http_get(port) == "2"
    assert [c.id for c in containers.client.containers.list(all=True, filters={"name": name})] == [original.id]
    assert [s.state for s in progress.steps] == ["succeeded", "succeeded", "failed"]


async def test_rollback_to_an_unknown_image_lists_the_known_ones_and_changes_nothing(
    containers: Containers, images: Images, workload: MakeWorkload, history: DeployHistory
) -> None:
    await history.record_deploy(SERVICE, images.v1, None, AN_HOUR_AGO)
    name = containers.name("api")
    original = containers.run(name, images.v2, port=containers.port())

    with pytest.raises(ExecutorError) as raised:
        await workload(container=name).rollback("9", RecordingProgress())

    assert str(raised.value) == (
        f"{SERVICE} has never run {images.repository}:9. Known images: {images.v2}, {images.v1}."
    )
    assert raised.value.state == f"unchanged: container {name} still runs {images.v2}"
    assert raised.value.effect is Effect.UNTOUCHED
    assert containers.get(name).id == original.id


async def test_rollback_to_an_image_gone_from_the_host_says_it_could_not_be_pulled(
    containers: Containers, images: Images, workload: MakeWorkload, history: DeployHistory
) -> None:
    gone = f"{images.repository}:pruned"
    await history.record_deploy(SERVICE, gone, None, AN_HOUR_AGO)
    name = containers.name("api")
    original = containers.run(name, images.v2, port=containers.port())

    with pytest.raises(ExecutorError, match=f"{gone} is no longer on the Docker host and could not be pulled") as raised:
        await workload(container=name).rollback("pruned", RecordingProgress())

    assert (raised.value.state, raised.value.effect) == ("nothing was changed", Effect.UNTOUCHED)
    assert containers.get(name).id == original.id and containers.get(name).status == "running"


async def test_rollback_without_an_earlier_image_says_so(
    containers: Containers, images: Images, workload: MakeWorkload
) -> None:
    name = containers.name("api")
    original = containers.run(name, images.v2, port=containers.port())

    with pytest.raises(ExecutorError, match=f"No image before {images.v2} is recorded for {SERVICE}"):
        await workload(container=name).rollback(None, RecordingProgress())

    assert containers.get(name).id == original.id


async def test_revisions_mark_the_running_image_even_before_it_is_recorded(
    containers: Containers, images: Images, workload: MakeWorkload, history: DeployHistory
) -> None:
    await history.record_deploy(SERVICE, images.v1, None, AN_HOUR_AGO)
    name = containers.name("api")
    containers.run(name, images.v2, port=containers.port())

    revisions = await workload(container=name).revisions()

    assert [(r.image, r.current) for r in revisions] == [(images.v2, True), (images.v1, False)]
    assert [r.image for r in await history.deploy_history(SERVICE)] == [images.v1]  # reading recorded nothing


# -- deploy ----------------------------------------------------------------------------------------------------


async def test_deploy_of_a_bare_tag_recreates_keeping_name_labels_env_ports_and_volumes_and_records_it(
    containers: Containers, images: Images, workload: MakeWorkload, history: DeployHistory
) -> None:
    name, port, volume = containers.name("api"), containers.port(), containers.name("data")
    original = containers.run(
        name,
        images.v1,
        network_mode="bridge",
        ports={"8080/tcp": ("127.0.0.1", port)},
        environment={"APP_MODE": "test"},
        labels={"team": "payments"},
        volumes={volume: {"bind": "/www/data", "mode": "rw"}},
    )
    (Path(containers.client.volumes.get(volume).attrs["Mountpoint"]) / "note").write_text("kept\n")
    executor = workload(container=name)
    progress = RecordingProgress()

    summary = await executor.deploy("2", progress)

    now = containers.get(name)
    assert now.id != original.id
    assert now.attrs["Config"]["Image"] == images.v2
    assert {"APP_MODE=test", "IMAGE_VERSION=2"} <= set(now.attrs["Config"]["Env"])
    assert now.attrs["Config"]["Labels"]["team"] == "payments"
    assert now.attrs["Config"]["Labels"]["org.opsbot.image"] == "2"
    assert now.attrs["HostConfig"]["PortBindings"] == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    assert await http_get(port) == "2"
    assert await http_get(port, "/data/note") == "kept"
    assert [c.name for c in containers.client.containers.list(all=True, filters={"name": name})] == [name]
    assert [s.title for s in progress.steps] == executor.deploy_plan("2")
    assert [s.state for s in progress.steps] == ["succeeded"] * 4
    assert summary.startswith(f"Deployed {images.v2} to container {name} (was {images.v1}); running in ")
    assert await executor.current_image() == images.v2
    assert [r.image for r in await history.deploy_history(SERVICE)] == [images.v2, images.v1]
    # The history is what `/ops rollback` reads: the previous image is the one deploy replaced.
    await executor.rollback(None, RecordingProgress())
    assert await executor.current_image() == images.v1


async def test_deploy_by_labels_recreates_only_the_containers_not_on_the_image(
    containers: Containers, images: Images, workload: MakeWorkload
) -> None:
    service = {"com.docker.compose.service": f"api-{containers.run_id}"}
    behind, ahead = containers.name("api-1"), containers.name("api-2")
    ports = {behind: containers.port(), ahead: containers.port()}
    containers.run(behind, images.v1, port=ports[behind], labels=service)
    kept = containers.run(ahead, images.v2, port=ports[ahead], labels=service)
    progress = RecordingProgress()

    summary = await workload(labels=service).deploy(images.v2, progress)

    assert containers.get(ahead).id == kept.id
    assert containers.get(behind).attrs["Config"]["Image"] == images.v2
    assert [await http_get(port) for port in ports.values()] == ["2", "2"]
    assert progress.steps[1].detail == f"old one set aside as {behind}-opsbot-old"
    assert f"(was {images.v1})" in summary


async def test_deploy_of_an_image_that_exits_puts_the_old_container_back(
    containers: Containers, images: Images, workload: MakeWorkload, history: DeployHistory
) -> None:
    name, port = containers.name("api"), containers.port()
    original = containers.run(name, images.v2, port=port)
    executor = workload(container=name)
    progress = RecordingProgress()

    with pytest.raises(ExecutorError) as raised:
        await executor.deploy("broken", progress)

    assert f"Deploying {images.broken} failed: container {name} is exited (code 1)" in str(raised.value)
    assert raised.value.state.startswith(f"put back: container {name} runs {images.v2} again")
    assert raised.value.effect is Effect.UNTOUCHED  # the old container runs again, as before
    assert containers.get(name).id == original.id
    assert containers.get(name).status == "running"
    assert await http_get(port) == "2"
    assert [c.id for c in containers.client.containers.list(all=True, filters={"name": name})] == [original.id]
    assert [s.state for s in progress.steps] == ["succeeded", "succeeded", "failed"]
    assert [r.image for r in await history.deploy_history(SERVICE)] == [images.v2]
    assert await executor.current_image() == images.v2


@pytest.mark.parametrize("image", ["1", "full reference"])
async def test_deploy_of_the_running_image_changes_nothing(
    containers: Containers, images: Images, workload: MakeWorkload, image: str
) -> None:
    name = containers.name("api")
    original = containers.run(name, images.v1, port=containers.port())
    before = started_at(containers, name)
    progress = RecordingProgress()

    summary = await workload(container=name).deploy(images.v1 if image == "full reference" else image, progress)

    assert summary == f"Nothing to do: container {name} already runs {images.v1}."
    assert containers.get(name).id == original.id
    assert started_at(containers, name) == before
    assert [(s.state, s.detail) for s in progress.steps] == [("succeeded", f"{images.v1}, already running")]


async def test_deploy_of_an_unknown_tag_says_it_could_not_be_pulled_and_changes_nothing(
    containers: Containers, images: Images, workload: MakeWorkload, history: DeployHistory
) -> None:
    name = containers.name("api")
    original = containers.run(name, images.v1, port=containers.port())
    progress = RecordingProgress()

    unknown = f"^{images.repository}:9 is not on the Docker host and could not be pulled"
    with pytest.raises(ExecutorError, match=unknown) as raised:
        await workload(container=name).deploy("9", progress)

    assert (raised.value.state, raised.value.effect) == ("nothing was changed", Effect.UNTOUCHED)
    assert progress.steps[0].state == "failed"
    assert containers.get(name).id == original.id and containers.get(name).status == "running"
    assert [r.image for r in await history.deploy_history(SERVICE)] == [images.v1]


# -- stop, start and scale -------------------------------------------------------------------------------------


async def test_stop_then_start_and_each_repeated_succeeds_saying_already(
    containers: Containers, images: Images, workload: MakeWorkload
) -> None:
    name, port = containers.name("api"), containers.port()
    containers.run(name, images.v1, port=port)
    executor = workload(container=name)
    stopping, again = RecordingProgress(), RecordingProgress()

    assert await executor.stop(stopping) == f"Stopped container {name}."
    assert await executor.stop(again) == f"Nothing to do: container {name} is already stopped."

    assert containers.get(name).status == "exited"
    assert (await executor.is_running(), await executor.running_count()) == (False, 0)
    assert [s.title for s in stopping.steps] == executor.stop_plan() == [f"Stop container {name}"]
    assert [(s.state, s.detail) for s in stopping.steps] == [("succeeded", f"stopped {name}")]
    assert again.steps[0].detail == f"{name} was already stopped"

    starting, again = RecordingProgress(), RecordingProgress()
    assert (await executor.start(starting)).startswith(f"Started container {name}; running in ")
    assert await http_get(port) == "1"
    assert await executor.start(again) == f"Nothing to do: container {name} is already running."

    assert (await executor.is_running(), await executor.running_count()) == (True, 1)
    assert [s.title for s in starting.steps] == executor.start_plan()
    assert [s.state for s in starting.steps] == ["succeeded", "succeeded"]
    assert again.steps[0].detail == f"{name} was already running"


async def test_start_of_a_container_that_exits_fails_saying_exited(
    containers: Containers, images: Images, workload: MakeWorkload
) -> None:
    name = containers.name("api")
    containers.run(name, images.broken)  # its httpd exits 1 at once
    containers.get(name).wait(timeout=10)
    progress = RecordingProgress()

    with pytest.raises(ExecutorError) as raised:
        await workload(container=name).start(progress)

    assert raised.value.state == f"container {name} is exited (code 1)"
    assert [s.state for s in progress.steps] == ["succeeded", "failed"]


async def test_scale_stops_at_zero_starts_every_labelled_container_at_their_number_and_refuses_others(
    containers: Containers, images: Images, workload: MakeWorkload
) -> None:
    service = {"com.docker.compose.service": f"api-{containers.run_id}"}
    ports = {containers.name("api-1"): containers.port(), containers.name("api-2"): containers.port()}
    for name, port in ports.items():
        containers.run(name, images.v1, port=port, labels=service)
    first, second = ports
    executor = workload(labels=service)
    progress = RecordingProgress()

    summary = await executor.scale(0, progress)

    assert summary == f"Stopped the containers matching com.docker.compose.service=api-{containers.run_id}."
    assert [s.title for s in progress.steps] == executor.scale_plan(0) == executor.stop_plan()
    assert progress.steps[0].detail == f"stopped {first}, {second}"
    assert [containers.get(name).status for name in ports] == ["exited", "exited"]
    assert await executor.running_count() == 0

    containers.get(first).start()
    progress = RecordingProgress()
    await executor.scale(2, progress)

    assert [s.title for s in progress.steps] == executor.scale_plan(2) == executor.start_plan()
    assert progress.steps[0].detail == f"started {second}; {first} was already running"
    assert [await http_get(port) for port in ports.values()] == ["1", "1"]
    assert (await executor.running_count(), await executor.is_running()) == (2, True)

    before = {name: started_at(containers, name) for name in ports}
    for replicas in (1, 3):
        with pytest.raises(ExecutorError, match=rf"0 \(stop all\) or 2 \(start all\), not {replicas}\. Labels naming "
                           r"both com\.docker\.compose\.project and com\.docker\.compose\.service select a Compose "
                           r"service, which scales to any count\.$") as raised:
            await executor.scale(replicas, RecordingProgress())
        assert (raised.value.state, raised.value.effect) == ("nothing was changed", Effect.UNTOUCHED)
    assert {name: started_at(containers, name) for name in ports} == before


# -- reading ---------------------------------------------------------------------------------------------------


async def test_logs_return_each_containers_timestamped_output_within_the_window(
    containers: Containers, images: Images, workload: MakeWorkload
) -> None:
    name = containers.name("api")
    script = "echo first; echo -e 'caf\\xe9' >&2; sleep 1.5; echo second; exec sleep 1000"
    container = containers.run(name, images.v1, command=["sh", "-c", script])
    executor = workload(container=name)

    async def wait_for(text: bytes) -> None:
        for _ in range(50):
            if text in await asyncio.to_thread(container.logs):
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared in the logs")

    await wait_for(b"first")
    await wait_for(b"caf")  # written right after "first": seen before the moment below, on a busy machine too
    between = datetime.now(UTC)  # after "first" and "café", at least a second before "second"
    await wait_for(b"second")

    [(named, everything)] = await executor.logs(timedelta(hours=1))
    [(_, after)] = await executor.logs(datetime.now(UTC) - between)
    [(_, before)] = await executor.logs(timedelta(hours=1), until=between)
    [(_, tail)] = await executor.logs(timedelta(hours=1), max_bytes=len(b"second\n"))

    assert named == name
    lines = everything.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["first", "caf\ufffd", "second"]
    assert all(line[:4].isdigit() and line[10] == "T" for line in lines)  # each starts with its timestamp
    assert [line.split(" ", 1)[1] for line in after.splitlines()] == ["second"]
    assert [line.split(" ", 1)[1] for line in before.splitlines()] == ["first", "caf\ufffd"]
    assert tail == "second\n"
    assert await executor.logs(-timedelta(hours=1)) == [(name, "")]  # a window that starts in the future


# -- plans and configuration -----------------------------------------------------------------------------------


async def test_plans_touch_nothing(
    containers: Containers, images: Images, workload: MakeWorkload, history: DeployHistory
) -> None:
    name = containers.name("api")
    containers.run(name, images.v1, port=containers.port())
    before = started_at(containers, name)
    executor = workload(container=name, start_timeout=60)
    unreachable = workload(container=name, docker_host="unix:///nonexistent/docker.sock")

    assert executor.restart_plan() == [f"Restart container {name}", "Wait until running and healthy (60 s)"]
    assert executor.rollback_plan("2") == [
        "Pick the image to roll back to (2)",
        f"Recreate container {name} from that image, keeping the old container aside",
        "Wait until running and healthy (60 s)",
        "Remove the old container",
    ]
    assert executor.deploy_plan("2") == [
        "Find image 2, pulling it if the host lacks it",
        *executor.rollback_plan("2")[1:],
    ]
    assert executor.recreate_plan() == [f"Pull the image container {name} runs again", *executor.rollback_plan("2")[1:]]
    assert executor.stop_plan() == [f"Stop container {name}"]
    assert executor.start_plan() == [f"Start container {name}", "Wait until running and healthy (60 s)"]
    assert (executor.scale_plan(0), executor.scale_plan(1)) == (executor.stop_plan(), executor.start_plan())
    assert unreachable.deploy_plan("2")[0] == "Find image 2, pulling it if the host lacks it"
    assert unreachable.restart_plan()[0] == f"Restart container {name}"
    assert unreachable.rollback_plan(None)[0] == "Pick the image to roll back to (the previous one)"
    assert workload(labels={"app": "api"}).describe() == "Docker containers labelled app=api"
    assert executor.describe() == f"Docker container {name}"
    assert started_at(containers, name) == before
    assert await history.deploy_history(SERVICE) == []


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"container": "api", "labels": {"app": "api"}},
        {"labels": {}},
        {"container": "api", "start_timeout": 0},
        {"container": "api", "poll_interval": -1},
        {"container": "api", "restart": "always"},
    ],
)
def test_target_needs_one_selector_and_positive_times(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        DockerTarget.model_validate({"type": "docker", **fields})
