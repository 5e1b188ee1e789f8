"""The model a catalog is validated with: `bot.catalog.Catalog` with the check and step kinds that catalog names.

A kind's module (its model, its probe, the client library behind it) is imported only when a catalog names it, so
a catalog of HTTP and TCP checks never loads the Kubernetes or RabbitMQ kinds. The models only grow: a kind once
taken stays in the unions (a reload that drops it keeps the model built), and a catalog naming nothing new reuses
the last one. Not responsible for the models' fields (`bot.catalog`, `bot.runbooks.definitions`) or for reading YAML.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, Union

from pydantic import BaseModel, Field, create_model

from bot import checks
from bot.catalog import Catalog, Service, ServiceName
from bot.runbooks.definitions import Runbook, RunbookName
from bot.runs.steps.base import REGISTRY, kind_names, loaded


@dataclass(frozen=True)
class AllKinds:
    """Marks a union built from some kinds only: every valid tag, for the message about an unknown one."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class _Built:
    checks: frozenset[str]
    steps: frozenset[str]
    model: type[Catalog]


_last: list[_Built] = []
M = TypeVar("M", bound=BaseModel)


def catalog_model(data: object = None, *, every_kind: bool = False) -> type[Catalog]:
    """The model for the raw catalog `data` (what YAML read): it takes every kind `data` names that exists; a kind
    that does not is left for the union to refuse, with every valid kind named. `every_kind`: all of them (the
    catalog's JSON schema)."""
    check_kinds, step_kinds = (set(checks.KINDS), set(kind_names())) if every_kind else _named(data)
    check_kinds &= set(checks.KINDS)
    step_kinds = {kind for kind in step_kinds if kind in REGISTRY}
    if _last:
        last = _last[-1]
        if check_kinds <= last.checks and step_kinds <= last.steps:
            return last.model
        check_kinds |= last.checks
        step_kinds |= {kind for kind in last.steps if kind in REGISTRY}  # a test's throwaway kind may be gone
    built = _Built(frozenset(check_kinds), frozenset(step_kinds), _build(check_kinds, step_kinds))
    _last[:] = [built]
    return built.model


def _named(data: object) -> tuple[set[str], set[str]]:
    """The check `type:`s and step `kind:`s a raw catalog names (what is not a mapping or a list is the models')."""
    return ({str(item["type"]) for service in _values(data, "services") for item in _items(service, "checks")
             if isinstance(item.get("type"), str)},
            {str(item["kind"]) for runbook in _values(data, "runbooks") for item in _items(runbook, "steps")
             if isinstance(item.get("kind"), str)})


def _values(data: object, key: str) -> list[Any]:
    part = data.get(key) if isinstance(data, dict) else None
    return list(part.values()) if isinstance(part, dict) else []


def _items(entry: object, key: str) -> list[dict[str, Any]]:
    part = entry.get(key) if isinstance(entry, dict) else None
    return [item for item in part if isinstance(item, dict)] if isinstance(part, list) else []


def _build(check_kinds: set[str], step_kinds: set[str]) -> type[Catalog]:
    check_models = tuple(checks.model(kind) for kind in checks.KINDS if kind in check_kinds) or (checks.model("http"),)
    step_models = tuple(REGISTRY[kind].args for kind in kind_names() if kind in step_kinds) or tuple(
        kind.args for kind in loaded().values())
    check = _tagged(check_models, "type", tuple(checks.KINDS))
    step = _tagged(step_models, "kind", kind_names())
    service = _with(Service, checks=list[check])  # type: ignore[valid-type]
    runbook = _with(Runbook, steps=list[step])  # type: ignore[valid-type]
    return _with(Catalog, services=dict[ServiceName, service], runbooks=dict[RunbookName, runbook])  # type: ignore[valid-type]


def _tagged(models: tuple[type[BaseModel], ...], tag: str, every: tuple[str, ...]) -> Any:
    return Annotated[Union[models], Field(discriminator=tag), AllKinds(every)]  # noqa: UP007 (a union from a tuple)


def _with(base: type[M], **fields: Any) -> type[M]:
    """A subclass of `base` (same name, validators and field settings) whose `fields` take these types."""
    definitions: dict[str, Any] = {name: (annotation, base.model_fields[name]) for name, annotation in fields.items()}
    return create_model(base.__name__, __base__=base, __module__=base.__module__, **definitions)
