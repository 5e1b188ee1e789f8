"""What every health check shares: its catalog fields, its result, and how thresholds grade a number.

The check kinds themselves live one per module beside this one; running them together is `bot.health`.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.errors import MissingSecret

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


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
    def worst(cls, statuses: "list[Status] | tuple[Status, ...]") -> "Status":
        return max(statuses, key=lambda s: s.rank, default=cls.OK)


_RANK = {Status.OK: 0, Status.WARNING: 1, Status.ERROR: 2, Status.CRITICAL: 3}


class Thresholds(BaseModel):
    """Percent (or other unit) limits: at or above `warning` warns, at or above `critical` is critical."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    warning: float = Field(gt=0)
    critical: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> "Thresholds":
        if self.warning > self.critical:
            raise ValueError(f"warning ({self.warning:g}) must not be above critical ({self.critical:g})")
        return self

    def grade(self, value: float) -> Status:
        if value >= self.critical:
            return Status.CRITICAL
        if value >= self.warning:
            return Status.WARNING
        return Status.OK


@dataclass(frozen=True)
class Probe:
    """What one check found, before the runner adds timing."""

    status: Status
    reason: str


@dataclass(frozen=True)
class CheckDeps:
    """What checks may use: one shared HTTP session and the environment secrets are read from."""

    http: aiohttp.ClientSession
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)

    def secret(self, env_name: str) -> str:
        value = self.environ.get(env_name)
        if not value:
            raise MissingSecret(env_name)
        return value


class CheckSpec(BaseModel):
    """Fields every check kind has. Subclasses add `type: Literal[...]` and `probe()`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
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


def percent(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else 0.0
