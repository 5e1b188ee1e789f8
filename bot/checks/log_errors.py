"""Log-errors check: lines matching a pattern in a service's logs over a window (its Docker containers, its
Kubernetes pods, or one named container), and the last of them for the health report's "Last errors".

Reading logs is the executors' (`logs`); this module only counts and picks lines.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field, PrivateAttr, field_validator

from bot.checks.base import CheckDeps, CheckSpec, Probe, Status, Thresholds, limit_note
from bot.executors.base import ExecutorError, Revision
from bot.executors.docker import DockerTarget, DockerWorkload

LAST = 20  # lines "Last errors" shows
MAX_KEY = 143  # a Slack menu option's value holds 150 characters, "errors:" included
NO_LOGS = "(no logs: "  # what the Kubernetes executor gives for a container that has not started
STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)? ")


@dataclass(frozen=True)
class LogLine:
    """One matching line: where it was logged, when (as the log stamps it, to the second) and what."""

    source: str
    at: str
    text: str

    def __str__(self) -> str:
        return f"{self.at} {self.source}: {self.text}" if self.at else f"{self.source}: {self.text}"


class LogErrorsCheck(CheckSpec):
    type: Literal["log-errors"]
    pattern: str = Field(default="error", min_length=1, description="regular expression, case-insensitive")
    window_hours: float = Field(default=24, gt=0, le=24 * 31)
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
            found = await self.matching_lines(deps)
        except ExecutorError as exc:
            return Probe(Status.CRITICAL, f"cannot read the logs: {exc}")
        status = self.lines.grade(len(found))
        noun = "line" if len(found) == 1 else "lines"
        return Probe(status, f"{len(found)} {noun} matching /{self.pattern}/ in the last {self.window()}"
                             f"{limit_note(status, self.lines)}")

    def window(self) -> str:
        return f"{self.window_hours:g} h"

    async def matching_lines(self, deps: CheckDeps) -> list[LogLine]:
        """Every line of the window matching the pattern, oldest first (by the log's own time stamps)."""
        since = deps.clock.now() - timedelta(hours=self.window_hours)
        found = [line for source, text in await self._read(deps, since) for line in self._matches(source, text)]
        return sorted(found, key=lambda line: line.at)

    async def _read(self, deps: CheckDeps, since: datetime) -> list[tuple[str, str]]:
        target = deps.target
        if self.container is not None or isinstance(target, DockerTarget):
            host = target.docker_host if isinstance(target, DockerTarget) else None
            if self.container is not None:
                target = DockerTarget(type="docker", container=self.container, docker_host=host)
            docker = DockerWorkload(deps.service or "", target, _NoHistory(), deps.clock)
            try:
                return await docker.logs(since=since)
            finally:
                await docker.close()
        if getattr(target, "type", None) == "kubernetes":
            # Imported here: the Kubernetes executor imports bot.checks.base, which loads every check kind.
            from bot.executors.kubernetes import KubernetesWorkload

            kubernetes = KubernetesWorkload(target, deps.environ, deps.clock)
            try:
                return await kubernetes.logs(since_seconds=max(1, math.ceil(self.window_hours * 3600)))
            finally:
                await kubernetes.close()
        raise ExecutorError(f"service {deps.service} has no target to read logs from", state="nothing was read")

    def _matches(self, source: str, text: str) -> list[LogLine]:
        if text.startswith(NO_LOGS):
            return []
        found = []
        for raw in text.splitlines():
            stamp = STAMP.match(raw)
            line = raw[stamp.end():] if stamp else raw
            if self._regex.search(line):
                found.append(LogLine(source, stamp.group(1) if stamp else "", line))
        return found


@dataclass(frozen=True)
class LastErrors:
    """What "Last errors" shows: the check, how many lines matched, and the last of them, oldest first."""

    service: str
    check: LogErrorsCheck
    matched: int
    lines: list[LogLine]


def errors_key(service: str, label: str) -> str:
    """What a button carries to name a service's log-errors check: `service:label`, or the label's digest when
    that would not fit in a menu option's value."""
    key = f"{service}:{label}"
    return key if len(key) <= MAX_KEY else f"{service}:#{hashlib.sha256(label.encode()).hexdigest()[:16]}"


def find(catalog: Any, key: str) -> tuple[str, LogErrorsCheck] | None:
    """The service and log-errors check a button's `errors_key` names in the current catalog, if it still has it."""
    service_name, _, _ = key.partition(":")
    service = catalog.services.get(service_name)
    for check in service.checks if service is not None else []:
        if isinstance(check, LogErrorsCheck) and errors_key(service_name, check.label) == key:
            return service_name, check
    return None


async def last_errors(catalog: Any, deps: CheckDeps, key: str, limit: int = LAST) -> LastErrors | None:
    """Read the logs again for the check `key` names and keep its last `limit` matching lines; None when the
    catalog no longer has that check."""
    found = find(catalog, key)
    if found is None:
        return None
    service, check = found
    lines = await check.matching_lines(deps.for_service(service, catalog.services[service].target))
    return LastErrors(service, check, len(lines), lines[-limit:])


class _NoHistory:
    """Reading logs never needs the deploy history a Docker workload is built with."""

    async def record_deploy(self, service: str, image: str, digest: str | None, seen_at: datetime) -> None:
        raise NotImplementedError("a log-errors check never deploys")

    async def deploy_history(self, service: str, limit: int = 20) -> list[Revision]:
        return []
