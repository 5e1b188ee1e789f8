"""The service catalog's models: services, their checks and targets, runbooks, and the settings around them.

Reading the YAML file and checking one part against another is `bot.catalog_loading`; secrets are never in the
file, only the names of environment variables that hold them.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from bot.alerts.routing import AlertSettings
from bot.checks import CheckSpec
from bot.errors import UnknownRunbook, UnknownService
from bot.executors.backup_targets import (
    DirectoryBackupTarget,
    MysqlBackupTarget,
    PostgresBackupTarget,
    RedisBackupTarget,
)
from bot.executors.demo import DemoTarget
from bot.executors.docker_target import DockerTarget
from bot.executors.kubernetes_target import KubernetesTarget
from bot.incidents.settings import IncidentSettings
from bot.queries import NamedQuery, QueryName
from bot.runbooks.definitions import Maintenance, Runbook, RunbookName
from bot.runs.policy import ActionPolicies, ApprovalSettings
from bot.scheduling.settings import ScheduleSettings, channel_id

# What restart and rollback act on, and what backup and restore act on: one kind each per service.
Target = Annotated[DockerTarget | KubernetesTarget | DemoTarget, Field(discriminator="type")]
BackupTarget = Annotated[
    PostgresBackupTarget | MysqlBackupTarget | RedisBackupTarget | DirectoryBackupTarget, Field(discriminator="type")
]

SERVICE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
RESERVED_NAMES = {"all", "help"}
SLACK_OWNER_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")


def _service_name(name: str) -> str:
    if not SERVICE_NAME.match(name):
        raise ValueError(
            f"{name!r} is not a valid service name (lowercase letters, digits, - and _, starting with a letter or digit)"
        )
    if name in RESERVED_NAMES:
        raise ValueError(f"{name!r} is reserved (it means something in `/ops health {name}`)")
    return name


ServiceName = Annotated[str, AfterValidator(_service_name)]


class HealthSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    # The checks of one request all start together: a request takes about its slowest check. What bounds them is the
    # host they hit (`per_host`), so one database or API server is never flooded, and `concurrency` in all (sockets).
    per_host: int = Field(default=8, ge=1, le=256, description="checks run at once against one target host per request")
    concurrency: int = Field(default=256, ge=1, le=1024, description="checks run at once per request, in all")


class Service(BaseModel):
    """A service. Its checks are each one kind's model: the model a catalog is validated with is a subclass whose
    `checks` are the union of the kinds that catalog names (`bot.catalog_kinds`); this base is never validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    description: str = Field(default="", max_length=300)
    environment: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=40)
    owners: list[str] = Field(default_factory=list, description="Slack user IDs (U…/W…) or user-group IDs (S…)")
    checks: list[CheckSpec] = Field(default_factory=list)
    approvals: ActionPolicies | None = Field(default=None, description="overrides the environment's approval policies")
    target: Target | None = Field(default=None, description="what restart and rollback act on")
    backup: BackupTarget | None = Field(default=None, description="what backup and restore act on")
    maintenance: Maintenance | None = Field(default=None, description="how runbooks turn maintenance mode on and off")
    runbooks: list[str] = Field(default_factory=list, description="runbooks offered as buttons where it fails")
    channel: str | None = Field(default=None, description="the team's channel ID: backup results are posted there")

    @field_validator("owners")
    @classmethod
    def _slack_ids(cls, owners: list[str]) -> list[str]:
        for owner in owners:
            if not SLACK_OWNER_ID.match(owner):
                raise ValueError(
                    f"{owner!r} is not a Slack user ID (U…/W…) or user-group ID (S…); "
                    "copy it from the profile's ⋮ menu → Copy member ID"
                )
        return owners

    @field_validator("channel")
    @classmethod
    def _channel_id(cls, value: str | None) -> str | None:
        return channel_id(value) if value is not None else None

    @field_validator("checks")
    @classmethod
    def _unique_labels(cls, checks: list[Any]) -> list[Any]:
        seen: set[str] = set()
        for check in checks:
            if check.label in seen:
                raise ValueError(f"two checks are named {check.label!r}; give one a distinct `name`")
            seen.add(check.label)
        return checks


class Catalog(BaseModel):
    """The whole catalog; validated through `bot.catalog_kinds.catalog_model`, which fills in the kinds it names."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    version: Literal[1] = 1
    health: HealthSettings = HealthSettings()
    approvals: ApprovalSettings = ApprovalSettings()
    incidents: IncidentSettings = IncidentSettings()
    schedules: ScheduleSettings = ScheduleSettings()
    services: dict[ServiceName, Service] = Field(default_factory=dict)
    runbooks: dict[RunbookName, Runbook] = Field(default_factory=dict)
    alerts: AlertSettings | None = Field(default=None, description="alerts from Alertmanager and Grafana: channel, routes")
    queries: dict[QueryName, NamedQuery] = Field(default_factory=dict, description="read-only queries: `/ops query <name>`")

    @property
    def service_names(self) -> list[str]:
        return sorted(self.services)

    def service(self, name: str) -> Service:
        try:
            return self.services[name]
        except KeyError:
            raise UnknownService(name, self.service_names, suggest(name, self.service_names)) from None

    def runbook(self, name: str) -> Runbook:
        try:
            return self.runbooks[name]
        except KeyError:
            raise UnknownRunbook(name, sorted(self.runbooks), suggest(name, sorted(self.runbooks))) from None

    def offers(self, services: list[str] | tuple[str, ...] | None = None) -> dict[str, list[str]]:
        """The runbooks each service's entry offers where it fails (health reports, incidents)."""
        names = self.service_names if services is None else [s for s in services if s in self.services]
        return {name: list(self.services[name].runbooks) for name in names if self.services[name].runbooks}

    def check_count(self) -> int:
        return sum(len(service.checks) for service in self.services.values())

    def secret_envs(self) -> list[tuple[str, str]]:
        """(yaml path, env name) for every environment variable the catalog reads."""
        found = []
        for name, service in self.services.items():
            for index, check in enumerate(service.checks):
                for env in check.secret_envs():
                    found.append((f"services.{name}.checks[{index}]", env))
            for key in ("target", "backup"):
                part = getattr(service, key)
                for field in ("dsn_env", "token_env", "url_env"):
                    named = getattr(part, field, None) if part is not None else None
                    if named:
                        found.append((f"services.{name}.{key}", named))
            token = getattr(service.maintenance, "token_env", None)
            if token:
                found.append((f"services.{name}.maintenance", token))
        for name, runbook in self.runbooks.items():
            for index, step in enumerate(runbook.steps):
                for field in ("dsn_env", "url_env"):
                    named = getattr(step, field, None)
                    if named:  # steps are numbered from 1 in what check-config says, as in run messages
                        found.append((f"runbooks.{name}.steps[{index + 1}]", named))
        found.extend((f"queries.{name}", query.dsn_env) for name, query in self.queries.items())
        return found


def suggest(given: str, valid: list[str]) -> str | None:
    matches = difflib.get_close_matches(given, valid, n=1, cutoff=0.6)
    if matches:
        return matches[0]
    # A short form of one name (`grace` for `grace_minutes`) is too short for a close match but still clear.
    extended = [name for name in valid if len(given) >= 3 and name.startswith(given)]
    return extended[0] if len(extended) == 1 else None
