"""The step-kind contract: the catalog step base models, a kind's traits, `StepKind`, the registry, and what every
kind shares (`StepDeps`, `PlannedStep`, `UndoBook`, the `{{ params.x }}` template).

Not responsible for any one kind (each is a module beside this one) nor for order, retries or state (`bot.runs.engine`).
Imports nothing that reaches the catalog: `bot.catalog_kinds` builds a catalog's step union from this registry, with the
kinds that catalog names.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from bot.executors.base import DeployHistory, Effect, ExecutorError
from bot.runs.models import ActionRun, BackupRecord
from bot.runs.models import PlannedStep as PlannedStep  # the kinds and the facade take it from here

if TYPE_CHECKING:
    from datetime import datetime

    import aiohttp

    from bot.catalog import Catalog, Service
    from bot.clock import Clock
    from bot.executors.demo import DemoWorkloads
    from bot.health import HealthRun
    from bot.runbooks.definitions import Runbook
    from bot.runs.wakeups import Wakeups
    from bot.views import Message

UNCHANGED = "unchanged: this step changed nothing"
OnFailure = Literal["stop", "continue", "rollback"]
# The one template form a step argument may hold: a declared parameter's value, substituted as data.
PARAM_REFERENCE = re.compile(r"\{\{\s*params\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")
MENTION_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")
Value = str | int


def _template(value: str) -> str:
    """Only `{{ params.name }}` may appear: no expressions, filters or statements reach a step."""
    rest = PARAM_REFERENCE.sub("", value)
    if "{{" in rest or "{%" in rest or "}}" in rest:
        raise ValueError(f"{value!r}: the only template form is {{{{ params.<name> }}}}")
    return value


Template = Annotated[str, AfterValidator(_template)]


def substitute(value: Any, values: Mapping[str, Value]) -> Any:
    """A step argument with `{{ params.x }}` replaced: a reference alone keeps the value's type (a number stays one)."""
    if isinstance(value, str):
        whole = PARAM_REFERENCE.fullmatch(value.strip())
        if whole:
            return values[whole.group(1)]
        return PARAM_REFERENCE.sub(lambda m: str(values[m.group(1)]), value)
    if isinstance(value, dict):
        return {key: substitute(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, values) for item in value]
    return value


# --- the catalog's step models: what every step has; each kind's module adds its own fields and `kind` -----------


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: str  # each kind's model narrows it to `Literal["<its name>"]`, the union's discriminator
    name: str | None = Field(default=None, min_length=1, max_length=120, description="shown instead of the generated title")
    timeout: float = Field(default=600, gt=0, le=6 * 3600,
                           description="seconds one attempt may take (fractions allowed; at most 6 hours)")
    retries: int = Field(default=0, ge=0, le=5, description="further attempts after a failure (0 to 5)")
    on_failure: OnFailure | None = Field(
        default=None, description="what this step's failure does: stop the run, continue with the next step, or roll "
                                  "back the steps done (newest first); not given: the kind's own default, shown in "
                                  "the plan (rollback for a step that changes something)")


class _ServiceStep(_Step):
    service: str


_COMMON = frozenset({"kind", *_ServiceStep.model_fields})


# --- what kinds use instead of the whole Context -----------------------------------------------------------------


class BackupLedger(DeployHistory, Protocol):
    """The store, as the record of backups (and of images deployed, for Docker rollbacks)."""

    async def add_backup(self, record: BackupRecord) -> int: ...

    async def get_backup(self, backup_id: int) -> BackupRecord | None: ...

    async def backups(self, service: str | None = None, *, include_deleted: bool = False,
                      limit: int = 50) -> list[BackupRecord]: ...

    async def mark_backup_deleted(self, backup_id: int, at: datetime) -> None: ...


class Poster(Protocol):
    async def post(self, channel: str, message: Message, *, thread_ts: str | None = None,
                   key: str | None = None) -> str: ...

    async def upload(self, channel: str, *, filename: str, title: str, content: str, comment: str) -> None: ...


class StepDeps(Protocol):
    """The ports step kinds use; the bot's `Context` satisfies it, a test passes its own. Executors are found
    through `bot.runs.targets` from `catalog`, `store`, `clock`, `environ` and `demo_workloads`."""

    @property
    def catalog(self) -> Catalog: ...

    @property
    def store(self) -> BackupLedger: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def environ(self) -> Mapping[str, str]: ...

    @property
    def demo_workloads(self) -> DemoWorkloads | None: ...

    @property
    def chat(self) -> Poster: ...

    @property
    def http(self) -> aiohttp.ClientSession: ...

    @property
    def wakeups(self) -> Wakeups:
        """Wakes a step waiting on the store (a manual step's answer) when this replica takes the answer."""

    async def check(self, service: str, only: Collection[str] = ()) -> HealthRun:
        """Run the service's health checks once: those named in `only` (by label), or every one."""


async def _quiet(_: str) -> None:
    return None


Note = Callable[[str], Awaitable[None]]
QUIET: Note = _quiet


# --- a planned step and its undo data --------------------------------------------------------------------------


class UndoBook:
    """What a step's undo will need, stored before the step changes anything (and when it learns more)."""

    def __init__(self, data: dict[str, Any], save: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        self.data, self._save = data, save

    async def keep(self, **items: Any) -> None:
        # The first capture wins: a retry or a resumed run must not take the half-changed state for the old one.
        fresh = {key: value for key, value in items.items() if key not in self.data}
        if fresh:
            self.data.update(fresh)
            await self._save(dict(self.data))


# --- a kind ----------------------------------------------------------------------------------------------------

Needs = Literal["target", "backup", "maintenance", None]


@dataclass(frozen=True)
class Traits:
    changes: bool  # it changes the service (so a failure rolls back by default)
    undo: str | None  # what reverses it, in words; None: nothing can
    # What a step of this kind leaves when it is cut short (its timeout, a crash in opsbot): a kind that only
    # reads, or posts to Slack, leaves its target untouched; one that acts may have got anywhere.
    cut_short: Effect
    needs: Needs = None  # the service's catalog part it acts on
    on_failure: OnFailure = "rollback"
    # The executor capabilities (`bot.executors.base`) its target must offer, any one of them; () for none.
    capability: tuple[type, ...] = ()


Describe = Callable[["StepDeps", str | None, dict[str, Any]], Awaitable[tuple[str, str]]]
Perform = Callable[["StepDeps", ActionRun, PlannedStep, UndoBook, Note], Awaitable[str]]
Undo = Callable[["StepDeps", PlannedStep, dict[str, Any]], Awaitable[str]]
# Kind-specific catalog checks: (field, message) for each problem of `step` on `service`.
Validate = Callable[["Runbook", "Service", Any], list[tuple[str, str]]]


def _always(step: PlannedStep, data: dict[str, Any]) -> bool:
    return True


def _no_checks(runbook: Runbook, service: Service, step: Any) -> list[tuple[str, str]]:
    return []


@dataclass(frozen=True)
class StepKind:
    """One step kind: its catalog model, traits, plan line (read-only probes), run and undo."""

    name: str
    args: type[_Step]  # its catalog model, with `kind: Literal[name]`
    traits: Traits
    describe: Describe
    perform: Perform
    undo: Undo | None = None
    can_undo: Callable[[PlannedStep, dict[str, Any]], bool] = _always  # what the undo needs was captured
    undo_words: Callable[[PlannedStep, dict[str, Any]], str] | None = None  # None: `traits.undo`
    # The capabilities a step on this service needs, when they depend on its catalog entry (maintenance).
    capabilities: Callable[[Service], tuple[type, ...]] | None = None
    validate: Validate = _no_checks
    escape_values: bool = False  # its arguments are posted to Slack: values' control characters are escaped
    # The traits of one step, when its arguments change them (an `exec` with `read_only: true` changes nothing).
    step_traits: Callable[[Mapping[str, Any]], Traits] | None = None
    arg_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "arg_names", tuple(f for f in self.args.model_fields if f not in _COMMON))

    def traits_for(self, args: Mapping[str, Any]) -> Traits:
        """A step's traits: the kind's, unless its arguments decide them."""
        return self.step_traits(args) if self.step_traits is not None else self.traits

    def needs_capabilities(self, service: Service) -> tuple[type, ...]:
        return self.capabilities(service) if self.capabilities is not None else self.traits.capability


_REGISTRY: dict[str, StepKind] = {}
_PACKAGE = Path(__file__).parent


@functools.cache
def _module_kinds() -> tuple[str, ...]:
    """The kinds the modules beside this one hold (the kind `collect-logs` is `collect_logs.py`), unimported."""
    return tuple(found.name.replace("_", "-") for found in pkgutil.iter_modules([str(_PACKAGE)])
                 if found.name != "base" and not found.name.startswith("_"))


class _Registry(Mapping[str, StepKind]):
    """Every step kind by name. A kind's module is imported the first time its kind is asked for, so a catalog that
    never names `prune` never loads it; going through them all (the catalog's schema) loads every one, while
    `kind_names()` names them without a load. Kinds registered without a module of their own (tests) come after the
    modules' kinds."""

    def __getitem__(self, name: str) -> StepKind:
        if name not in _REGISTRY and name in _module_kinds():
            importlib.import_module(f"{__package__}.{name.replace('-', '_')}")
        return _REGISTRY[name]

    def __contains__(self, name: object) -> bool:
        return name in _REGISTRY or name in _module_kinds()

    def __iter__(self) -> Iterator[str]:
        for name in _module_kinds():
            self[name]
        return iter(kind_names())

    def __len__(self) -> int:
        return len(list(iter(self)))


REGISTRY: Mapping[str, StepKind] = _Registry()


def kind_names() -> tuple[str, ...]:
    """Every kind's name, in the registry's order, without importing any."""
    kinds = _module_kinds()
    return (*kinds, *(name for name in _REGISTRY if name not in kinds))


def loaded() -> Mapping[str, StepKind]:
    """The kinds imported so far (nothing is imported to answer)."""
    return MappingProxyType(_REGISTRY)


def register(kind: StepKind) -> StepKind:
    """Add a kind; its module calls this when imported. A name taken twice is a programming error."""
    if kind.name in _REGISTRY and _REGISTRY[kind.name] is not kind:
        raise ValueError(f"step kind {kind.name!r} is registered twice")
    _REGISTRY[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Remove a kind (tests that register a throwaway one)."""
    _REGISTRY.pop(name, None)


class StepSkipped(Exception):  # an ending of a step, not a failure
    """A person chose to skip the step (a `manual` step's Skip): it did nothing, it is marked skipped and the run
    goes on. The message says who and when."""


class StepCancelled(Exception):  # an ending of a step, not a failure
    """The step stopped before acting because Cancel was pressed while it waited for a person: the engine ends the
    run cancelled, as it does between steps. Raised only once the run's Cancel is stored."""


def refused(message: str) -> ExecutorError:
    """A step that did not start: nothing was touched."""
    return ExecutorError(message, state=UNCHANGED, effect=Effect.UNTOUCHED)


async def probe(read: Callable[[], Awaitable[Any]], shape: str) -> str:
    """A read-only look while planning; its failure is shown, not raised (the plan still stands)."""
    try:
        return "read-only look: " + shape.format(await read())
    except ExecutorError as exc:
        return f"read-only look failed: {exc}"
