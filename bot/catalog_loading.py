"""Reading the catalog: YAML to `bot.catalog.Catalog`, refused with every problem at its YAML path and line
(`services.api.checks[1].timeout: must be > 0`), then the checks of one part against another (a runbook's step and
the service it names). The models themselves are `bot.catalog`; the cross-checks are `bot.runbooks.validation`.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ValidationError

from bot.alerts.catalog_checks import alert_errors
from bot.catalog import Catalog, suggest
from bot.catalog_kinds import AllKinds, catalog_model
from bot.executors.demo import DemoTarget
from bot.runbooks import validation
from bot.runbooks.validation import Finding


@dataclass(frozen=True)
class CatalogProblem:
    path: str
    message: str
    line: int | None = None

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class CatalogInvalid(Exception):
    def __init__(self, source: str, problems: list[CatalogProblem]) -> None:
        self.source, self.problems = source, problems
        super().__init__("\n".join(problem.render(source) for problem in problems))


def load_catalog(path: Path) -> Catalog:
    """Read and validate the catalog file; raises CatalogInvalid listing every problem."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogInvalid(source, [CatalogProblem("", "file not found (set OPSBOT_CONFIG to the catalog's path)")]) from None
    except OSError as exc:
        raise CatalogInvalid(source, [CatalogProblem("", f"cannot read: {exc.strerror}")]) from None
    return parse_catalog(text, source)


def parse_catalog(text: str, source: str = "<catalog>") -> Catalog:
    try:
        root = yaml.compose(text, Loader=_UniqueKeyLoader)
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader (it only adds a duplicate-key check)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise CatalogInvalid(source, [CatalogProblem("", f"not valid YAML: {reason}", line)]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CatalogInvalid(source, [CatalogProblem("", "the catalog must be a mapping with a `services:` key", 1)])
    model = catalog_model(data)
    try:
        catalog = model.model_validate(data)
    except ValidationError as exc:
        problems = sorted(_problems(exc.errors(), root, model), key=lambda p: p.line or 0)
        raise CatalogInvalid(source, problems) from None
    # What one part says about another (a runbook's step and the service it names) is checked on the whole.
    found = [*_check_errors(catalog), *validation.errors(catalog), *alert_errors(catalog), *_query_errors(catalog)]
    if found:
        problems = [CatalogProblem(_format_path(list(f.path)), f.message, _line_of(root, list(f.path))) for f in found]
        raise CatalogInvalid(source, sorted(problems, key=lambda p: p.line or 0))
    return catalog


def _check_errors(catalog: Catalog) -> list[Finding]:
    return [Finding(("services", name, "checks", index), message)
            for name, service in catalog.services.items()
            for index, check in enumerate(service.checks)
            for message in check.catalog_errors(name, catalog)]


def _query_errors(catalog: Catalog) -> list[Finding]:
    """A named query's `service:` is one of the catalog's (its rows are shown as that service's), said as a runbook
    step's unknown service is."""
    services = catalog.service_names
    found = []
    for name, query in catalog.queries.items():
        if query.service not in catalog.services:
            hint = suggest(query.service, services)
            found.append(Finding(("queries", name, "service"), f"unknown service {query.service!r}"
                                 + (f"; did you mean `{hint}`?" if hint else "")
                                 + f" (services: {', '.join(services) or 'none'})"))
    return found


def missing_envs(used: list[tuple[str, str]], environ: Mapping[str, str]) -> str | None:
    """One warning for the environment variables the catalog reads that are not set: at its path when one variable
    is used once, else once with the count of the places that use them."""
    unset = [(where, env) for where, env in used if not environ.get(env)]
    if not unset:
        return None
    names = list(dict.fromkeys(env for _, env in unset))
    if len(unset) == 1:
        return f"{unset[0][0]}: environment variable {names[0]} is not set here"
    # What kind of place each is: the key holding it (`checks`, `steps`, `backup`…), or `queries` for a named query.
    places = ["queries" if where.startswith("queries.") else where.rsplit(".", 1)[-1].split("[")[0]
              for where, _ in unset]
    counts = {place: places.count(place) for place in dict.fromkeys(places)}
    [(only, count)] = counts.items() if len(counts) == 1 else [("", 0)]
    users = (f"{count} {_PLACES.get(only, only)}" if only
             else f"{len(unset)} places (" + ", ".join(f"{n} {_PLACES.get(p, p)}" for p, n in counts.items()) + ")")
    variables = f"{len(names)} environment variables are" if len(names) > 1 else "environment variable"
    return f"{variables} not set here: {', '.join(names)} — used by {users}"


_PLACES = {"steps": "steps", "checks": "checks", "target": "targets", "backup": "backups",
           "maintenance": "maintenance settings", "queries": "named queries"}


def catalog_warnings(catalog: Catalog) -> list[str]:
    """What `check-config` says without refusing the catalog."""
    found = [f"{_format_path(list(f.path))}: {f.message}" for f in validation.warnings(catalog)]
    for name, service in catalog.services.items():
        if isinstance(service.target, DemoTarget):
            found.append(f"services.{name}.target: a demo app, which only `opsbot dev` runs; `opsbot serve` refuses "
                         f"to restart, roll back or deploy {name}")
        for index, check in enumerate(service.checks):
            # Kinds that can say something about their own settings (a superuser DSN) offer `config_warnings`.
            for message in getattr(check, "config_warnings", list)():
                found.append(f"{_format_path(['services', name, 'checks', index])}: {message}")
    return found


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys: YAML would silently keep the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key]})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


# --- error formatting ---------------------------------------------------------------------------------


def _problems(errors: list[Any], root: yaml.Node | None, model: type[Catalog]) -> list[CatalogProblem]:
    """One problem per YAML path: a value a union refuses (`attempts: 0` is neither a count from 1 nor a
    `{{ params.x }}` text) fails once per member, and is said once, by the member of the value's own type."""
    by_path: dict[tuple[str | int, ...], list[tuple[Any, _Place]]] = {}
    for error in errors:
        parts, place = _yaml_parts(error["loc"], model)
        by_path.setdefault(tuple(parts), []).append((error, place))
    problems = []
    for where, found in by_path.items():
        relevant = [(e, m) for e, m in found if e["type"] not in _TYPE_ERRORS] or found
        if len(relevant) > 1 and all(e["type"] in _TYPE_ERRORS for e, _ in relevant):
            *others, last = dict.fromkeys(_TYPE_ERRORS[e["type"]] for e, _ in relevant)
            wanted = f"{', '.join(others)} or {last}" if others else last
            messages = [f"must be {wanted}"]
        else:
            messages = list(dict.fromkeys(_message(e, m) for e, m in relevant))
        # A model-level validator reports at the mapping itself; its message may already start with a key.
        problems += [CatalogProblem(_format_path(list(where)), message, _line_of(root, list(where)))
                     for message in messages]
    return problems


# What a value of the wrong type was expected to be, in words (pydantic's types, never its wording).
_TYPE_ERRORS = {
    "string_type": "text", "int_type": "a whole number", "int_parsing": "a whole number",
    "int_from_float": "a whole number", "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false", "list_type": "a list",
    "tuple_type": "a list", "dict_type": "a mapping (key: value)", "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)", "none_required": "empty", "url_type": "a URL",
    "url_parsing": "a URL", "decimal_type": "a number", "date_type": "a date", "datetime_type": "a date and time",
}


@dataclass(frozen=True)
class _Place:
    """Where an error is in the models: the model its last key belongs to, and the annotation of its value."""

    owner: type[BaseModel] | None
    annotation: Any


def _yaml_parts(loc: tuple[Any, ...], catalog: type[Catalog]) -> tuple[list[str | int], _Place]:
    """Drop pydantic's union-tag segments from a location, and find the model the last key belongs to."""
    parts: list[str | int] = []
    annotation: Any = catalog
    owner: type[BaseModel] | None = catalog
    for segment in loc:
        if segment == "[key]":  # pydantic's marker for a dict key that failed validation
            continue
        if _is_member_label(annotation, segment):
            continue  # pydantic names the member of a plain union it tried (`constrained-int`, `function-after[…]`)
        annotation, consumed_as_tag = _step(annotation, segment)
        if consumed_as_tag:
            owner = annotation if _is_model(annotation) else owner
            continue
        parts.append(segment)
        if _is_model(annotation):
            owner = annotation
    return parts, _Place(owner, annotation)


def _step(annotation: Any, segment: Any) -> tuple[Any, bool]:
    annotation = _unwrap(annotation)
    if _is_model(annotation):
        fields = annotation.model_fields
        field = next((f for name, f in fields.items() if segment in (name, f.alias)), None)  # `json` is json_body's
        if field is None and _tag_of(annotation) == segment:  # a union of one kind is that kind: pydantic still tags it
            return annotation, True
        return (field.annotation if field else None), False
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (list, tuple) and args:
        return args[0], False
    if origin is dict and len(args) == 2:
        return args[1], False
    if origin in (typing.Union, types.UnionType):
        for member in args:
            member = _unwrap(member)
            if _is_model(member) and _tag_of(member) == segment:
                return member, True
            if typing.get_origin(member) in (typing.Union, types.UnionType):  # an optional tagged union
                found, consumed = _step(member, segment)
                if consumed:
                    return found, True
        # An optional model (`schedule: CronSchedule | None`): the segment is that model's field.
        models = [m for m in map(_unwrap, args) if _is_model(m)]
        if len(models) == 1:
            return _step(models[0], segment)
        present = [m for m in args if m is not type(None)]
        if len(present) == 1:  # an optional mapping or list: the segment is its key or index
            return _step(present[0], segment)
        return None, False
    return None, False


# How pydantic names the member of a plain union it tried, when the annotation there is not known.
_MEMBER_LABEL = re.compile(r"^(function-(after|before|plain|wrap)\[.*\]|constrained-\w+|lax-\w+|"
                           r"(tagged-union|union|nullable|list|dict|tuple|set)\[.*\]|str|int|float|bool|none)$")


def _is_member_label(annotation: Any, segment: Any) -> bool:
    if annotation is None:
        return isinstance(segment, str) and bool(_MEMBER_LABEL.match(segment))
    annotation = _unwrap(annotation)
    if not isinstance(segment, str) or typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return False
    members = [_unwrap(member) for member in typing.get_args(annotation) if member is not type(None)]
    if len(members) < 2:  # an optional value (`X | None`) is not a union pydantic labels
        return False
    tagged = any(_is_model(member) and _tag_of(member) == segment for member in members)
    one_model = len([m for m in members if _is_model(m)]) == 1  # an optional model: the segment is its field
    return not tagged and not one_model and not any(
        typing.get_origin(m) in (typing.Union, types.UnionType) for m in members)


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _tag_of(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("type") or model.model_fields.get("kind")  # runbook steps are tagged by kind
    args = typing.get_args(field.annotation) if field else ()
    return args[0] if args else None


def _format_path(parts: list[str | int]) -> str:
    out, previous = "", None
    for part in parts:
        if isinstance(part, int):
            # Runbook steps are numbered from 1, as the run messages and the sentences about them number them.
            out += f"[{part + 1}]" if previous == "steps" else f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
        previous = part
    return out


def _message(error: Any, place: _Place) -> str:
    kind, ctx, model = error["type"], error.get("ctx", {}), place.owner
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        key = error["loc"][-1]
        valid = sorted(model.model_fields) if model else []
        hint = suggest(str(key), valid)
        did_you_mean = f"; did you mean `{hint}`?" if hint else ""
        return f"unknown key{did_you_mean} (valid: {', '.join(valid)})" if valid else "unknown key"
    comparisons = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in comparisons:
        bound = next(iter(ctx.values()))
        return f"must be {comparisons[kind]} {bound:g}" if isinstance(bound, float) else f"must be {comparisons[kind]} {bound}"
    if kind == "union_tag_invalid":
        # A union of the kinds a catalog names knows every kind's tag (`AllKinds`); pydantic's list has its members'.
        every = next((m for m in typing.get_args(place.annotation) if isinstance(m, AllKinds)), None)
        valid = list(every.names) if every else [tag.strip() for tag in ctx["expected_tags"].replace(chr(39), "").split(",")]
        hint = suggest(str(ctx["tag"]), valid)
        what = str(ctx.get("discriminator", "type")).strip("'")
        did_you_mean = f"; did you mean `{hint}`?" if hint else ""
        return f"unknown {what} {ctx['tag']!r}{did_you_mean} (valid: {', '.join(valid)})"
    if kind == "union_tag_not_found":
        return f"needs a `{str(ctx.get('discriminator', 'type')).strip(chr(39))}`"
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}"
    if kind in _TYPE_ERRORS:
        return f"must be {_TYPE_ERRORS[kind]}"
    if kind == "string_too_short":
        least = ctx.get("min_length", 1)
        return "must not be empty" if least == 1 else f"must be at least {least} characters"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "too_short":
        least = ctx.get("min_length", 1)
        return f"needs at least {least} item{'s' if least != 1 else ''}"
    if kind == "too_long":
        return f"takes at most {ctx.get('max_length')} items"
    if kind == "enum":
        return f"must be one of {ctx.get('expected')}"
    if kind == "multiple_of":
        return f"must be a multiple of {ctx.get('multiple_of')}"
    if kind == "value_error":
        return str(ctx["error"])
    if kind == "string_pattern_mismatch":
        if ctx.get("pattern", "").startswith("^[a-z0-9]"):
            return f"{error['input']!r} has characters that are not allowed (lowercase letters, digits, - and _)"
        return f"{error['input']!r} is not in the expected form (it must match {ctx.get('pattern')})"
    message = str(error["msg"])
    return message[0].lower() + message[1:]


def _line_of(root: yaml.Node | None, parts: list[str | int]) -> int | None:
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for part in parts:
        if isinstance(node, yaml.MappingNode):
            match = next((value for key, value in node.value if key.value == str(part)), None)
            if match is None:
                # The key itself is the problem (unknown key): point at it; a missing key: at its parent.
                key_node = next((key for key, _ in node.value if key.value == str(part)), None)
                return key_node.start_mark.line + 1 if key_node else line
            key_line = next(key.start_mark.line + 1 for key, value in node.value if value is match)
            node, line = match, key_line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
