"""What a catalog's `runbooks:` section holds: typed parameters, an approval policy and steps of built-in kinds.

Shapes and single-field rules only; what needs the rest of the catalog (services, targets, which parameters
exist) is checked in `bot.runbooks.validation`, and what a step does in `bot.runbooks.steps`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.actions.policy import ApprovalPolicy
from bot.checks.base import ENV_NAME
from bot.executors.base import Effect
from bot.scheduling.cron import CronSchedule

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
PARAM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# The one template form a step argument may hold: a declared parameter's value, substituted as data.
PARAM_REFERENCE = re.compile(r"\{\{\s*params\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")
MENTION_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")
IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")  # Docker's tag grammar: no "/", ":" or "@"
DEFAULT_STRING_PATTERN = r"[A-Za-z0-9 ._:/@+-]{1,200}"
OnFailure = Literal["stop", "continue", "rollback"]


def _name(value: str) -> str:
    if not NAME.match(value):
        raise ValueError(f"{value!r} is not a valid runbook name (lowercase letters, digits, - and _)")
    return value


RunbookName = Annotated[str, AfterValidator(_name)]


def _template(value: str) -> str:
    """Only `{{ params.name }}` may appear: no expressions, filters or statements reach a step."""
    rest = PARAM_REFERENCE.sub("", value)
    if "{{" in rest or "{%" in rest or "}}" in rest:
        raise ValueError(f"{value!r}: the only template form is {{{{ params.<name> }}}}")
    return value


Template = Annotated[str, AfterValidator(_template)]


def references(value: object) -> list[str]:
    """The parameter names a step argument refers to."""
    if isinstance(value, str):
        return PARAM_REFERENCE.findall(value)
    if isinstance(value, dict):
        return [name for item in value.values() for name in references(item)]
    if isinstance(value, list):
        return [name for item in value for name in references(item)]
    return []


# --- parameters ---------------------------------------------------------------------------------------------


class _Parameter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    description: str = Field(default="", max_length=200)


class StringParameter(_Parameter):
    type: Literal["string"]
    pattern: str = Field(default=DEFAULT_STRING_PATTERN, description="the whole value must match")
    default: str | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class IntegerParameter(_Parameter):
    type: Literal["integer"]
    min: int = 0
    max: int = 100
    default: int | None = None

    @model_validator(mode="after")
    def _bounds(self) -> IntegerParameter:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        if self.default is not None and not self.min <= self.default <= self.max:
            raise ValueError(f"default {self.default} is outside {self.min}..{self.max}")
        return self


class ChoiceParameter(_Parameter):
    type: Literal["choice"]
    choices: list[Annotated[str, Field(min_length=1, max_length=75)]] = Field(min_length=1, max_length=100)
    default: str | None = None

    @model_validator(mode="after")
    def _default_is_a_choice(self) -> ChoiceParameter:
        if self.default is not None and self.default not in self.choices:
            raise ValueError(f"default {self.default!r} is not one of the choices")
        return self


class ImageTagParameter(_Parameter):
    type: Literal["image_tag"]
    default: str | None = Field(default=None, pattern=IMAGE_TAG.pattern)


class BackupParameter(_Parameter):
    """A backup of `service`, by id from its list; `latest` means its newest verified one when the plan is made."""

    type: Literal["backup"]
    service: str


Parameter = Annotated[
    StringParameter | IntegerParameter | ChoiceParameter | ImageTagParameter | BackupParameter,
    Field(discriminator="type"),
]


# --- steps --------------------------------------------------------------------------------------------------


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str | None = Field(default=None, min_length=1, max_length=120, description="shown instead of the generated title")
    timeout: float = Field(default=600, gt=0, le=6 * 3600, description="seconds one attempt may take")
    retries: int = Field(default=0, ge=0, le=5, description="further attempts after a failure")
    on_failure: OnFailure | None = Field(default=None, description="None: rollback for steps that change something")


class _ServiceStep(_Step):
    service: str


class CheckStep(_ServiceStep):
    kind: Literal["check"]
    attempts: Annotated[int, Field(ge=1, le=100)] | Template = 1
    interval: float = Field(default=10, ge=0, le=600, description="seconds between attempts")


class RestartStep(_ServiceStep):
    kind: Literal["restart"]


class StopStep(_ServiceStep):
    kind: Literal["stop"]


class StartStep(_ServiceStep):
    kind: Literal["start"]
    replicas: int | Template | None = Field(default=None, description="Kubernetes: how many to start (default 1)")


class DeployStep(_ServiceStep):
    kind: Literal["deploy"]
    image: Template = Field(description="a tag of the image the service runs, or a full image reference")


class RollbackStep(_ServiceStep):
    kind: Literal["rollback"]
    to: Template | None = Field(default=None, description="a revision or tag; None: the previous one")


class ScaleStep(_ServiceStep):
    kind: Literal["scale"]
    replicas: int | Template


class BackupStep(_ServiceStep):
    kind: Literal["backup"]


class RestoreStep(_ServiceStep):
    kind: Literal["restore"]
    backup: int | Template = Field(description="a backup id, `latest`, or {{ params.<a backup parameter> }}")


class MaintenanceStep(_ServiceStep):
    kind: Literal["maintenance"]
    mode: Literal["on", "off"]

    @field_validator("mode", mode="before")
    @classmethod
    def _yaml_boolean(cls, value: object) -> object:
        # YAML 1.1 reads a bare `on` / `off` as a boolean.
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


class SqlStep(_ServiceStep):
    kind: Literal["sql"]
    statement: str = Field(min_length=1, max_length=2000, description="used verbatim: parameters never reach SQL")
    engine: Literal["postgres", "mysql"] = "postgres"
    dsn_env: str | None = Field(default=None, pattern=ENV_NAME, description="None: the service's postgres backup DSN")

    @field_validator("statement")
    @classmethod
    def _no_parameters(cls, value: str) -> str:
        if "{{" in value or "{%" in value:
            raise ValueError("parameters never reach SQL: write the statement out in full")
        return value


class TerminateQueriesStep(_ServiceStep):
    kind: Literal["terminate-queries"]
    older_than_minutes: float = Field(default=5, gt=0, le=24 * 60)
    dsn_env: str | None = Field(default=None, pattern=ENV_NAME, description="None: the service's postgres backup DSN")


class FlushCacheStep(_ServiceStep):
    kind: Literal["flush-cache"]
    engine: Literal["redis", "memcached"]
    url_env: str | None = Field(default=None, pattern=ENV_NAME, description="redis: environment variable with the URL")
    db: int = Field(default=0, ge=0, le=15, description="redis: the database number to flush")
    address: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.-]+:\d{1,5}$", description="memcached: host:port")

    @model_validator(mode="after")
    def _where(self) -> FlushCacheStep:
        if self.engine == "redis" and not self.url_env:
            raise ValueError("a redis flush needs `url_env` (the environment variable holding its URL)")
        if self.engine == "memcached" and not self.address:
            raise ValueError("a memcached flush needs `address` (host:port)")
        return self


class CollectLogsStep(_ServiceStep):
    kind: Literal["collect-logs"]
    minutes: float = Field(default=60, gt=0, le=7 * 24 * 60, description="how far back")
    max_kb: int = Field(default=1024, ge=1, le=20 * 1024, description="per container or pod")


class NotifyStep(_Step):
    kind: Literal["notify"]
    text: Template = Field(min_length=1, max_length=2000)
    channel: str | None = Field(default=None, pattern=CHANNEL_ID.pattern, description="None: the run's channel")
    mention: list[Annotated[str, Field(pattern=MENTION_ID.pattern)]] = Field(default_factory=list)


class HttpStep(_Step):
    kind: Literal["http"]
    url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    url_env: str | None = Field(default=None, pattern=ENV_NAME, description="for webhook URLs that are secrets")
    method: Literal["POST", "PUT", "PATCH", "GET", "DELETE"] = "POST"
    json_body: dict[str, Template | int | float | bool | None] | None = Field(default=None, alias="json")
    expect_status: list[int] = Field(default_factory=lambda: list(range(200, 300)))

    @field_validator("url", mode="before")
    @classmethod
    def _no_parameters(cls, value: object) -> object:
        if isinstance(value, str) and ("{{" in value or "{%" in value):
            raise ValueError("parameters never reach a URL: write it out in full (values may go in `json`)")
        return value

    @model_validator(mode="after")
    def _one_url(self) -> HttpStep:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of `url` or `url_env`")
        return self


class WaitStep(_Step):
    kind: Literal["wait"]
    seconds: float | Template = Field(description="how long to pause")


Step = Annotated[
    CheckStep | RestartStep | StopStep | StartStep | DeployStep | RollbackStep | ScaleStep | BackupStep | RestoreStep
    | MaintenanceStep | SqlStep | TerminateQueriesStep | FlushCacheStep | CollectLogsStep | NotifyStep | HttpStep | WaitStep,
    Field(discriminator="kind"),
]


class Runbook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    description: str = Field(default="", max_length=300)
    services: list[str] = Field(min_length=1, description="every service its steps may touch")
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    approvals: ApprovalPolicy | None = Field(default=None, description="None: the services' runbook policies")
    steps: list[Step] = Field(min_length=1, max_length=40)
    schedule: CronSchedule | None = Field(default=None, description="run it on this schedule too, approved by the catalog")
    schedule_values: dict[str, str | int | float] = Field(
        default_factory=dict, description="the parameters' values on a scheduled run (checked like `/ops run`'s)")

    @field_validator("schedule_values", mode="before")
    @classmethod
    def _no_booleans(cls, values: object) -> object:
        # YAML 1.1 reads a bare yes/no/on/off as a boolean, which no parameter type takes: say so, not "not a string".
        booleans = [f"{name}: YAML read {value!r} as a boolean" for name, value in dict(values or {}).items()
                    if isinstance(value, bool)] if isinstance(values, dict) else []
        if booleans:
            raise ValueError("; ".join(booleans) + '; quote the value ("on", "yes")')
        return values

    @field_validator("parameters")
    @classmethod
    def _parameter_names(cls, parameters: dict[str, object]) -> dict[str, object]:
        for name in parameters:
            if not PARAM_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid parameter name (lowercase letters, digits and _)")
        return parameters


# --- maintenance mode, a service's own --------------------------------------------------------------------


class ConfigMapMaintenance(BaseModel):
    """Maintenance mode as a key of a ConfigMap in the service's Kubernetes namespace (the app watches it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["configmap"]
    configmap: str = Field(max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    key: str = Field(max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    # Not `on:` / `off:`: YAML 1.1 would read those keys as booleans.
    on_value: str = "true"
    off_value: str = "false"


class HttpMaintenance(BaseModel):
    """Maintenance mode through the app's own endpoint: one URL (or request) to turn it on, one to turn it off."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["http"]
    on_url: str = Field(pattern=r"^https?://\S+$")
    off_url: str = Field(pattern=r"^https?://\S+$")
    method: Literal["POST", "PUT"] = "POST"
    token_env: str | None = Field(default=None, pattern=ENV_NAME, description="a bearer token for the endpoint")
    timeout: float = Field(default=10, gt=0, le=120)


Maintenance = Annotated[ConfigMapMaintenance | HttpMaintenance, Field(discriminator="type")]


# --- what each kind is, for validation, plans and the undo phase -----------------------------------------------


class Traits(BaseModel):
    model_config = ConfigDict(frozen=True)
    changes: bool  # it changes the service (so a failure rolls back by default)
    undo: str | None  # what reverses it, in words; None: nothing can
    # What a step of this kind leaves when it is cut short (its timeout, a crash in opsbot): a kind that only
    # reads, or posts to Slack, leaves its target untouched; one that acts may have got anywhere.
    cut_short: Effect
    needs: Literal["target", "backup", "maintenance", None] = None  # the service's catalog part it acts on
    on_failure: OnFailure = "rollback"


TRAITS: dict[str, Traits] = {
    "check": Traits(changes=False, undo=None, cut_short=Effect.UNTOUCHED),
    "restart": Traits(changes=True, undo=None, cut_short=Effect.UNKNOWN, needs="target"),
    "stop": Traits(changes=True, undo="start it again", cut_short=Effect.UNKNOWN, needs="target"),
    "start": Traits(changes=True, undo="stop it again", cut_short=Effect.UNKNOWN, needs="target"),
    "deploy": Traits(changes=True, undo="deploy the image it ran before", cut_short=Effect.UNKNOWN, needs="target"),
    "rollback": Traits(changes=True, undo="deploy the image it ran before", cut_short=Effect.UNKNOWN, needs="target"),
    "scale": Traits(changes=True, undo="scale back to the replicas it had", cut_short=Effect.UNKNOWN, needs="target"),
    "backup": Traits(changes=False, undo=None, cut_short=Effect.UNTOUCHED, needs="backup"),
    "restore": Traits(changes=True, undo="restore the safety backup taken first", cut_short=Effect.UNKNOWN, needs="backup"),
    "maintenance": Traits(changes=True, undo="put maintenance mode back as it was", cut_short=Effect.UNKNOWN,
                          needs="maintenance"),
    "sql": Traits(changes=True, undo=None, cut_short=Effect.UNKNOWN),
    "terminate-queries": Traits(changes=True, undo=None, cut_short=Effect.UNKNOWN),
    "flush-cache": Traits(changes=True, undo=None, cut_short=Effect.UNKNOWN),
    "collect-logs": Traits(changes=False, undo=None, cut_short=Effect.UNTOUCHED, needs="target", on_failure="continue"),
    "notify": Traits(changes=False, undo=None, cut_short=Effect.UNTOUCHED, on_failure="continue"),
    "http": Traits(changes=False, undo=None, cut_short=Effect.UNKNOWN, on_failure="continue"),
    "wait": Traits(changes=False, undo=None, cut_short=Effect.UNTOUCHED),
}


def on_failure(step: Step) -> OnFailure:
    return step.on_failure or TRAITS[step.kind].on_failure
