"""Log-errors check: lines matching a pattern in a service's logs over a window (its Docker containers, its
Kubernetes pods, or one named container), and the last of them for the health report's "Last errors".

The logs are streamed (the executors' `scan_logs`) and matched in their worker thread, a chunk at a time: only the
count and the last `LAST` matching lines are kept, however long the window, and the event loop never runs the
pattern. A log larger than `MAX_BYTES` is read up to that bound and the reason says so.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field, PrivateAttr, field_validator

from bot import adapters
from bot.checks.base import CheckDeps, CheckSpec, Probe, Status, Thresholds, limit_note
from bot.checks.last_errors import LAST
from bot.executors.base import Effect, ExecutorError, Revision
from bot.executors.docker_target import DockerTarget

MAX_BYTES = 64_000_000  # of one container's or pod's log: beyond this a check would outrun its timeout
STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)? ")
# A line the runtime logged in parts (podman splits at its read buffer, Docker past 16 KB) comes back with every
# part's timestamp in it: "…Z ERR" + "…Z OR request". Taken out again, or the parts would hide a match. Searched
# from the line's second character on (a part holds at least one), so a stamp the program itself starts its line
# with stays; the stamp's zone is the runtime's (RFC 3339: `Z` in UTC, else an offset).
INNER_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d) ")


@dataclass(frozen=True)
class LogLine:
    """One matching line: where it was logged, when (as the log stamps it, to the second) and what."""

    source: str
    at: str
    text: str

    def __str__(self) -> str:
        return f"{self.at} {self.source}: {self.text}" if self.at else f"{self.source}: {self.text}"


@dataclass
class Scanned:
    """What one container's or pod's log held: how many lines matched, the last of them, and whether the read
    stopped at `MAX_BYTES` (then `matched` counts the first `MAX_BYTES` of the window only)."""

    source: str
    matched: int = 0
    last: deque[LogLine] = field(default_factory=lambda: deque(maxlen=LAST))
    cut: bool = False


@dataclass(frozen=True)
class Matches:
    """Every source's count together: the total, the last `LAST` lines (oldest first), the sources read only in
    part."""

    matched: int
    lines: list[LogLine]
    cut: list[str]

    @classmethod
    def of(cls, scanned: list[Scanned]) -> Matches:
        lines = sorted((line for one in scanned for line in one.last), key=lambda line: line.at)
        return cls(sum(one.matched for one in scanned), lines[-LAST:], [one.source for one in scanned if one.cut])

    def partial(self) -> str:
        """ "only the first 64 MB of api-1's logs read", when a log was larger than the bound; else ""."""
        if not self.cut:
            return ""
        whose = " and ".join(f"{source}'s" for source in self.cut)
        bound = f"{MAX_BYTES / 1_000_000:g} MB" if MAX_BYTES >= 1_000_000 else f"{MAX_BYTES / 1000:g} kB"
        return f"only the first {bound} of {whose} logs read"


class LogErrorsCheck(CheckSpec):
    """Streams the whole window of the logs (the service's Docker containers or Kubernetes pods, or `container`),
    keeping only the count of lines matching `pattern` and the last of them; a log above 64 MB is read in part and
    the reason says so (`≥ N lines … (only the first 64 MB of … read)`). A failing line offers **Last errors**: the
    last 20 matching lines, shown only to whoever asks, read within the check's timeout."""

    type: Literal["log-errors"]
    pattern: str = Field(default="error", min_length=1, description="regular expression, case-insensitive")
    window_hours: float = Field(default=24, gt=0, le=24 * 31, examples=[24, 0.5],
                                description="how far back lines are counted, in hours (fractions allowed; at most 31 days)")
    lines: Thresholds = Thresholds(warning=10, critical=100)
    container: str | None = Field(default=None, min_length=1,
                                  description="a Docker container by name; None: the service's target")
    timeout: float = Field(default=30, gt=0, le=300, description="seconds: reading a day of logs takes a while")
    _regex: re.Pattern[str] = PrivateAttr()

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value, re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value

    def model_post_init(self, context: Any) -> None:
        self._regex = re.compile(self.pattern, re.IGNORECASE)

    def default_label(self) -> str:
        return f"log errors {self.container}" if self.container else "log errors"

    def catalog_errors(self, service: str, catalog: Any) -> list[str]:
        if self.container is None and catalog.services[service].target is None:
            return ["log-errors needs `container:` or the service's `target:` to know whose logs to read"]
        return []

    async def probe(self, deps: CheckDeps) -> Probe:
        try:
            found = await self.matches(deps)
        except ExecutorError as exc:
            return Probe(Status.CRITICAL, f"cannot read the logs: {exc}")
        status = self.lines.grade(found.matched)
        noun = "line" if found.matched == 1 else "lines"
        at_least = "≥ " if found.cut else ""
        notes = [note for note in (found.partial(), limit_note(status, self.lines).strip()[1:-1]) if note]
        detail = f" ({'; '.join(notes)})" if notes else ""
        return Probe(status, f"{at_least}{found.matched} {noun} matching /{self.pattern}/ in the last {self.window()}"
                             f"{detail}")

    def window(self) -> str:
        return f"{self.window_hours:g} h"

    async def matches(self, deps: CheckDeps) -> Matches:
        """How many lines of the window match the pattern, and the last `LAST` of them, oldest first (by the log's
        own time stamps)."""
        window = timedelta(hours=self.window_hours)
        # The worker threads stop reading by then: the runner has given up on the check and would not wait.
        deadline = time.monotonic() + self.timeout
        return Matches.of(await self._scan(deps, window, deadline))

    async def _scan(self, deps: CheckDeps, window: timedelta, deadline: float) -> list[Scanned]:
        def read(source: str, chunks: Iterator[bytes]) -> Scanned:
            return self._read(source, chunks, deadline)

        target = deps.target
        if self.container is not None or isinstance(target, DockerTarget):
            host = target.docker_host if isinstance(target, DockerTarget) else None
            if self.container is not None:
                target = DockerTarget(type="docker", container=self.container, docker_host=host)
            # docker-py is imported only when a catalog reads Docker logs (`bot.adapters`).
            workload = adapters.module("bot.executors.docker").DockerWorkload
            docker = workload(deps.service or "", target, _NoHistory(), deps.clock)
            try:
                scanned: list[Scanned] = await docker.scan_logs(window, read)
                return scanned
            finally:
                await docker.close()
        if getattr(target, "type", None) == "kubernetes":
            # The Kubernetes client is imported only for a catalog with a Kubernetes target (`bot.adapters`).
            kubernetes = adapters.module("bot.executors.kubernetes").KubernetesWorkload(target, deps.environ, deps.clock)
            try:
                scanned = await kubernetes.scan_logs(window, read)
                return scanned
            finally:
                await kubernetes.close()
        raise ExecutorError(f"service {deps.service} has no target to read logs from", state="nothing was read",
                            effect=Effect.UNTOUCHED)

    def _read(self, source: str, chunks: Iterator[bytes], deadline: float) -> Scanned:
        """Count the matching lines of one log, a chunk at a time (in the executor's worker thread)."""
        scanned, rest, size = Scanned(source), b"", 0
        for chunk in chunks:
            chunk, over = chunk[:MAX_BYTES - size], len(chunk) > MAX_BYTES - size
            size += len(chunk)
            *lines, rest = (rest + chunk).split(b"\n")
            for raw in lines:
                self._match(scanned, raw)
            if over:
                scanned.cut, rest = True, b""  # the rest of a line cut in two is not a line
                break
            if time.monotonic() > deadline:
                break
        if rest:
            self._match(scanned, rest)
        return scanned

    def _match(self, scanned: Scanned, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        stamp = STAMP.match(text)
        line = text[stamp.end():] if stamp else text
        if stamp:
            line = line[:1] + INNER_STAMP.sub("", line[1:])
        if self._regex.search(line):
            scanned.matched += 1
            scanned.last.append(LogLine(scanned.source, stamp.group(1) if stamp else "", line))


class _NoHistory:
    """Reading logs never needs the deploy history a Docker workload is built with."""

    async def record_deploy(self, service: str, image: str, digest: str | None, seen_at: datetime) -> None:
        raise NotImplementedError("a log-errors check never deploys")

    async def deploy_history(self, service: str, limit: int = 20) -> list[Revision]:
        return []
