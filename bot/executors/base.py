"""What every executor shares: how it reports progress step by step, how it fails, and the capabilities it offers.

Executors never decide policy (approvals, locks) and never talk to Slack; the actions domain does.
Blocking clients (docker, kubernetes) are called through `asyncio.to_thread`, never on the event loop.
"""

from __future__ import annotations

import enum
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol, runtime_checkable

from bot.errors import OpsbotError


class Effect(enum.Enum):
    """What a failed step did to its target, as a value the engine decides on (never the wording of `state`)."""

    UNTOUCHED = "untouched"  # known: nothing was changed (refused before acting, or rolled back whole)
    CHANGED = "changed"  # known: something was changed (part-way, or all of it and a later check failed)
    UNKNOWN = "unknown"  # cannot tell: a timeout, a crash or a lost connection while it acted


class ExecutorError(OpsbotError):
    """A step failed. `effect` says what it did to the target; `state` says, in a person's words, what state the
    target is left in. Both are required: each raise site decides, nothing guesses for it."""

    def __init__(self, message: str, *, state: str, effect: Effect) -> None:
        self.state, self.effect = state, effect
        super().__init__(message)


@dataclass(frozen=True)
class TargetState:
    """What a failure at one point of a step leaves the target in: the words, and the effect the engine acts on.
    Executors name one per point ("not touched; the restore did not start") and pass it to their helpers."""

    text: str
    effect: Effect


class TargetNotFound(ExecutorError):
    """The container, deployment or database the catalog names does not exist (or matches nothing)."""


@dataclass
class Step:
    """A handle the executor annotates while a step runs; `detail` is a short result ("up in 2.1 s")."""

    title: str
    detail: str = ""


class Progress(Protocol):
    def step(self, title: str) -> AbstractAsyncContextManager[Step]:
        """Enter when the step starts, leave when it ends; an exception leaving it marks the step failed."""


@dataclass
class StepRecord:
    title: str
    state: str  # running | succeeded | failed
    detail: str = ""
    seconds: float = 0.0


@dataclass
class RecordingProgress:
    """Keeps every step in memory: for tests, and for callers that only need the list afterwards."""

    steps: list[StepRecord] = field(default_factory=list)

    @asynccontextmanager
    async def _step(self, title: str) -> AsyncIterator[Step]:
        record = StepRecord(title, "running")
        self.steps.append(record)
        handle = Step(title)
        started = time.perf_counter()
        try:
            yield handle
        except BaseException as exc:
            record.state, record.detail = "failed", str(exc) or type(exc).__name__
            raise
        finally:
            record.seconds = time.perf_counter() - started
        record.state, record.detail = "succeeded", handle.detail

    def step(self, title: str) -> AbstractAsyncContextManager[Step]:
        return self._step(title)


@dataclass(frozen=True)
class Revision:
    """One deployable state of a workload, newest first in listings."""

    id: str  # Kubernetes revision number, or a Docker image reference
    image: str
    created_at: datetime | None = None
    current: bool = False
    digest: str | None = None


# --- capabilities: what a target's executor can do, each a small Protocol a step kind asks for ------------------
# Docker, Kubernetes and demo workloads implement what they can; `bot.runs.targets` says which type offers which.


@runtime_checkable
class Restarts(Protocol):
    def describe(self) -> str:
        """What the target is, for plans: "docker containers labelled com.docker.compose.service=api"."""

    def restart_plan(self) -> list[str]:
        """The titles of the steps `restart` will report, in order. Touches nothing."""

    async def restart(self, progress: Progress) -> str:
        """Restart and wait until running (and healthy/available); returns a one-line summary."""


@runtime_checkable
class RollsBack(Protocol):
    def rollback_plan(self, to: str | None) -> list[str]: ...

    async def rollback(self, to: str | None, progress: Progress) -> str:
        """Go back to the previous revision, or to `to` (a revision number or an image tag)."""

    async def revisions(self) -> list[Revision]:
        """Known revisions, newest first, the current one marked. Reads only."""

    async def current_image(self) -> str: ...


@runtime_checkable
class Deploys(Protocol):
    async def current_image(self) -> str: ...

    async def deploy(self, image: str, progress: Progress) -> str:
        """Run `image` (a tag of the current image, or a full reference) and wait until it is up."""


@runtime_checkable
class Scales(Protocol):
    async def replicas(self) -> int:
        """How many replicas (or running containers) there are now. Reads only."""

    async def scale(self, replicas: int, progress: Progress) -> str: ...


@runtime_checkable
class StartsStops(Protocol):
    """Started and stopped as a whole, not by a count (Docker containers): `stop` then `start` brings all back."""

    async def start(self, progress: Progress) -> str: ...

    async def stop(self, progress: Progress) -> str: ...

    async def is_running(self) -> bool: ...

    async def running_count(self) -> int: ...

    async def container_count(self) -> int:
        """How many there are, running or not."""


@runtime_checkable
class Logs(Protocol):
    async def logs(self, since: timedelta, max_bytes: int = 1_000_000) -> list[tuple[str, str]]:
        """(container or pod, its log text over the last `since`, at most `max_bytes` of it) for each. Reads only."""


@runtime_checkable
class ConfigValues(Protocol):
    async def config_value(self, configmap: str, key: str) -> str | None: ...

    async def set_config_value(self, configmap: str, key: str, value: str | None) -> str:
        """Set (or, with None, remove) one key of a configuration map the app watches."""


@runtime_checkable
class PreviewsScale(Protocol):
    async def scale_preview(self, replicas: int) -> str:
        """What `scale(replicas)` would do, in words: which containers it would remove, start or create. Reads only."""


@runtime_checkable
class Recreates(Protocol):
    """Picks up a new build of the tag it runs (the patch path): Docker containers."""

    async def current_image(self) -> str: ...

    async def image_id(self) -> str:
        """The id of the image the (first) container runs now. Reads only."""

    async def recreate(self, progress: Progress, *, image_id: str | None = None, pull_timeout: float = 300) -> str:
        """Pull the reference the containers run again and recreate those not on the image it names now (nothing
        when all are); with `image_id`, recreate them onto that image instead (what undoes a recreate)."""


def _nobody(name: str, labels: Mapping[str, str]) -> str | None:
    return None


@dataclass(frozen=True)
class PruneRules:
    """What a prune may remove from a Docker host. Nothing running, tagged or in use is ever removed."""

    dangling_images: bool = True  # untagged images no container that stays uses
    stopped_for: timedelta | None = None  # containers stopped (or never started) at least this long; None: none
    volumes: frozenset[str] = frozenset()  # these volumes, each only when no container that stays uses it
    # Which catalog service a container (name, labels) belongs to, if any: those are kept, since opsbot may start
    # them again (a Compose service scaled to 0 comes back from its stopped containers).
    owner: Callable[[str, Mapping[str, str]], str | None] = _nobody


@runtime_checkable
class Prunes(Protocol):
    async def prune_preview(self, rules: PruneRules) -> str:
        """What `prune(rules)` would remove now and the bytes it would free, in words. Reads only."""

    async def prune(self, rules: PruneRules, progress: Progress) -> str:
        """Remove what `rules` select at this moment, each without force (what was started or taken into use
        since is refused by the engine and kept); returns what went and the bytes freed."""


class Workload(Restarts, RollsBack, Protocol):
    """A running service that can be restarted and rolled back: what the built-in actions act on."""


@dataclass(frozen=True)
class Artifact:
    """A backup file an executor wrote and verified."""

    path: Path
    size: int
    sha256: str
    created_at: datetime


class Backups(Protocol):
    """Something that can be backed up and restored (a PostgreSQL database, a set of directories)."""

    def describe(self) -> str: ...

    def backup_plan(self) -> list[str]: ...

    async def backup(self, progress: Progress, *, label: str) -> Artifact:
        """Write a new backup into the configured directory, verify it, return it. `label` goes in the file name."""

    async def verify(self, artifact: Artifact) -> None:
        """Raise ExecutorError unless the file is intact (checksum matches and it reads back)."""

    def restore_plan(self, artifact: Artifact) -> list[str]: ...

    async def restore(self, artifact: Artifact, progress: Progress) -> str:
        """Verify, then restore `artifact` over the live target. The caller takes the safety backup first."""

    async def delete(self, artifact: Artifact) -> None:
        """Remove a backup file (retention); a file already gone is not an error."""


class DeployHistory(Protocol):
    """Which images a service has run, for Docker rollbacks (the store implements it)."""

    async def record_deploy(self, service: str, image: str, digest: str | None, seen_at: datetime) -> None:
        """Remember that `service` runs `image`; a repeat keeps the first time it was seen."""

    async def deploy_history(self, service: str, limit: int = 20) -> list[Revision]:
        """Images the service has run, most recently first-seen first (`current` is left False)."""


@dataclass(frozen=True)
class ExecResult:
    """How a command run inside a container or pod ended, with the last `max_bytes` of each of its streams."""

    where: str  # "container api-1", "pod default/api-7d9f (container app)"
    exit_code: int | None  # None: cut at its timeout
    stdout: bytes
    stderr: bytes
    dropped: int  # bytes of output beyond the bound, not kept (the oldest)
    seconds: float
    stopped: str = ""  # for a cut command: what was done to end it, in words


class OutputTail:
    """The last `limit` bytes of a command's stdout and of its stderr, and how much older output was dropped."""

    def __init__(self, limit: int) -> None:
        self.limit, self.stdout, self.stderr, self.dropped = limit, bytearray(), bytearray(), 0

    def take(self, stdout: bytes | None, stderr: bytes | None) -> None:
        for buffer, chunk in ((self.stdout, stdout), (self.stderr, stderr)):
            if chunk:
                buffer += chunk
                over = len(buffer) - self.limit
                if over > 0:
                    del buffer[:over]
                    self.dropped += over


@runtime_checkable
class Execs(Protocol):
    async def exec(self, command: list[str], *, container: str | None, timeout: float, max_bytes: int) -> ExecResult:
        """Run `command` (an argv; no shell is added) inside one of the target's containers (`container`, or the
        first) until it exits or `timeout` seconds pass, then end it. ExecutorError when it could not be started
        (untouched) or its stream was lost (unknown)."""
