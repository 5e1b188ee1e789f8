"""The service catalog: one YAML file validated into pydantic models.

Errors come back with their YAML path and line (`services.api.checks[1].timeout: must be > 0`);
secrets are never in the file, only the names of environment variables that hold them.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.actions.policy import ActionPolicies, ApprovalSettings
from bot.checks import Check
from bot.errors import UnknownRunbook, UnknownService
from bot.executors.demo import DemoTarget
from bot.executors.directory_backup import DirectoryBackupTarget
from bot.executors.docker_target import DockerTarget
from bot.executors.kubernetes_target import KubernetesTarget
from bot.executors.mysql_backup import MysqlBackupTarget
from bot.executors.postgres_backup import PostgresBackupTarget
from bot.executors.redis_backup import RedisBackupTarget
from bot.incidents.settings import IncidentSettings
from bot.runbooks.definitions import Maintenance, Runbook, RunbookName
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
    model_config = ConfigDict(extra="forbid", frozen=True)
    description: str = Field(default="", max_length=300)
    environment: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=40)
    owners: list[str] = Field(default_factory=list, description="Slack user IDs (U…/W…) or user-group IDs (S…)")
    checks: list[Check] = Field(default_factory=list)
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
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: Literal[1] = 1
    health: HealthSettings = HealthSettings()
    approvals: ApprovalSettings = ApprovalSettings()
    incidents: IncidentSettings = IncidentSettings()
    schedules: ScheduleSettings = ScheduleSettings()
    services: dict[ServiceName, Service] = Field(default_factory=dict)
    runbooks: dict[RunbookName, Runbook] = Field(default_factory=dict)

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
                    if named:
                        found.append((f"runbooks.{name}.steps[{index}]", named))
        return found


def suggest(given: str, valid: list[str]) -> str | None:
    matches = difflib.get_close_matches(given, valid, n=1, cutoff=0.6)
    if matches:
        return matches[0]
    # A short form of one name (`grace` for `grace_minutes`) is too short for a close match but still clear.
    extended = [name for name in valid if len(given) >= 3 and name.startswith(given)]
    return extended[0] if len(extended) == 1 else None


# --- loading ------------------------------------------------------------------------------------------


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
    try:
        catalog = Catalog.model_validate(data)
    except ValidationError as exc:
        problems = sorted((_problem(error, root) for error in exc.errors()), key=lambda p: p.line or 0)
        raise CatalogInvalid(source, problems) from None
    from bot.runbooks import validation

    # What one part says about another (a runbook's step and the service it names) is checked on the whole.
    found = [*_check_errors(catalog), *validation.errors(catalog)]
    if found:
        problems = [CatalogProblem(_format_path(list(f.path)), f.message, _line_of(root, list(f.path))) for f in found]
        raise CatalogInvalid(source, sorted(problems, key=lambda p: p.line or 0))
    return catalog


def _check_errors(catalog: Catalog) -> list[Any]:
    from bot.runbooks.validation import Finding

    return [Finding(("services", name, "checks", index), message)
            for name, service in catalog.services.items()
            for index, check in enumerate(service.checks)
            for message in check.catalog_errors(name, catalog)]


def catalog_warnings(catalog: Catalog) -> list[str]:
    """What `check-config` says without refusing the catalog."""
    from bot.runbooks import validation

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


def _problem(error: Any, root: yaml.Node | None) -> CatalogProblem:
    parts, model = _yaml_parts(error["loc"])
    message = _message(error, model)
    # A model-level validator reports at the mapping itself; its message may already start with a key.
    path = _format_path(parts)
    return CatalogProblem(path, message, _line_of(root, parts))


def _yaml_parts(loc: tuple[Any, ...]) -> tuple[list[str | int], type[BaseModel] | None]:
    """Drop pydantic's union-tag segments from a location, and find the model the last key belongs to."""
    parts: list[str | int] = []
    annotation: Any = Catalog
    owner: type[BaseModel] | None = Catalog
    for segment in loc:
        if segment == "[key]":  # pydantic's marker for a dict key that failed validation
            continue
        annotation, consumed_as_tag = _step(annotation, segment)
        if consumed_as_tag:
            owner = annotation if _is_model(annotation) else owner
            continue
        parts.append(segment)
        if _is_model(annotation):
            owner = annotation
    return parts, owner


def _step(annotation: Any, segment: Any) -> tuple[Any, bool]:
    annotation = _unwrap(annotation)
    if _is_model(annotation):
        field = annotation.model_fields.get(segment) if isinstance(segment, str) else None
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
        return None, False
    return None, False


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
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(error: Any, model: type[BaseModel] | None) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
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
        valid = [tag.strip() for tag in ctx["expected_tags"].replace(chr(39), "").split(",")]
        hint = suggest(str(ctx["tag"]), valid)
        what = str(ctx.get("discriminator", "type")).strip("'")
        did_you_mean = f"; did you mean `{hint}`?" if hint else ""
        return f"unknown {what} {ctx['tag']!r}{did_you_mean} (valid: {', '.join(valid)})"
    if kind == "union_tag_not_found":
        return f"needs a `{str(ctx.get('discriminator', 'type')).strip(chr(39))}`"
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}"
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
