"""The `prune` step kind: what may go (in memory: ages, owners, what stays in use, sizes and words), the catalog's
refusals, then one prune of a real podman host whose clock is set days ahead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bot.catalog_loading import CatalogInvalid, parse_catalog
from bot.clock import ManualClock
from bot.executors.base import PruneRules
from bot.executors.docker_prune import ContainerFact, HostFacts, ImageFact, Removal, Spared, choose, instant
from bot.runs import steps
from bot.runs.steps.prune import PruneStep, owner_in
from tests.docker_steps import create, docker_deps, perform, sqlite_store

if TYPE_CHECKING:
    import docker

    from bot.store.base import Store
    from tests.podman import Containers, Images, Podman

pytest_plugins = ["tests.podman"]
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
# Dangling images: one the running container still runs, one only the old job used, one several stopped ones use.
RUNNING, JOB, SHARED = "sha256:" + "a" * 64, "sha256:" + "b" * 64, "sha256:" + "c" * 64


def container(name: str, status: str = "exited", days: float = 9, image: str = SHARED, volumes: tuple[str, ...] = (),
              labels: dict[str, str] | None = None, size: int | None = 100) -> ContainerFact:
    return ContainerFact(f"id-{name}", name, status, image, NOW - timedelta(days=days), labels or {}, volumes, size)


FACTS = HostFacts(
    dangling=(ImageFact(RUNNING, 2048), ImageFact(JOB, 4096), ImageFact(SHARED, None)),
    containers=(
        container("web-1", "running", days=30, image=RUNNING, volumes=("shop_data",)),
        container("job-old", image=JOB, volumes=("shop_tmp",)),  # goes: so its image and volume are free
        container("job-new", days=2),
        container("api-1-opsbot-old", days=20),
        container("shop-worker-1", days=20, labels={"com.docker.compose.service": "worker"}),
        container("never-ran", "created", days=8, size=None),
        container("paused", "paused", days=40),
    ),
    volumes={"shop_data": 10, "shop_tmp": 1_000_000, "shop_cache": 7},
)


def rules(**fields: object) -> PruneRules:
    def owner(name: str, labels: object) -> str | None:
        return "worker" if name.startswith("shop-worker") else None

    return PruneRules(**{"stopped_for": timedelta(days=7), "volumes": frozenset({"shop_data", "shop_tmp", "gone"}),
                         "owner": owner, **fields})  # type: ignore[arg-type]


def test_old_stopped_containers_go_first_then_the_images_and_named_volumes_only_they_used() -> None:
    choice = choose(FACTS, rules(), NOW)

    assert choice.remove == (
        Removal("container", "id-job-old", "job-old", 100), Removal("container", "id-never-ran", "never-ran", None),
        Removal("image", JOB, "b" * 12, 4096), Removal("volume", "shop_tmp", "shop_tmp", 1_000_000),
    )
    assert choice.spared == (
        Spared("container api-1-opsbot-old", "set aside by a deploy or rollback that did not finish"),
        Spared("container shop-worker-1", "a container of service worker"),
        Spared(f"image {'a' * 12}", "used by container web-1"),
        Spared(f"image {'c' * 12}", "used by container job-new"),
        Spared("volume gone", "not on this host"),
        Spared("volume shop_data", "used by container web-1"),
    )
    assert choice.words() == (
        f"would remove 2 containers (job-old, never-ran), 1 image ({'b' * 12}), 1 volume (shop_tmp), freeing 980.7 KiB "
        "and 1 of unknown size; kept: container api-1-opsbot-old (set aside by a deploy or rollback that did not "
        f"finish), container shop-worker-1 (a container of service worker), image {'a' * 12} (used by container "
        f"web-1), image {'c' * 12} (used by container job-new), volume gone (not on this host), volume shop_data "
        "(used by container web-1)")


def test_without_a_container_age_stopped_containers_stay_and_keep_their_images_and_volumes() -> None:
    choice = choose(FACTS, rules(stopped_for=None, volumes=frozenset({"shop_tmp", "shop_cache"})), NOW)

    assert [(r.kind, r.label) for r in choice.remove] == [("volume", "shop_cache")]
    assert Spared(f"image {'b' * 12}", "used by container job-old") in choice.spared
    assert Spared("volume shop_tmp", "used by container job-old") in choice.spared
    nothing = choose(FACTS, rules(stopped_for=None, volumes=frozenset(), dangling_images=False), NOW)
    assert (nothing.remove, nothing.words()) == ((), "nothing to remove")


def test_docker_times_are_read_to_the_microsecond_and_the_zero_time_is_none() -> None:
    assert instant("2026-12-04T16:50:53.934389426Z") == datetime(2026, 12, 4, 16, 50, 53, 934389, tzinfo=UTC)
    assert instant("2026-12-04T17:50:53+01:00") == datetime(2026, 12, 4, 16, 50, 53, tzinfo=UTC)
    assert instant("0001-01-01T00:00:00Z") is None and instant("") is None


def test_the_catalogs_docker_targets_own_their_containers() -> None:
    catalog = parse_catalog("""
services:
  api: {environment: production, target: {type: docker, container: api}}
  shop: {environment: production, target: {type: docker, labels: {com.docker.compose.project: shop}}}
  jobs: {environment: production, target: {type: kubernetes, deployment: jobs}}
""")
    owner = owner_in(catalog)
    assert owner("api", {}) == "api"
    assert owner("shop-db-1", {"com.docker.compose.project": "shop", "x": "y"}) == "shop"
    assert owner("jobs", {"com.docker.compose.project": "other"}) is None


@pytest.mark.parametrize(("step", "says"), [
    ("{kind: prune, service: api, images: none}", "this prune removes nothing"),
    ("{kind: prune, service: api, volumes: ['../etc']}", "'../etc' is not in the expected form"),
    ("{kind: prune, service: jobs}", ("`prune` needs a target that can prune unused images, containers and volumes "
                                     "from its host, but services.jobs.target is kubernetes, which cannot")),
])
def test_a_prune_that_removes_nothing_names_a_bad_volume_or_is_not_on_docker_is_refused_at_load(step: str, says: str) -> None:
    with pytest.raises(CatalogInvalid, match=r"runbooks\.tidy\.steps\[1\]") as raised:
        parse_catalog(f"""
services:
  api: {{environment: production, target: {{type: docker, container: api}}}}
  jobs: {{environment: production, target: {{type: kubernetes, deployment: jobs}}}}
runbooks:
  tidy:
    services: [api, jobs]
    steps:
      - {step}
""")
    assert says in str(raised.value)


# -- against podman ----------------------------------------------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with sqlite_store(tmp_path) as made:
        yield made


async def test_a_prune_removes_exactly_the_old_stopped_containers_dangling_images_and_named_unused_volumes(
    podman: Podman, images: Images, containers: Containers, docker_client: docker.DockerClient, store: Store,
) -> None:
    volume = containers.name  # volumes named like the test's containers are removed with them
    for name in ("used", "free", "unnamed"):
        docker_client.volumes.create(volume(name))
    service = containers.name("api")
    containers.run(service, images.v1, command=["sleep", "1000"], volumes={volume("used"): {"bind": "/data"}})
    old = create(containers, containers.name("old-job"), images.v2)
    kept = create(containers, containers.name("worker-1"), images.v2, {"app": containers.run_id})
    dangling = podman.import_image(f"dangling-{containers.run_id}", "dangling")
    dangling_id = docker_client.images.get(dangling).id
    podman.run("untag", dangling)  # a build whose tag moved on: dangling, used by nothing
    clock = ManualClock(datetime.now(UTC) + timedelta(days=8))  # everything stopped now is 8 days old then
    deps = docker_deps(podman, store, f"container: {service}", clock=clock, services=f"""
  worker:
    environment: production
    target: {{type: docker, labels: {{app: {containers.run_id}}}}}
""")
    prune = PruneStep.model_validate({"kind": "prune", "service": "api", "containers_older_than_days": 7,
                                      "volumes": [volume("used"), volume("free"), "not-here"]})

    step = await steps.plan(deps, prune, {})

    assert step.title == (f"Prune the Docker host of api (Docker container {service}): dangling images, containers "
                          f"stopped over 7 days, unused volumes {volume('used')}, {volume('free')}, not-here")
    assert step.probe.startswith(f"read-only look: would remove 1 container ({old.name}), 1 image "
                                 f"({short(dangling_id)}), 1 volume ({volume('free')}), freeing ")
    assert step.undo is None and step.on_failure == "stop" and steps.traits_of(step).changes
    assert old.name in {c.name for c in docker_client.containers.list(all=True)}, "a plan removes nothing"

    done, book = await perform(deps, step)

    assert done.startswith(f"Removed 1 container ({old.name}), 1 image ({short(dangling_id)}), 1 volume "
                           f"({volume('free')}), freed ")
    assert f"container {kept.name} (a container of service worker)" in done
    assert f"volume {volume('used')} (used by container {service})" in done and book == {}
    left = {c.name for c in docker_client.containers.list(all=True)}
    assert old.name not in left and {service, kept.name} <= left
    assert dangling_id not in {i.id for i in docker_client.images.list(all=True)}
    assert {images.v1, images.v2} <= {tag for i in docker_client.images.list() for tag in i.tags}
    volumes = {v.name for v in docker_client.volumes.list()}
    assert volume("free") not in volumes and {volume("used"), volume("unnamed")} <= volumes
    assert (await perform(deps, step))[0].startswith("Nothing to do: nothing to remove; kept: ")


def short(image_id: str | None) -> str:
    return str(image_id).removeprefix("sha256:")[:12]
