"""Docker executor: restart, stop, start, deploy, recreate and roll back a service's containers (one by name, or all
by labels), scale a Compose service, prune its host, read their logs and run commands inside them. Not responsible for
policy or locks, nor for building images; talks only via docker-py.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.errors
import docker.utils
import requests.exceptions
from docker.models.containers import Container
from docker.models.images import Image

from bot.executors.base import (
    Effect,
    ExecResult,
    ExecutorError,
    OutputTail,
    Progress,
    Revision,
    TargetNotFound,
    TargetState,
)
from bot.executors.docker_compose import ComposeScaling, compose_service
from bot.executors.docker_config import recreate_config
from bot.executors.docker_prune import Pruning
from bot.executors.docker_session import (
    STOPPED,
    UNCHANGED,
    UNKNOWN,
    docker_client,
    id_of,
    name_of,
    part_way,
    short_id,
    stop_timeout,
)
from bot.executors.docker_target import ASIDE_SUFFIX, DockerTarget

BARE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")  # Docker's tag grammar: no "/", ":" or "@"
IMAGE_ID = re.compile(r"(sha256:)?[0-9a-f]{64}")
STARTABLE = ("created", "exited")  # the states `docker start` brings up; paused/dead need more than a start
EXEC_SETTLE = 5.0  # seconds to wait for a killed exec to end and for its exit code to show
T = TypeVar("T")
__all__ = ["ASIDE_SUFFIX", "DockerTarget", "DockerWorkload", "docker_client"]


@dataclass
class _ExecJob:
    """One exec under way: its id once created, and its output so far (filled by the reading thread)."""

    output: OutputTail
    exec_id: str | None = None


@dataclass
class _Swap:
    """One container being replaced, and how far the replacement got (what putting it back must undo)."""

    old: Container
    name: str
    image: str
    was_running: bool
    stopped: bool = False
    aside: bool = False
    new: Container | None = None


class DockerWorkload(ComposeScaling, Pruning):
    """A service that runs as Docker containers: restarts, rolls back, deploys, recreates, scales, starts/stops, prunes
    its host, logs, execs."""

    def describe(self) -> str:
        kind = "containers labelled" if self._target.labels else "container"
        return f"Docker {kind} {self._target.selector}"

    def _recreate_titles(self) -> list[str]:
        plural = "containers" if self._target.labels else "container"
        return [
            f"Recreate {self._target.subject} from that image, keeping the old {plural} aside",
            self._wait_title(),
            f"Remove the old {plural}",
        ]

    def restart_plan(self) -> list[str]:
        return [f"Restart {self._target.subject}", self._wait_title()]

    def rollback_plan(self, to: str | None) -> list[str]:
        which = "the previous one" if to is None else to
        return [f"Pick the image to roll back to ({which})", *self._recreate_titles()]

    def deploy_plan(self, image: str) -> list[str]:
        return [f"Find image {image}, pulling it if the host lacks it", *self._recreate_titles()]

    def stop_plan(self) -> list[str]:
        return [f"Stop {self._target.subject}"]

    def start_plan(self) -> list[str]:
        return [f"Start {self._target.subject}", self._wait_title()]

    def scale_plan(self, replicas: int) -> list[str]:
        """0 is a stop (the containers are kept); a Compose service goes to any count; other containers have no
        replicas, so any other count is a start that checks the count first."""
        compose = compose_service(self._target)
        if replicas == 0 or compose is None:
            return self.stop_plan() if replicas == 0 else self.start_plan()
        return self._compose_scale_titles(compose, replicas)

    def recreate_plan(self) -> list[str]:
        return [f"Pull the image {self._target.subject} {self._run()} again", *self._recreate_titles()]

    async def restart(self, progress: Progress) -> str:
        restart_title, wait_title = self.restart_plan()
        async with progress.step(restart_title) as step:
            found = await self._find()
            await self._record_running(found)
            started = self._clock.monotonic()
            for index, container in enumerate(found):
                try:
                    await self._call(
                        f"restart container {container.name}", container.restart, timeout=stop_timeout(container),
                        state=UNKNOWN,
                    )
                except ExecutorError as exc:
                    exc.state = "".join(f"{c.name} restarted; " for c in found[:index]) + await self._state_of(container)
                    exc.effect = part_way(index)
                    raise
            step.detail = "restarted " + ", ".join(name_of(c) for c in found)
        async with progress.step(wait_title) as step:
            seconds = await self._wait_ready(found, started, Effect.CHANGED)
            step.detail = f"running again in {seconds:.1f} s"
        return f"Restarted {self._target.subject}; running again in {seconds:.1f} s."

    async def rollback(self, to: str | None, progress: Progress) -> str:
        pick_title, recreate_title, wait_title, remove_title = self.rollback_plan(to)
        async with progress.step(pick_title) as step:
            found = await self._find()
            running = await self._record_running(found)
            current = running[0]
            target = self._choose(await self._history.deploy_history(self._service), current, to)
            image = await self._call(f"find image {target.image}", self._local_image, target, state=UNCHANGED)
            step.detail = image
        titles = (recreate_title, wait_title, remove_title)
        pairs = list(zip(found, running, strict=True))
        seconds = await self._recreate(pairs, image, target, titles, f"Rolling back to {image}", progress)
        return f"Rolled back {self._target.subject} from {current.image} to {image}; running in {seconds:.1f} s."

    async def deploy(self, image: str, progress: Progress) -> str:
        """Recreate the containers not yet on `image` (a bare tag keeps the current repository); a no-op when all are,
        so undo can use it to ensure an image."""
        find_title, recreate_title, wait_title, remove_title = self.deploy_plan(image)
        async with progress.step(find_title) as step:
            found = await self._find()
            running = await self._record_running(found)
            wanted = f"{_repository(running[0].image)}:{image}" if BARE_TAG.fullmatch(image) else image
            target, image_id = await self._call(f"find image {wanted}", self._deployable, wanted, state=UNCHANGED)
            # The image id, not the reference, decides: a tag moved to a new build is not what runs.
            stale = [(c, rev) for c, rev in zip(found, running, strict=True) if c.attrs["Image"] != image_id]
            step.detail = target.image if stale else f"{target.image}, already running"
        if not stale:
            return f"Nothing to do: {self._target.subject} already runs {target.image}."
        titles = (recreate_title, wait_title, remove_title)
        seconds = await self._recreate(stale, target.image, target, titles, f"Deploying {target.image}", progress)
        was = ", ".join(dict.fromkeys(rev.image for _, rev in stale))
        return f"Deployed {target.image} to {self._target.subject} (was {was}); running in {seconds:.1f} s."

    async def recreate(self, progress: Progress, *, image_id: str | None = None, pull_timeout: float = 300) -> str:
        """Pull the reference the containers run again and recreate those not on the image it names now (the patch
        path, where a deploy of the running tag finds nothing to do). A registry that cannot be reached is no failure
        when the host's own copy of the reference is newer than what runs (built or loaded there). With `image_id`,
        recreate onto that image instead: the undo, which needs no pull."""
        pull_title, recreate_title, wait_title, remove_title = self.recreate_plan()
        async with progress.step(pull_title) as step:
            found = await self._find()
            running = await self._record_running(found)
            reference = await self._reference(found[0], running[0])
            failure = None
            if image_id is None:
                failure = await self._pull(reference, pull_timeout)
                create_from = reference
            else:
                create_from = await self._call(f"find image {short_id(image_id)}", self._local_image,
                                               Revision(id=reference, image=reference, digest=image_id), state=UNCHANGED)
            try:
                image = await self._call(f"inspect image {create_from}", self._image, create_from, state=UNCHANGED)
            except TargetNotFound as exc:
                if failure is None:
                    raise
                raise ExecutorError(f"Could not pull {reference} ({failure}), and the Docker host has no copy of it.",
                                    state=UNCHANGED.text, effect=UNCHANGED.effect) from exc
            stale = [(c, rev) for c, rev in zip(found, running, strict=True) if c.attrs["Image"] != image.id]
            was = ", ".join(dict.fromkeys(short_id(c.attrs["Image"]) for c, _ in stale))
            how = f"could not pull ({failure}); the host's own copy" if failure else "pulled"
            step.detail = f"{reference}: {how} is {short_id(str(image.id))}" + ("" if stale else ", already running")
        if not stale and failure:
            raise ExecutorError(f"Could not pull {reference} ({failure}), and the host's own {reference} is the image "
                                f"{self._target.subject} {self._is()} running: nothing was recreated.",
                                state=UNCHANGED.text, effect=UNCHANGED.effect)
        if not stale:
            newest = f"the newest {reference}" if image_id is None else f"image {short_id(image_id)}"
            return f"Nothing to do: {self._target.subject} already {self._run()} {newest}."
        record = _revision_of(reference, image)
        now = short_id(str(image.id))
        onto = f"{reference} ({now})" if image_id is None else f"image {now}, an earlier {reference}"
        seconds = await self._recreate(stale, create_from, record, (recreate_title, wait_title, remove_title),
                                       f"Recreating on {onto}", progress)
        unpulled = f" The pull failed ({failure}), so the host's own newer {reference} was used." if failure else ""
        return f"Recreated {self._target.subject} on {onto}, was {was}; running in {seconds:.1f} s.{unpulled}"

    async def image_id(self) -> str:
        return str((await self._find())[0].attrs["Image"])

    async def _reference(self, container: Container, running: Revision) -> str:
        """The reference a container was created from; for one created from an image id (a recreate undone once its
        tag had moved), the reference that image was recorded under."""
        configured = str(container.attrs["Config"]["Image"])
        if not IMAGE_ID.fullmatch(configured):
            return configured
        for revision in await self._history.deploy_history(self._service):
            if not IMAGE_ID.fullmatch(revision.image) and _same_image(revision, running):
                return revision.image
        raise ExecutorError(f"Container {name_of(container)} was created from image {short_id(configured)}, not from a "
                            "reference opsbot can pull again: deploy a tag to it first.",
                            state=UNCHANGED.text, effect=UNCHANGED.effect)

    async def _pull(self, reference: str, timeout: float) -> str | None:
        """Pull `reference` again; why it could not be (None: pulled). A pull that outlasts `timeout` fails the step
        with the containers untouched, rather than leaving the step to be cut short with its effect unknown."""
        try:
            return await asyncio.wait_for(
                self._call(f"pull {reference}", self._pull_blocking, reference, state=UNCHANGED), timeout)
        except TimeoutError:
            raise ExecutorError(f"Pulling {reference} did not finish within {timeout:g} s.",
                                state=f"{UNCHANGED.text} (the Docker host may still be pulling it)",
                                effect=Effect.UNTOUCHED) from None

    def _pull_blocking(self, reference: str) -> str | None:
        repository, tag = docker.utils.parse_repository_tag(reference)
        try:
            # The stream, not `images.pull`: a registry's refusal arrives as an event in it, not as an HTTP error.
            for event in self._client().api.pull(repository, tag=tag, stream=True, decode=True):
                if "error" in event:
                    return str((event.get("errorDetail") or {}).get("message") or event["error"])
        except docker.errors.APIError as exc:
            return str(exc.explanation or exc)
        return None

    def _image(self, reference: str) -> Image:
        return self._client().images.get(reference)

    async def stop(self, progress: Progress) -> str:
        [title] = self.stop_plan()
        async with progress.step(title) as step:
            found = await self._find()
            to_stop = [c for c in found if c.status not in STOPPED]
            for index, container in enumerate(to_stop):
                try:
                    # Each container's own stop timeout, as `docker stop` would use; docker-py's default is 10 s.
                    await self._call(
                        f"stop container {container.name}", container.stop, timeout=stop_timeout(container),
                        state=UNKNOWN,
                    )
                except ExecutorError as exc:
                    done = "".join(f"{c.name} stopped; " for c in to_stop[:index])
                    exc.state = done + await self._state_of(container)
                    exc.effect = part_way(index)
                    raise
            step.detail = _changed("stopped", to_stop, found, already="stopped")
        if not to_stop:
            return f"Nothing to do: {self._target.subject} {self._is()} already stopped."
        return f"Stopped {self._target.subject}."

    async def start(self, progress: Progress) -> str:
        return await self._start(progress, replicas=None)

    async def scale(self, replicas: int, progress: Progress) -> str:
        """0 stops every container and keeps them (scaling back starts them again). A Compose service then goes to
        any count (`bot.executors.docker_compose`); other containers only to their number, which starts them all."""
        if replicas == 0:
            return await self.stop(progress)
        compose = compose_service(self._target)
        if compose is not None:
            return await self._scale_compose(compose, replicas, progress)
        return await self._start(progress, replicas=replicas)

    async def is_running(self) -> bool:
        return all(c.status == "running" for c in await self._find())

    async def running_count(self) -> int:
        return sum(c.status == "running" for c in await self._find())

    async def container_count(self) -> int:
        """How many containers the service is (running or not): the only count `scale` accepts besides 0."""
        return len(await self._find())

    async def current_image(self) -> str:
        return (await self._current(await self._find())).image

    async def replicas(self) -> int:
        """Docker has no replica count: the containers running now stand for it."""
        return await self.running_count()

    async def logs(
        self, since: timedelta, max_bytes: int = 1_000_000, *, until: datetime | None = None
    ) -> list[tuple[str, str]]:
        """Each container's stdout and stderr over the last `since` (up to `until`), with timestamps, as its last
        `max_bytes` bytes."""
        start = self._clock.now() - since
        found = await self._find()
        read: list[tuple[str, str]] = []
        for container in found:

            def fetch(container: Container = container) -> bytes:
                return container.logs(stdout=True, stderr=True, timestamps=True, since=_unix(start),
                                      until=_unix(until) if until is not None else None)

            raw = await self._call(f"read the logs of container {container.name}", fetch, state=UNCHANGED)
            read.append((name_of(container), raw[max(0, len(raw) - max_bytes) :].decode(errors="replace")))
        return read

    async def scan_logs(self, since: timedelta, read: Callable[[str, Iterator[bytes]], T]) -> list[T]:
        """Stream each container's stdout and stderr over the last `since` (with timestamps, oldest first) into
        `read(container name, chunks of bytes)` in a worker thread, so a long window is never held whole as `logs`
        holds it; `read` may stop early. What `read` returned, a container at a time. Reads only."""
        start = self._clock.now() - since
        scanned: list[T] = []
        for container in await self._find():

            def scan(container: Container = container) -> T:
                stream = container.logs(stdout=True, stderr=True, timestamps=True, stream=True, follow=False,
                                        since=_unix(start))
                try:
                    return read(name_of(container), iter(stream))
                finally:
                    stream.close()  # a `read` that stopped early leaves the rest unread: drop the connection

            scanned.append(await self._call(f"read the logs of container {container.name}", scan, state=UNCHANGED))
        return scanned

    async def exec(self, command: list[str], *, container: str | None, timeout: float, max_bytes: int) -> ExecResult:
        """`docker exec` without a tty: the Engine API's exec create/start (stdout and stderr apart), its exit code
        from exec inspect. At `timeout` the process is killed inside the container: the API has no call to end an
        exec, so its in-container pid is read from this host's /proc and `kill -KILL` is exec'd beside it (the
        image needs a `kill`; else the process is signalled from here). An engine on another host leaves no way to
        end it, which the result says."""
        chosen = await self._exec_container(container)
        where, job = f"container {name_of(chosen)}", _ExecJob(OutputTail(max_bytes))
        started = self._clock.monotonic()
        reader = asyncio.ensure_future(self._call(f"run {command[0]} in {where}", self._exec_blocking, chosen,
                                                  command, job, state=UNCHANGED))
        reader.add_done_callback(_retrieved)  # a reader left behind after a kill must not log "never retrieved"
        try:
            await asyncio.wait_for(asyncio.shield(reader), timeout)
        except TimeoutError:
            stopped = await self._stop_exec(chosen, job, command)
            with contextlib.suppress(TimeoutError, ExecutorError):
                await asyncio.wait_for(asyncio.shield(reader), EXEC_SETTLE)  # the output written before the kill
            return ExecResult(where, None, bytes(job.output.stdout), bytes(job.output.stderr), job.output.dropped,
                              self._clock.monotonic() - started, stopped)
        except asyncio.CancelledError:
            # Cut from outside (the run's own timeout, a shutdown): the command must not run on unwatched.
            await asyncio.shield(self._stop_exec(chosen, job, command))
            raise
        except ExecutorError as exc:
            if job.exec_id is not None and exc.effect is Effect.UNTOUCHED:
                exc.state, exc.effect = f"unknown: the command may have run in {where}", Effect.UNKNOWN
            raise
        code = await self._exit_code(job, where)
        return ExecResult(where, code, bytes(job.output.stdout), bytes(job.output.stderr), job.output.dropped,
                          self._clock.monotonic() - started)

    async def _exec_container(self, name: str | None) -> Container:
        """The service's container called `name`, or its first running one (by name)."""
        found = await self._find()
        if name is not None:
            chosen = next((c for c in found if name_of(c) == name), None)
            if chosen is None:
                names = ", ".join(name_of(c) for c in found)
                raise TargetNotFound(f"{self._target.subject} has no container {name} (its containers: {names}).",
                                     state=UNCHANGED.text, effect=UNCHANGED.effect)
        else:
            chosen = next((c for c in found if c.status == "running"), found[0])
        if chosen.status != "running":
            raise ExecutorError(f"Cannot run a command in container {name_of(chosen)}: it is {chosen.status}.",
                                state=UNCHANGED.text, effect=UNCHANGED.effect)
        return chosen

    def _exec_blocking(self, container: Container, command: list[str], job: _ExecJob) -> None:
        api = self._client().api
        job.exec_id = str(api.exec_create(id_of(container), command, stdout=True, stderr=True, stdin=False,
                                          tty=False)["Id"])
        for stdout, stderr in api.exec_start(job.exec_id, stream=True, demux=True):
            job.output.take(stdout, stderr)

    async def _exit_code(self, job: _ExecJob, where: str) -> int:
        """The exit code, once the engine has it (podman may report the exec running a moment after its stream
        ended)."""
        deadline = self._clock.monotonic() + EXEC_SETTLE
        lost = TargetState(f"unknown: the command ran in {where}; how it ended is unknown", Effect.UNKNOWN)
        while True:
            found = await self._call(f"inspect the command in {where}", self._client().api.exec_inspect,
                                     job.exec_id, state=lost)
            if not found.get("Running") and found.get("ExitCode") is not None:
                return int(found["ExitCode"])
            if self._clock.monotonic() >= deadline:
                raise ExecutorError(f"The command in {where} closed its output but did not exit within "
                                    f"{EXEC_SETTLE:g} s.", state=lost.text, effect=lost.effect)
            await self._clock.sleep(0.05)

    async def _stop_exec(self, container: Container, job: _ExecJob, command: list[str]) -> str:
        """End a command that is still running; returns what was done, in words. Never raises."""
        if job.exec_id is None:
            return "it had not started"
        api, where = self._client().api, f"container {name_of(container)}"
        try:
            found = await asyncio.to_thread(api.exec_inspect, job.exec_id)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            return f"could not look it up to stop it ({exc}); it may still run in {where}"
        pid = int(found.get("Pid") or 0)
        if not found.get("Running"):
            return "it had ended"
        inner = _pid_inside(pid, command)
        if inner is None:
            return (f"the Docker Engine API cannot end an exec and its process (pid {pid} on the engine's host) is "
                    f"not visible here: it may still run in {where}")
        try:
            killer = await asyncio.to_thread(api.exec_create, id_of(container), ["kill", "-KILL", str(inner)],
                                             stdout=True, stderr=True, user="0")
            await asyncio.to_thread(api.exec_start, killer["Id"])
            killed = await asyncio.to_thread(api.exec_inspect, killer["Id"])
            how = f"killed (kill -KILL {inner} inside {where})"
            if killed.get("ExitCode") not in (0, None):
                raise ProcessLookupError(f"kill exited {killed.get('ExitCode')}")
        except (docker.errors.DockerException, requests.exceptions.RequestException, ProcessLookupError):
            try:  # no `kill` in the image: the process is on this host, signal it from here
                os.kill(pid, signal.SIGKILL)
                how = f"killed (SIGKILL to pid {pid} on this host)"
            except OSError as exc:
                return f"could not kill it ({exc.strerror}): it may still run in {where}"
        deadline = self._clock.monotonic() + EXEC_SETTLE
        while self._clock.monotonic() < deadline:
            with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
                if not (await asyncio.to_thread(api.exec_inspect, job.exec_id)).get("Running"):
                    return how
            await self._clock.sleep(0.05)
        return f"{how}, but it was still running {EXEC_SETTLE:g} s later"

    async def revisions(self) -> list[Revision]:
        current = await self._current(await self._find())
        marked, listed = False, []
        for revision in await self._history.deploy_history(self._service):
            is_current = not marked and _same_image(revision, current)
            marked = marked or is_current
            listed.append(dataclasses.replace(revision, current=is_current))
        # An image never recorded (the bot has not touched the service yet) is still what runs now.
        return listed if marked else [dataclasses.replace(current, current=True), *listed]

    async def _start(self, progress: Progress, *, replicas: int | None) -> str:
        start_title, wait_title = self.start_plan()
        async with progress.step(start_title) as step:
            found = await self._find()
            if replicas is not None and replicas != len(found):
                compose = ("" if self._target.container else " Labels naming both com.docker.compose.project and "
                           "com.docker.compose.service select a Compose service, which scales to any count.")
                raise ExecutorError(
                    f"Docker has no replicas: {self._target.subject} can be scaled to 0 (stop all) "
                    f"or {len(found)} (start all), not {replicas}.{compose}",
                    state=UNCHANGED.text, effect=UNCHANGED.effect,
                )
            to_start = [c for c in found if c.status in STARTABLE]
            started = self._clock.monotonic()
            for index, container in enumerate(to_start):
                try:
                    await self._call(f"start container {container.name}", container.start, state=UNKNOWN)
                except ExecutorError as exc:
                    done = "".join(f"{c.name} started; " for c in to_start[:index])
                    exc.state = done + await self._state_of(container)
                    exc.effect = part_way(index)
                    raise
            step.detail = _changed("started", to_start, found, already="running")
        async with progress.step(wait_title) as step:
            # Already-running containers are waited for too: "started" should mean healthy, whoever started them.
            seconds = await self._wait_ready(found, started, Effect.CHANGED if to_start else Effect.UNTOUCHED)
            step.detail = f"running in {seconds:.1f} s"
        if not to_start:
            return f"Nothing to do: {self._target.subject} {self._is()} already running."
        return f"Started {self._target.subject}; running in {seconds:.1f} s."

    def _is(self) -> str:
        return "are" if self._target.labels else "is"

    def _run(self) -> str:
        return "run" if self._target.labels else "runs"

    # -- finding and recording ---------------------------------------------------------------------------------

    async def _record_running(self, found: list[Container]) -> list[Revision]:
        """Remember what each container runs, so it can be rolled back to; returns the images, in order."""
        running = [await self._call("inspect the image", self._running_image, c, state=UNCHANGED) for c in found]
        for image in {(r.image, r.digest): r for r in running}.values():
            await self._history.record_deploy(self._service, image.image, image.digest, self._clock.now())
        return running

    async def _current(self, found: list[Container]) -> Revision:
        return await self._call("inspect the running image", self._running_image, found[0], state=UNCHANGED)

    def _running_image(self, container: Container) -> Revision:
        reference, image_id = container.attrs["Config"]["Image"], container.attrs["Image"]
        try:
            image = self._client().images.get(image_id)
        except docker.errors.ImageNotFound:
            return Revision(id=reference, image=reference, digest=image_id)
        if reference == image_id or reference.startswith("sha256:"):
            reference = image.tags[0] if image.tags else image_id
        return _revision_of(reference, image)

    def _deployable(self, reference: str) -> tuple[Revision, str]:
        """`reference` as a revision to record (its digest chosen as for a running container) and its image id;
        pulls the image when the host lacks it."""
        local = self._local_image(Revision(id=reference, image=reference), ran_here=False)
        image = self._client().images.get(local)
        return _revision_of(local, image), str(image.id)

    def _choose(self, history: list[Revision], current: Revision, to: str | None) -> Revision:
        unchanged = f"unchanged: {self._target.subject} still runs {current.image}"
        untouched = Effect.UNTOUCHED
        if to is None:
            index = next((i for i, rev in enumerate(history) if _same_image(rev, current)), -1)
            older = [rev for rev in history[index + 1 :] if not _same_image(rev, current)]
            if not older:
                raise ExecutorError(
                    f"No image before {current.image} is recorded for {self._service}; name one to roll back to.",
                    state=unchanged, effect=untouched,
                )
            return older[0]
        wanted = f"{_repository(current.image)}:{to}" if BARE_TAG.fullmatch(to) else to
        for rev in history:
            if wanted in (rev.image, rev.digest) or rev.image.endswith("/" + wanted):
                if _same_image(rev, current):
                    raise ExecutorError(f"{self._target.subject} already runs {rev.image}.", state=unchanged,
                                        effect=untouched)
                return rev
        known = ", ".join(rev.image for rev in history) or "none"
        raise ExecutorError(f"{self._service} has never run {wanted}. Known images: {known}.", state=unchanged,
                            effect=untouched)

    def _local_image(self, revision: Revision, *, ran_here: bool = True) -> str:
        """The reference to create from: the recorded tag, or the recorded digest if the tag has moved since."""
        images, digest = self._client().images, revision.digest
        candidates = [revision.image, *([f"{_repository(revision.image)}@{digest}", digest] if digest else [])]
        for reference in candidates:
            try:
                image = images.get(reference)
            except docker.errors.ImageNotFound:
                continue
            repo_digests = image.attrs.get("RepoDigests") or []
            if digest in (None, image.id) or any(d.endswith(f"@{digest}") for d in repo_digests):
                return reference
        try:
            images.pull(candidates[1] if digest else revision.image)  # pruned since it ran, or never pulled here
        except docker.errors.APIError as exc:
            raise ExecutorError(
                f"{revision.image} is {'no longer' if ran_here else 'not'} on the Docker host and could not be "
                f"pulled: {exc.explanation or exc}",
                state=UNCHANGED.text, effect=UNCHANGED.effect,
            ) from exc
        return candidates[1] if digest else revision.image

    # -- recreating --------------------------------------------------------------------------------------------

    def _swap(self, swap: _Swap, image: str) -> None:
        client = self._client()
        aside = swap.name + ASIDE_SUFFIX
        try:
            client.containers.get(aside)
        except docker.errors.NotFound:
            pass
        else:
            raise ExecutorError(
                f"A container named {aside} already exists (left by an interrupted rollback or deploy?); "
                "remove it or rename it back first.",
                state=f"unchanged: container {swap.name} still runs {swap.image}", effect=Effect.UNTOUCHED,
            )
        try:
            old_image = client.images.get(swap.old.attrs["Image"]).attrs.get("Config") or {}
        except docker.errors.ImageNotFound:
            old_image = {}
        config, networks = recreate_config(swap.old.attrs, old_image, image)
        swap.stopped = True  # before the call: a stop that fails half-way still needs a start to undo
        swap.old.stop()  # no timeout given: the daemon waits the container's own stop timeout
        swap.old.rename(aside)
        swap.aside = True
        created = client.api.create_container_from_config(config, name=swap.name)
        swap.new = client.containers.get(created["Id"])
        for network, endpoint in networks.items():
            client.api.connect_container_to_network(id_of(swap.new), network, aliases=endpoint["Aliases"])
        swap.new.start()

    async def _recreate(
        self,
        found: list[tuple[Container, Revision]],
        image: str,
        record: Revision,
        titles: tuple[str, str, str],
        doing: str,
        progress: Progress,
    ) -> float:
        """Replace each container (paired with what it runs) by one made from `image`, wait, record `record` in the
        deploy history, remove the old ones; returns the seconds until ready. A failure puts the old ones back and
        raises "`doing` failed: …"."""
        recreate_title, wait_title, remove_title = titles
        swaps = [
            _Swap(container, name_of(container), revision.image, container.attrs["State"].get("Running", True))
            for container, revision in found
        ]
        async with progress.step(recreate_title) as step:
            started = self._clock.monotonic()
            try:
                for swap in swaps:
                    await self._call(f"recreate container {swap.name}", self._swap, swap, image, state=UNKNOWN)
            except ExecutorError as exc:
                raise await self._put_back(swaps, doing, exc) from exc
            step.detail = "old one set aside as " + ", ".join(swap.name + ASIDE_SUFFIX for swap in swaps)
        async with progress.step(wait_title) as step:
            try:
                seconds = await self._wait_ready([swap.new for swap in swaps if swap.new is not None], started,
                                                 Effect.CHANGED)
            except ExecutorError as exc:
                raise await self._put_back(swaps, doing, exc) from exc
            step.detail = f"running {image} in {seconds:.1f} s"
        await self._history.record_deploy(self._service, record.image, record.digest, self._clock.now())
        async with progress.step(remove_title) as step:
            for swap in swaps:
                await self._call(
                    f"remove the old container {swap.name}{ASIDE_SUFFIX}",
                    swap.old.remove,
                    state=TargetState(f"container {swap.name} runs {image}; the old one is left as "
                                      f"{swap.name}{ASIDE_SUFFIX}", Effect.CHANGED),
                )
            step.detail = "removed " + ", ".join(swap.name + ASIDE_SUFFIX for swap in swaps)
        return seconds

    async def _put_back(self, swaps: list[_Swap], doing: str, cause: ExecutorError) -> ExecutorError:
        """The error to raise after putting the old containers back: untouched when every one is as it was."""
        states = [await self._put_back_one(swap) for swap in swaps if swap.stopped]
        if not states:  # nothing was stopped yet: the cause says what happened
            return ExecutorError(f"{doing} failed: {cause}", state=cause.state, effect=cause.effect)
        effect = Effect.UNTOUCHED if all(back for _, back in states) else Effect.CHANGED
        return ExecutorError(f"{doing} failed: {cause}", state="; ".join(text for text, _ in states), effect=effect)

    async def _put_back_one(self, swap: _Swap) -> tuple[str, bool]:
        """What became of the container, and whether it is as it was before."""
        def undo() -> None:
            if swap.new is not None:
                swap.new.remove(force=True)
            if swap.aside:
                swap.old.rename(swap.name)
            if swap.was_running:
                swap.old.start()

        try:
            await self._call(f"put container {swap.name} back", undo, state=UNKNOWN)
        except ExecutorError as exc:
            where = swap.name + ASIDE_SUFFIX if swap.aside else swap.name
            return f"could not put container {swap.name} back ({exc}); the old one is {where}, stopped", False
        now = await self._state_of(swap.old)
        if not swap.was_running or now.endswith(" is running"):
            return f"put back: container {swap.name} runs {swap.image} again", True
        return f"put back container {swap.name} on {swap.image}, but {now}", False


def _retrieved(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _pid_inside(pid: int, command: list[str]) -> int | None:
    """The pid, inside its container, of this host's process `pid` (the last NSpid), when that process is visible
    here and runs `command` (so a pid of another host's engine never names some process of ours)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    if pid <= 0 or cmdline.split(b"\0")[: len(command)] != [part.encode() for part in command]:
        return None
    nspid = next((line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), [])
    return int(nspid[-1]) if nspid else None


def _changed(done: str, changed: list[Container], found: list[Container], already: str) -> str:
    """A step's detail, such as `stopped a, b; c was already stopped`."""
    names = {name_of(c) for c in changed}
    left = [name_of(c) for c in found if name_of(c) not in names]
    parts = [f"{done} " + ", ".join(name_of(c) for c in changed)] if changed else []
    if left:
        parts.append(", ".join(left) + (" were" if len(left) > 1 else " was") + f" already {already}")
    return "; ".join(parts)


def _revision_of(reference: str, image: Image) -> Revision:
    """`reference` with the digest that identifies `image`: its registry digest for that repository if it has one."""
    repository = _repository(reference)
    digests = [d for d in image.attrs.get("RepoDigests") or [] if "@" in d]
    matching = [d for d in digests if d.split("@")[0] in (repository, repository.split("/")[-1])]
    chosen = (matching or digests or [f"@{image.id}"])[0]
    return Revision(id=reference, image=reference, digest=chosen.split("@", 1)[1])


def _unix(moment: datetime) -> float:
    # docker-py would cut a datetime to whole seconds; a float keeps the window as asked.
    if moment.tzinfo is None:
        raise ValueError("Docker log windows need timezone-aware datetimes")
    return moment.timestamp()


def _repository(reference: str) -> str:
    """`registry:5000/app:1.2@sha256:…` → `registry:5000/app`."""
    name = reference.split("@", 1)[0]
    head, _, tail = name.rpartition(":")
    return head if head and "/" not in tail else name


def _same_image(revision: Revision, current: Revision) -> bool:
    if revision.digest and current.digest:
        return revision.digest == current.digest
    return revision.image == current.image
