"""What every health check shares: its catalog fields, its result, and how thresholds grade a number.

The check kinds themselves live one per module beside this one; running them together is `bot.health`.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.clock import Clock, SystemClock
from bot.errors import MissingSecret
from bot.tracing import NO_TRACER, Tracer

if TYPE_CHECKING:
    from bot.runs.models import BackupRecord

class Status(enum.Enum):
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    ERROR = "error"  # the check could not decide: timeout, unreachable, misconfigured

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def failing(self) -> bool:
        return self in (Status.CRITICAL, Status.ERROR)

    @classmethod
    def worst(cls, statuses: list[Status] | tuple[Status, ...]) -> Status:
        return max(statuses, key=lambda s: s.rank, default=cls.OK)


_RANK = {Status.OK: 0, Status.WARNING: 1, Status.ERROR: 2, Status.CRITICAL: 3}


class _Levels(BaseModel):
    """One or two levels on one number; either level alone is enough (`{critical: 1000}`, `{warning: 10}`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    warning: float | None = Field(default=None, ge=0, description="the level that warns (reached as `strict` says)")
    critical: float | None = Field(default=None, ge=0,
                                   description="the level that is critical (reached as `strict` says)")
    strict: bool

    @model_validator(mode="after")
    def _some_level(self) -> _Levels:
        if self.warning is None and self.critical is None:
            raise ValueError("give `warning`, `critical` or both")
        return self

    def _reached(self, value: float, level: float | None, high_is_bad: bool) -> bool:
        if level is None:
            return False
        if high_is_bad:
            return value > level if self.strict else value >= level
        return value < level if self.strict else value <= level

    def _grade(self, value: float, high_is_bad: bool) -> Status:
        if self._reached(value, self.critical, high_is_bad):
            return Status.CRITICAL
        if self._reached(value, self.warning, high_is_bad):
            return Status.WARNING
        return Status.OK


class Thresholds(_Levels):
    """High is bad. By default (`strict: false`) a level is reached AT its value: at or above `warning` warns, at or
    above `critical` is critical; with `strict: true` only above it ("more than 1000")."""

    strict: bool = Field(default=False, description="false: a level is reached at its value (at or above it); true: "
                                                    "only above it, for \"more than\" (`{critical: 0, strict: true}`: "
                                                    "more than 0)")

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.warning is not None and self.critical is not None and self.warning > self.critical:
            raise ValueError(f"warning ({self.warning:g}) must not be above critical ({self.critical:g})")
        for name, level in (("warning", self.warning), ("critical", self.critical)):
            if level == 0 and not self.strict:
                # Reached by every count: a queue that must stay empty is "more than 0".
                raise ValueError(f"{name} 0 is reached by every value from 0 up; for \"more than 0\" add `strict: true`")
        return self

    def grade(self, value: float) -> Status:
        return self._grade(value, high_is_bad=True)


class Floor(_Levels):
    """Low is bad (a cache hit ratio, workers alive). By default (`strict: true`) a level is the lowest value that is
    still fine: below `warning` warns, below `critical` is critical (`{warning: 2}`: 1 worker warns, 2 do not);
    `strict: false` makes the level itself count too (at or below)."""

    strict: bool = Field(default=True, description="true: a level is reached below its value (the level itself is "
                                                   "fine: \"less than\"); false: at or below it")

    @model_validator(mode="after")
    def _ordered(self) -> Floor:
        if self.warning is not None and self.critical is not None and self.critical > self.warning:
            raise ValueError(f"critical ({self.critical:g}) must not be above warning ({self.warning:g}): low values are the bad "
                             "ones")
        return self

    def grade(self, value: float) -> Status:
        return self._grade(value, high_is_bad=False)


def limit_note(status: Status, limits: Thresholds | Floor, unit: str = "") -> str:
    """`(limit 80 %)` for a graded value that is not OK — the number a reason should name — else ``."""
    bound = limits.critical if status is Status.CRITICAL else limits.warning if status is Status.WARNING else None
    if bound is None:
        return ""
    if isinstance(limits, Thresholds):
        return f" (limit: more than {bound:g}{unit})" if limits.strict else f" (limit {bound:g}{unit})"
    return f" (minimum {bound:g}{unit})" if limits.strict else f" (limit: {bound:g}{unit} or less)"


@dataclass(frozen=True)
class Probe:
    """What one check found, before the runner adds timing."""

    status: Status
    reason: str

    @classmethod
    def combine(cls, parts: list[Probe] | tuple[Probe, ...], sep: str = "; ") -> Probe:
        """One probe from several findings (fields, queues, containers): the worst status, every reason in order."""
        return cls(Status.worst([part.status for part in parts]), sep.join(part.reason for part in parts if part.reason))


class BackupLedger(Protocol):
    """Where verified backups are recorded (the store); the backup-freshness check reads it."""

    async def backups(self, service: str | None = None, *, include_deleted: bool = False,
                      limit: int = 50) -> list[BackupRecord]: ...


class Observations:
    """What checks saw on earlier runs in this process (a restart count), to judge growth between runs.

    Kept in memory: after a restart the first run has nothing to compare with, and says so.
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[str, ...], tuple[Any, datetime]] = {}

    def swap(self, key: tuple[str, ...], value: Any, at: datetime) -> tuple[Any, datetime] | None:
        """Record `value` seen at `at` under `key`; return what was recorded before, if anything."""
        previous = self._seen.get(key)
        self._seen[key] = (value, at)
        return previous


class CheckObserver(Protocol):
    """Told of every finished check (bot.metrics.Metrics counts them)."""

    def check_done(self, kind: str, status: str, seconds: float) -> None: ...


@dataclass(frozen=True)
class CheckDeps:
    """What checks may use: one shared HTTP session, the environment secrets are read from, the clock, the
    backup ledger, what earlier runs saw, and — set by the runner per service — the service and its `target:`."""

    http: aiohttp.ClientSession
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    clock: Clock = field(default_factory=SystemClock)
    backups: BackupLedger | None = None
    observations: Observations = field(default_factory=Observations)
    service: str | None = None
    target: Any = None  # the service's DockerTarget or KubernetesTarget, if it has one
    observer: CheckObserver | None = None  # the runner reports each check's kind, status and duration to it
    tracer: Tracer = NO_TRACER  # the runner opens a span per check in it

    def secret(self, env_name: str) -> str:
        value = self.environ.get(env_name)
        if not value:
            raise MissingSecret(env_name)
        return value

    def for_service(self, service: str, target: Any) -> CheckDeps:
        return replace(self, service=service, target=target)


class CheckSpec(BaseModel):
    """Fields every check kind has. Subclasses add `type: Literal[...]` and `probe()`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    if TYPE_CHECKING:
        type: str  # each kind's `type: Literal[...]` field
    name: str | None = Field(default=None, min_length=1, max_length=80)
    timeout: float = Field(default=5.0, gt=0, le=300, description="seconds")

    @property
    def label(self) -> str:
        return self.name or self.default_label()

    def default_label(self) -> str:  # pragma: no cover - every kind overrides it
        raise NotImplementedError

    async def probe(self, deps: CheckDeps) -> Probe:  # pragma: no cover - every kind overrides it
        raise NotImplementedError

    def secret_envs(self) -> list[str]:
        """Environment variable names this check reads, for `opsbot check-config` to warn about."""
        return []

    def catalog_errors(self, service: str, catalog: Any) -> list[str]:
        """What this check needs from the rest of the catalog and does not find there (its service's `target:`,
        another service's `backup:`); the catalog refuses to load with each message, at the check's path."""
        return []


def percent(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else 0.0
