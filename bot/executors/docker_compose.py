"""A Docker Compose service scaled to a count: which containers a count removes, starts or creates (copies of the
lowest-numbered one, named and labelled as Compose names and labels its replicas), and doing it.

Not responsible for scaling to 0 (`DockerWorkload.stop`, which keeps the containers to start again) nor for targets
that are not one Compose service (those start and stop as a whole).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docker.errors
from docker.models.containers import Container

from bot.executors.base import Effect, ExecutorError, Progress, TargetState
from bot.executors.docker_config import recreate_config
from bot.executors.docker_session import UNCHANGED, UNKNOWN, DockerSession, id_of, name_of, stop_timeout
from bot.executors.docker_target import DockerTarget
from bot.views.words import plural

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
NUMBER_LABEL = "com.docker.compose.container-number"
SEPARATORS = ("-", "_")  # Compose v2 names replicas `project-service-1`; v1 named them `project_service_1`
STARTABLE = ("created", "exited")  # what `docker start` brings up; paused, restarting or dead ones are left alone
TRAILING_NUMBER = re.compile(r"[-_](\d+)$")


@dataclass(frozen=True)
class ComposeService:
    project: str
    service: str

    def name(self, number: int, separator: str) -> str:
        return f"{self.project}{separator}{self.service}{separator}{number}"

    def separator(self, member: Member) -> str | None:
        """How `member`'s name joins project, service and number; None when Compose did not name it (a
        `container_name:` in the compose file, which Compose itself refuses to scale)."""
        return next((s for s in SEPARATORS if member.name == self.name(member.number, s)), None)

    def __str__(self) -> str:
        return f"Compose service {self.service} (project {self.project})"


def compose_service(target: DockerTarget) -> ComposeService | None:
    """The Compose service a target's labels select, when they name both its project and its service."""
    labels = target.labels or {}
    if PROJECT_LABEL in labels and SERVICE_LABEL in labels:
        return ComposeService(labels[PROJECT_LABEL], labels[SERVICE_LABEL])
    return None


@dataclass(frozen=True)
class Member:
    """One container of the service, as scaling sees it."""

    name: str
    number: int
    status: str
    fixed_ports: tuple[str, ...] = ()  # host ports it publishes that a copy could not also take


def refusal(message: str) -> ExecutorError:
    return ExecutorError(message, state=UNCHANGED.text, effect=UNCHANGED.effect)


def member(name: str, labels: dict[str, str], status: str, attrs: dict[str, Any]) -> Member:
    """A container as a replica: its number from Compose's label (else its name's last part)."""
    number = labels.get(NUMBER_LABEL)
    if number is None or not number.isdigit():
        found = TRAILING_NUMBER.search(name)
        if found is None:
            raise refusal(f"Container {name} has no {NUMBER_LABEL} label and no number at the end of its name, so "
                          "opsbot cannot tell its place among the replicas; nothing was changed.")
        number = found.group(1)
    bindings = ((attrs.get("HostConfig") or {}).get("PortBindings") or {}).items()
    fixed = tuple(f"{b['HostPort']}:{port}" for port, each in bindings for b in each or []
                  if b.get("HostPort") not in (None, "", "0") and "-" not in b["HostPort"])
    return Member(name, int(number), status, fixed)


def _member_of(container: Container) -> Member:
    return member(name_of(container), container.labels or {}, container.status, container.attrs)


@dataclass(frozen=True)
class ScaleChange:
    """What scaling to `replicas` does: stop and remove the highest-numbered running containers, or start stopped
    ones (lowest-numbered first) and create copies of `source` for the rest. Stopped containers beyond the count are
    left as they are."""

    replicas: int
    running: tuple[str, ...]
    remove: tuple[str, ...] = ()  # highest number first
    start: tuple[str, ...] = ()
    create: tuple[tuple[str, int], ...] = ()  # (name, number)
    source: str = ""

    @property
    def nothing(self) -> bool:
        return not (self.remove or self.start or self.create)

    def words(self, *, done: bool = False) -> str:
        """`removes a, b` or `starts a; creates c as copies of a` (`removed`, `started`, `created` once done)."""
        remove, start, create = ("removed", "started", "created") if done else ("removes", "starts", "creates")
        parts = [f"{remove} {', '.join(self.remove)}"] if self.remove else []
        if self.start:
            parts.append(f"{start} {', '.join(self.start)}")
        if self.create:
            copies = "as a copy" if len(self.create) == 1 else "as copies"
            parts.append(f"{create} {', '.join(name for name, _ in self.create)} {copies} of {self.source}")
        return "; ".join(parts) or f"changes nothing ({plural(len(self.running), 'container')} running)"


def choose(compose: ComposeService, members: list[Member], replicas: int) -> ScaleChange:
    """The change that leaves `replicas` (at least 1) running; refuses (nothing touched) what cannot be copied."""
    if replicas < 1:  # 0 is a stop (`DockerWorkload.scale`); below it, slicing would pick containers to remove
        raise refusal(f"{compose} cannot be scaled to {replicas}: give 0 (stop all) or more; nothing was changed.")
    ordered = sorted(members, key=lambda m: (m.number, m.name))
    running = [m for m in ordered if m.status == "running"]
    names = tuple(m.name for m in running)
    if replicas <= len(running):
        return ScaleChange(replicas, names, remove=tuple(m.name for m in reversed(running[replicas:])))
    start = [m for m in ordered if m.status in STARTABLE][: replicas - len(running)]
    missing = replicas - len(running) - len(start)
    if not missing:
        return ScaleChange(replicas, names, start=tuple(m.name for m in start))
    source = ordered[0]
    separator = compose.separator(source)
    if separator is None:
        raise refusal(f"Container {source.name} is not named as Compose names replicas "
                      f"({compose.name(source.number, '-')}): its compose file gives it a `container_name`, so no "
                      "copy can be named beside it; nothing was changed.")
    if source.fixed_ports:
        raise refusal(f"Container {source.name} publishes host port {', '.join(source.fixed_ports)}, which a copy "
                      "cannot also take: publish a range of host ports (`8080-8089:80`) or none to scale it; "
                      "nothing was changed.")
    top = max(m.number for m in ordered)
    create = tuple((compose.name(n, separator), n) for n in range(top + 1, top + 1 + missing))
    return ScaleChange(replicas, names, start=tuple(m.name for m in start), create=create, source=source.name)


def copy_config(
    attrs: dict[str, Any], image_config: dict[str, Any], image: str, name: str, number: int
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The create request for a copy of a container as replica `number` called `name`, and the extra networks to
    connect it to: the same settings, labels and networks (its own name as the alias the original had under its
    name), volumes of its own where the original has anonymous ones."""
    config, networks = recreate_config(attrs, image_config, image, same_volumes=False)
    config.pop("MacAddress", None)  # an address set on the original belongs to it alone
    config["Labels"] = {**config["Labels"], NUMBER_LABEL: str(number)}
    original = str(attrs.get("Name") or "").lstrip("/")
    endpoints = [*networks.values(), *((config.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}).values()]
    for endpoint in endpoints:
        endpoint["Aliases"] = [name if alias == original else alias for alias in endpoint.get("Aliases") or []] or None
    return config, networks


class ComposeScaling(DockerSession):
    """Scaling a Compose service to any count; `DockerWorkload` offers it through `scale`."""

    def _compose_scale_titles(self, compose: ComposeService, replicas: int) -> list[str]:
        return [f"Scale {compose} to {replicas}: remove, start or create containers", self._wait_title()]

    async def _compose_change(self, compose: ComposeService, replicas: int) -> tuple[ScaleChange, list[Container]]:
        found = await self._find()
        return choose(compose, [_member_of(c) for c in found], replicas), found

    async def _scale_compose(self, compose: ComposeService, replicas: int, progress: Progress) -> str:
        scale_title, wait_title = self._compose_scale_titles(compose, replicas)
        done: list[str] = []  # what this scale changed so far, in words: a failure's state starts with it
        async with progress.step(scale_title) as step:
            change, found = await self._compose_change(compose, replicas)
            by_name = {name_of(c): c for c in found}
            started = self._clock.monotonic()
            for name in change.remove:
                await self._remove_replica(by_name[name], done)
            for name in change.start:
                await self._act(f"start container {name}", by_name[name].start, done, f"{name} started")
            before_copies = list(done)
            made = await self._create_copies(by_name[change.source], change.create, done) if change.create else []
            step.detail = change.words(done=True)
        if change.nothing:
            return f"Nothing to do: {compose} already has {plural(replicas, 'container')} running."
        if not (change.start or change.create):
            return f"Scaled {compose} to {replicas}: {change.words(done=True)}."
        async with progress.step(wait_title) as step:
            try:
                seconds = await self._wait_ready([by_name[n] for n in change.start] + made, started, Effect.CHANGED)
            except ExecutorError as exc:
                raise await self._without_copies(made, exc, before_copies) from exc
            step.detail = f"running in {seconds:.1f} s"
        return f"Scaled {compose} to {replicas}: {change.words(done=True)}; running in {seconds:.1f} s."

    async def _act(self, doing: str, call: Callable[..., object], done: list[str], did: str, **kwargs: Any) -> None:
        """One change; its failure says what changed before it (and is unknown when nothing had: the call itself
        may have acted)."""
        try:
            await self._call(doing, call, state=UNKNOWN, **kwargs)
        except ExecutorError as exc:
            exc.state = "; ".join([*done, exc.state])
            exc.effect = Effect.CHANGED if done else exc.effect
            raise
        done.append(did)

    async def _remove_replica(self, container: Container, done: list[str]) -> None:
        name = name_of(container)
        if container.status not in ("created", "exited", "dead"):
            await self._act(f"stop container {name}", container.stop, done, f"{name} stopped",
                            timeout=stop_timeout(container))
        await self._act(f"remove container {name}", container.remove, done, f"{name} removed")

    async def _create_copies(self, source: Container, create: tuple[tuple[str, int], ...], done: list[str]
                             ) -> list[Container]:
        """Create and start each copy; on a failure, remove the copies made and raise what is left."""
        made: list[Container] = []
        before = list(done)
        try:
            image, image_config = await self._call(f"inspect the image of container {name_of(source)}",
                                                   self._copy_image, source, state=UNCHANGED)
            for name, number in create:
                config, networks = copy_config(source.attrs, image_config, image, name, number)
                await self._call(f"create container {name}", self._create_copy, config, networks, name, made,
                                 state=UNKNOWN)
                await self._call(f"start container {name}", made[-1].start, state=UNKNOWN)
                done.append(f"{name} created")
        except ExecutorError as exc:
            raise await self._without_copies(made, exc, before) from exc
        return made

    def _copy_image(self, source: Container) -> tuple[str, dict[str, Any]]:
        """What a copy is created from: the reference the original was, while it still names the original's image
        (else that image by id), and the image's own settings."""
        images, image_id, reference = self._client().images, source.attrs["Image"], source.attrs["Config"]["Image"]
        try:
            image = images.get(image_id)
        except docker.errors.ImageNotFound:
            return reference, {}
        try:
            same = images.get(reference).id == image_id
        except docker.errors.ImageNotFound:
            same = False
        return (reference if same else image_id), image.attrs.get("Config") or {}

    def _create_copy(self, config: dict[str, Any], networks: dict[str, dict[str, Any]], name: str,
                     made: list[Container]) -> None:
        client = self._client()
        created = client.api.create_container_from_config(config, name=name)
        made.append(client.containers.get(created["Id"]))
        for network, endpoint in networks.items():
            client.api.connect_container_to_network(id_of(made[-1]), network, aliases=endpoint["Aliases"])

    async def _without_copies(self, made: list[Container], cause: ExecutorError, before: list[str]) -> ExecutorError:
        """The error to raise once the copies made are removed again: untouched when nothing else had changed."""
        left = []
        for container in made:
            try:
                await self._call(f"remove container {name_of(container)}", container.remove, force=True,
                                 state=UNKNOWN)
            except ExecutorError:
                left.append(name_of(container))
        if not made:
            state = TargetState("; ".join([*before, cause.state]), Effect.CHANGED if before else cause.effect)
        elif left:
            state = TargetState("; ".join([*before, f"{', '.join(left)} could not be removed again"]), Effect.CHANGED)
        else:
            removed = f"the new {'container was' if len(made) == 1 else 'containers were'} removed again"
            state = TargetState("; ".join([*before, removed]), Effect.CHANGED if before else Effect.UNTOUCHED)
        return ExecutorError(f"Scaling up failed: {cause}", state=state.text, effect=state.effect)

    async def scale_preview(self, replicas: int) -> str:
        """What `scale(replicas)` would do, in words. Reads only."""
        found = await self._find()
        running = sum(c.status == "running" for c in found)
        now = f"{running} running now"
        compose = compose_service(self._target)
        if replicas == 0:
            return f"{now}; stops them all, keeping them to start again"
        if compose is None:
            if replicas != len(found):
                return f"{now}; refused: these containers start and stop as a whole (0 or {len(found)})"
            return now
        return f"{now}; {(await self._compose_change(compose, replicas))[0].words()}"
