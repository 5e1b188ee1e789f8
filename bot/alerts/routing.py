"""The catalog's `alerts:` section (default channel, Alertmanager's URL, routes) and picking a group's route.

A route matches labels by equality (`match`) or by a regular expression that must match the whole value
(`match_re`, compiled when the catalog loads); the first route that matches wins. Its runbook's `parameters` are
Jinja templates over the alert's `labels` and `annotations`, rendered in the sandbox. Not responsible for checking
names against the rest of the catalog (bot/alerts/catalog_checks.py) nor for the parameters' types (service.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.incidents.templates import check_template, render
from bot.runs.policy import ApprovalPolicy
from bot.scheduling.settings import channel_id


class DeclareRule(BaseModel):
    """Declare an incident once a matching group has fired `after_minutes` (a chore does it, once across replicas)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    when: dict[str, str] = Field(default_factory=dict, description="labels the group's alerts must have (equality)")
    after_minutes: float = Field(default=5, ge=0, description="how long the group fires before it is declared")
    severity: str = Field(description="the incident's severity (a name of `incidents.severities`)")

    def applies(self, labels: dict[str, str]) -> bool:
        return all(labels.get(name) == value for name, value in self.when.items())


_DURATION = re.compile(r"(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m(?:in)?)?\s*(?:(\d+)s)?")


def parse_duration(value: object) -> object:
    """`7d`, `1h`, `30m`, `1h30m`, `90s`; a number is minutes. Anything else is left to pydantic (ISO 8601 `PT1H`)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(minutes=value)
    if isinstance(value, str) and value.strip():
        found = _DURATION.fullmatch(value.strip())
        if found and any(found.groups()):
            days, hours, minutes, seconds = (int(part or 0) for part in found.groups())
            return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    return value


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    match: dict[str, str] = Field(default_factory=dict, description="labels that must equal these values")
    match_re: dict[str, re.Pattern[str]] = Field(default_factory=dict,
                                                 description="labels whose whole value must match these expressions")
    service: str | None = Field(default=None, description="the opsbot service the alert concerns")
    channel: str | None = Field(default=None, description="the channel ID to post in; default: alerts.channel, "
                                                          "then the service's channel")
    runbook: str | None = Field(default=None, description="the runbook offered as a Run button")
    parameters: dict[str, str] = Field(default_factory=dict, description="the runbook's values: templates over "
                                                                         "`labels` and `annotations`")
    health: bool = Field(default=False, description="run the service's checks when the group arrives and show them")
    declare: DeclareRule | None = Field(default=None, description="declare an incident when the group fires that long")

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        return channel_id(value) if value is not None else None

    @field_validator("parameters")
    @classmethod
    def _templates(cls, values: dict[str, str]) -> dict[str, str]:
        for name, source in values.items():
            check_template(source, f"parameter {name!r}")
        return values

    @model_validator(mode="after")
    def _shape(self) -> Route:
        if self.parameters and self.runbook is None:
            raise ValueError("`parameters` are the runbook's values: name the `runbook` too")
        if self.health and self.service is None:
            raise ValueError("`health: true` runs a service's checks: name the `service` too")
        return self

    def matches(self, labels: dict[str, str]) -> bool:
        return (all(labels.get(name) == value for name, value in self.match.items())
                and all(pattern.fullmatch(labels.get(name, "")) is not None for name, pattern in self.match_re.items()))


class AlertSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    channel: str = Field(description="the channel ID alerts go to when no route names one (unrouted alerts too)")
    alertmanager_url: str | None = Field(default=None, description="Alertmanager's URL for silences; default: the "
                                                                   "externalURL its webhooks carry")
    reopen_within: timedelta = Field(default=timedelta(hours=1), description="a group that fires again within this "
                                     "time of resolving reopens its message (`1h`, `30m`); later, a new message")
    silence_max: timedelta = Field(default=timedelta(days=7), description="the latest end a silence may be given "
                                   "from now (`Silence until…` refuses a later one): `7d`, `48h`")
    silence_approvals: ApprovalPolicy | None = Field(default=None, description="whether a silence needs approval "
                                                     "before opsbot creates it, as an action's policy: `approvals` "
                                                     "(distinct people besides the requester), `approvers`, "
                                                     "`requesters`; default: none, a silence is created at once")
    routes: list[Route] = Field(default_factory=list)

    @field_validator("reopen_within", "silence_max", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value)

    @field_validator("silence_max")
    @classmethod
    def _silence_max(cls, value: timedelta) -> timedelta:
        if not timedelta(minutes=5) <= value <= timedelta(days=365):
            raise ValueError("must be between 5 minutes and 365 days (`7d`, `48h`)")
        return value

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        return channel_id(value)

    @field_validator("alertmanager_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be Alertmanager's http:// or https:// URL")
        return value.rstrip("/") if value else value


@dataclass(frozen=True)
class Routed:
    """Where a group goes and what it offers; `index` is None for an unrouted group."""

    index: int | None
    channel: str
    service: str | None
    runbook: str | None
    health: bool


def route(settings: AlertSettings, labels: dict[str, str], service_channels: dict[str, str]) -> Routed:
    """The first route matching `labels`; none → the default channel with nothing offered."""
    for index, candidate in enumerate(settings.routes):
        if candidate.matches(labels):
            fallback = service_channels.get(candidate.service or "") or settings.channel
            return Routed(index, candidate.channel or fallback, candidate.service, candidate.runbook, candidate.health)
    return Routed(None, settings.channel, None, None, False)


@dataclass(frozen=True)
class Rendered:
    values: dict[str, str]
    problem: str | None  # why the Run button is disabled (a template needs a label the alert lacks)


def render_parameters(templates: dict[str, str], labels: dict[str, str], annotations: dict[str, str]) -> Rendered:
    values: dict[str, str] = {}
    for name, source in templates.items():
        try:
            values[name] = render(source, {"labels": labels, "annotations": annotations}).strip()
        except Exception as exc:  # noqa: BLE001 - any template failure (a missing label, 1/0) disables the button
            return Rendered({}, f"parameter `{name}` could not be filled from the alert: {exc}")
    return Rendered(values, None)
