"""What a catalog's `runbooks:` section holds: typed parameters, an approval policy and steps of registered kinds.

Shapes and single-field rules only; each step kind's model and traits live with the kind (`bot.runs.steps`), what
needs the rest of the catalog (services, targets, which parameters exist) is checked in `bot.runbooks.validation`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.runs.policy import ApprovalPolicy
from bot.runs.steps import TRAITS
from bot.runs.steps.base import CHANNEL_ID, MENTION_ID, PARAM_REFERENCE, OnFailure, Template
from bot.runs.steps.base import _Step as StepModel
from bot.runs.steps.maintenance import ConfigMapMaintenance, HttpMaintenance, Maintenance
from bot.scheduling.cron import CronSchedule

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
PARAM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")  # Docker's tag grammar: no "/", ":" or "@"
DEFAULT_STRING_PATTERN = r"[A-Za-z0-9 ._:/@+-]{1,200}"
# Names kept here for the catalog's other readers; the step kinds own them.
__all__ = ["CHANNEL_ID", "MENTION_ID", "PARAM_REFERENCE", "TRAITS", "ConfigMapMaintenance", "HttpMaintenance",
           "Maintenance", "Template"]


def _name(value: str) -> str:
    if not NAME.match(value):
        raise ValueError(f"{value!r} is not a valid runbook name (lowercase letters, digits, - and _)")
    return value


RunbookName = Annotated[str, AfterValidator(_name)]


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


class Runbook(BaseModel):
    """A runbook; its steps are each one kind's model. A catalog is validated with a subclass whose `steps` are the
    union of the kinds that catalog names (`bot.catalog_kinds.catalog_model`), so a kind no catalog uses is never
    imported: this base is for typing and is never validated itself."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    description: str = Field(default="", max_length=300)
    services: list[str] = Field(min_length=1, description="every service its steps may touch")
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    approvals: ApprovalPolicy | None = Field(default=None, description="None: the services' runbook policies")
    steps: list[StepModel] = Field(min_length=1, max_length=40)
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


def on_failure(step: StepModel) -> OnFailure:
    """What a failure of `step` does: its own `on_failure`, else its kind's default."""
    value: OnFailure = step.on_failure or TRAITS[step.kind].on_failure
    return value
