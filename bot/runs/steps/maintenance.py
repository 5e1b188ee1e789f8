"""The `maintenance` kind and a service's maintenance setting: a ConfigMap key the app watches, or the app's own
endpoint; undone by putting the mode back as it was.

Not responsible for what the app does in maintenance mode, nor for reading ConfigMaps (`bot.executors`,
capability `ConfigValues`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.env_names import ENV_NAME
from bot.executors.base import ConfigValues, Effect, ExecutorError
from bot.runs import targets
from bot.runs.models import ActionRun
from bot.runs.steps._http import request
from bot.runs.steps.base import (
    UNCHANGED,
    Note,
    PlannedStep,
    StepDeps,
    StepKind,
    Traits,
    UndoBook,
    _ServiceStep,
    register,
)

if TYPE_CHECKING:
    from bot.catalog import Service


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


class MaintenanceStep(_ServiceStep):
    kind: Literal["maintenance"]
    mode: Literal["on", "off"]

    @field_validator("mode", mode="before", json_schema_input_type=Literal["on", "off"] | bool)
    @classmethod
    def _yaml_boolean(cls, value: object) -> object:
        # YAML 1.1 reads a bare `on` / `off` as a boolean.
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


def _setting(deps: StepDeps, service: str) -> ConfigMapMaintenance | HttpMaintenance:
    setting = deps.catalog.services[service].maintenance
    if setting is None:
        raise ExecutorError(f"services.{service} has no `maintenance:`", state=UNCHANGED, effect=Effect.UNTOUCHED)
    return setting


async def _describe(deps: StepDeps, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    setting = _setting(deps, service or "")
    where = (f"ConfigMap {setting.configmap}, key {setting.key}" if isinstance(setting, ConfigMapMaintenance)
             else f"{setting.method} to the app's endpoint")
    return f"Turn maintenance mode {args['mode']} for {service} ({where})", ""


async def _perform(deps: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note) -> str:
    service, mode = step.service or "", str(step.args["mode"])
    setting = _setting(deps, service)
    if isinstance(setting, ConfigMapMaintenance):
        async with targets.capable(deps, service, ConfigValues) as found:
            workload: ConfigValues = found
            await book.keep(value=await workload.config_value(setting.configmap, setting.key))
            value = setting.on_value if mode == "on" else setting.off_value
            return await workload.set_config_value(setting.configmap, setting.key, value)
    # The app's endpoint cannot be asked what it was; the undo of "on" is "off" and the reverse.
    await book.keep(mode="off" if mode == "on" else "on")
    return await _call(deps, setting, mode)


async def _call(deps: StepDeps, setting: HttpMaintenance, mode: str) -> str:
    url = setting.on_url if mode == "on" else setting.off_url
    headers = {}
    if setting.token_env:
        token = deps.environ.get(setting.token_env)
        if not token:
            raise ExecutorError(f"environment variable {setting.token_env} is not set", state=UNCHANGED,
                                effect=Effect.UNTOUCHED)
        headers["Authorization"] = f"Bearer {token}"
    return await request(deps, setting.method, url, None, headers, list(range(200, 300)), setting.timeout, secret=False)


async def _undo(deps: StepDeps, step: PlannedStep, data: dict[str, Any]) -> str:
    service = step.service or ""
    setting = _setting(deps, service)
    if isinstance(setting, ConfigMapMaintenance):
        async with targets.capable(deps, service, ConfigValues) as found:
            workload: ConfigValues = found
            return await workload.set_config_value(setting.configmap, setting.key, data.get("value"))
    return await _call(deps, setting, str(data["mode"]))


def _words(step: PlannedStep, data: dict[str, Any]) -> str:
    if "value" not in data:
        return step.undo or "undo"
    return f"set it back to {json.dumps(data['value'])}" if data["value"] is not None else "remove the key again"


def _capabilities(service: Service) -> tuple[type, ...]:
    # A ConfigMap lives in the target's cluster; the app's own endpoint needs no target at all.
    return (ConfigValues,) if isinstance(service.maintenance, ConfigMapMaintenance) else ()


KIND = register(StepKind("maintenance", MaintenanceStep,
                         Traits(changes=True, undo="put maintenance mode back as it was", cut_short=Effect.UNKNOWN,
                                needs="maintenance"),
                         _describe, _perform, undo=_undo, undo_words=_words, capabilities=_capabilities))
