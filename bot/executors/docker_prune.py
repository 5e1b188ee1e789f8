"""Pruning a Docker host: the facts read from it (dangling images, containers, the named volumes, their sizes), the
choice of what may go under a step's `PruneRules` (pure), and removing exactly that.

Not responsible for which host (the service's target says) nor for the rules (the `prune` step kind). Never forces a
removal: a container started, an image tagged or a volume taken into use since the look is refused and kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import docker.errors
from docker.models.containers import Container

from bot.executors.base import Effect, Progress, PruneRules, TargetState
from bot.executors.docker_session import STOPPED, UNCHANGED, UNKNOWN, DockerSession, id_of, name_of, short_id
from bot.executors.docker_target import ASIDE_SUFFIX
from bot.views import human_size
from bot.views.words import plural

INSTANT = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)")
NAMES_SHOWN = 5  # of each kind, in a plan line or a result; the rest are counted


@dataclass(frozen=True)
class ImageFact:
    id: str
    size: int | None  # bytes only it holds (its size less what it shares with other images); None: unknown


@dataclass(frozen=True)
class ContainerFact:
    id: str
    name: str
    status: str
    image_id: str
    since: datetime | None  # when it stopped, or was created if it never ran; None: unreadable (never old)
    labels: Mapping[str, str]
    volumes: tuple[str, ...]  # names of the volumes it mounts
    size: int | None  # its writable layer


@dataclass(frozen=True)
class HostFacts:
    dangling: tuple[ImageFact, ...]
    containers: tuple[ContainerFact, ...]
    volumes: Mapping[str, int | None]  # the named volumes that exist, with their size


@dataclass(frozen=True)
class Removal:
    kind: Literal["container", "image", "volume"]
    key: str  # what removing it takes: a container or image id, a volume name
    label: str  # how it reads
    size: int | None


@dataclass(frozen=True)
class Spared:
    label: str
    why: str


@dataclass(frozen=True)
class PruneChoice:
    remove: tuple[Removal, ...]  # containers first, then images and volumes they may have held
    spared: tuple[Spared, ...]  # what the rules name or would take, kept and why

    def words(self) -> str:
        if not self.remove:
            return "nothing to remove" + _spared(self.spared)
        return f"would remove {listing(self.remove)}{freed(self.remove, 'freeing')}{_spared(self.spared)}"


def choose(facts: HostFacts, rules: PruneRules, now: datetime) -> PruneChoice:
    """What may go: containers stopped for `rules.stopped_for` (never one set aside by a deploy, nor one of the
    catalog's services), then dangling images and the named volumes that no container that stays uses."""
    spared: list[Spared] = []
    old: list[ContainerFact] = []
    if rules.stopped_for is not None:
        for container in facts.containers:
            if container.status not in STOPPED or container.since is None or now - container.since < rules.stopped_for:
                continue
            owner = rules.owner(container.name, container.labels)
            if container.name.endswith(ASIDE_SUFFIX):
                spared.append(Spared(f"container {container.name}", "set aside by a deploy or rollback that did not "
                                                                    "finish"))
            elif owner is not None:
                spared.append(Spared(f"container {container.name}", f"a container of service {owner}"))
            else:
                old.append(container)
    going = {c.id for c in old}
    staying = [c for c in facts.containers if c.id not in going]
    remove = [Removal("container", c.id, c.name, c.size) for c in old]
    for image in facts.dangling if rules.dangling_images else ():
        user = next((c.name for c in staying if c.image_id == image.id), None)
        if user is None:
            remove.append(Removal("image", image.id, short_id(image.id), image.size))
        else:
            spared.append(Spared(f"image {short_id(image.id)}", f"used by container {user}"))
    for volume in sorted(rules.volumes):
        user = next((c.name for c in staying if volume in c.volumes), None)
        if volume not in facts.volumes:
            spared.append(Spared(f"volume {volume}", "not on this host"))
        elif user is not None:
            spared.append(Spared(f"volume {volume}", f"used by container {user}"))
        else:
            remove.append(Removal("volume", volume, volume, facts.volumes[volume]))
    return PruneChoice(tuple(remove), tuple(spared))


def listing(items: tuple[Removal, ...] | list[Removal]) -> str:
    """`2 containers (a, b), 1 image (3c3f4b759e36), volume cache` — each kind's first names."""
    parts = []
    for kind in ("container", "image", "volume"):
        names = [item.label for item in items if item.kind == kind]
        if names:
            more = f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
            parts.append(f"{plural(len(names), kind)} ({', '.join(names[:NAMES_SHOWN])}{more})")
    return ", ".join(parts)


def freed(items: tuple[Removal, ...] | list[Removal], verb: str) -> str:
    """`, freeing 4.5 MiB` (and how many sizes were unknown)."""
    known = sum(item.size for item in items if item.size is not None)
    unknown = sum(item.size is None for item in items)
    return f", {verb} {human_size(known)}" + (f" and {unknown} of unknown size" if unknown else "")


def _spared(spared: tuple[Spared, ...] | list[Spared]) -> str:
    return "; kept: " + ", ".join(f"{s.label} ({s.why})" for s in spared) if spared else ""


def instant(text: str | None) -> datetime | None:
    """Docker's RFC 3339 time with nanoseconds; None for its zero time (a container that never stopped)."""
    found = INSTANT.fullmatch(text or "")
    if found is None or found.group(1).startswith("0001-"):
        return None
    return datetime.fromisoformat(found.group(1) + (found.group(2) or "")[:7] + found.group(3))


def _size(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and value >= 0 else None


def _bare(identifier: str) -> str:
    return identifier.removeprefix("sha256:")


def container_fact(container: Container, sizes: Mapping[str, int | None]) -> ContainerFact:
    state = container.attrs.get("State") or {}
    since = instant(state.get("FinishedAt")) or instant(container.attrs.get("Created"))
    volumes = tuple(m["Name"] for m in container.attrs.get("Mounts") or [] if m.get("Type") == "volume" and m.get("Name"))
    return ContainerFact(id_of(container), name_of(container), container.status, str(container.attrs.get("Image")),
                         since, container.labels or {}, volumes, sizes.get(_bare(id_of(container))))


class Pruning(DockerSession):
    """Prunes the service's Docker host; `DockerWorkload` offers it."""

    async def prune_preview(self, rules: PruneRules) -> str:
        facts = await self._call("look at the Docker host", self._host_facts, rules, state=UNCHANGED)
        return choose(facts, rules, self._clock.now()).words()

    async def prune(self, rules: PruneRules, progress: Progress) -> str:
        async with progress.step("Find what can go (reads only)") as step:
            facts = await self._call("look at the Docker host", self._host_facts, rules, state=UNCHANGED)
            choice = choose(facts, rules, self._clock.now())
            step.detail = choice.words()
        removed: list[Removal] = []
        refused: list[Spared] = []
        async with progress.step("Remove it, without force") as step:
            for item in choice.remove:
                so_far = TargetState(f"removed {listing(removed)}" if removed else UNKNOWN.text,
                                     Effect.CHANGED if removed else Effect.UNKNOWN)
                why = await self._call(f"remove {item.kind} {item.label}", self._remove, item, state=so_far)
                if why is None:
                    removed.append(item)
                else:
                    refused.append(Spared(f"{item.kind} {item.label}", why))
            step.detail = f"removed {listing(removed)}" if removed else "removed nothing"
        if not removed:
            return "Nothing to do: nothing to remove" + _spared([*choice.spared, *refused]) + "."
        return f"Removed {listing(removed)}{freed(removed, 'freed')}{_spared([*choice.spared, *refused])}."

    def _host_facts(self, rules: PruneRules) -> HostFacts:
        client = self._client()
        usage = client.df()  # sizes as `docker system df` measures them
        image_sizes = {_bare(i["Id"]): _image_size(i) for i in usage.get("Images") or []}
        container_sizes = {_bare(c["Id"]): _size(c.get("SizeRw")) for c in usage.get("Containers") or []}
        volume_sizes = {v["Name"]: _size((v.get("UsageData") or {}).get("Size")) for v in usage.get("Volumes") or []}
        dangling = tuple(ImageFact(str(image.id), image_sizes.get(_bare(str(image.id))))
                         for image in client.images.list(filters={"dangling": True})) if rules.dangling_images else ()
        containers = tuple(container_fact(c, container_sizes)
                           for c in client.containers.list(all=True, ignore_removed=True))
        volumes: dict[str, int | None] = {}
        for name in sorted(rules.volumes):
            try:
                client.volumes.get(name)
            except docker.errors.NotFound:
                continue
            volumes[name] = volume_sizes.get(name)
        return HostFacts(dangling, containers, volumes)

    def _remove(self, item: Removal) -> str | None:
        """Remove one item, never forced; why the engine refused it (None: removed)."""
        api = self._client().api
        try:
            if item.kind == "container":
                api.remove_container(item.key)
            elif item.kind == "volume":
                api.remove_volume(item.key)
            else:
                # Removing by id would also untag: an image tagged since the look is no longer dangling.
                if [tag for tag in api.inspect_image(item.key).get("RepoTags") or [] if not tag.startswith("<none>")]:
                    return "tagged since"
                api.remove_image(item.key)
        except docker.errors.NotFound:
            return "already gone"
        except docker.errors.APIError as exc:
            return f"Docker said {exc.explanation or exc}"
        return None


def _image_size(entry: dict[str, Any]) -> int | None:
    size, shared = _size(entry.get("Size")), _size(entry.get("SharedSize"))
    return None if size is None else size - (shared or 0)
