"""Step kinds: each a module here that registers itself (`base.StepKind`); this facade plans, runs and undoes a
step through the registry, for the engine.

Not responsible for order, retries, timeouts or state (`bot.runs.engine`). Adding a kind: one module beside these
(its catalog model, traits, plan line, run and undo) and its tests; the registry finds it by its file the first time
its kind is asked for.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from bot.executors.base import Effect, ExecutorError
from bot.runs.models import ActionRun
from bot.runs.steps._backups import artifact_of, take_backup
from bot.runs.steps.base import (
    QUIET,
    REGISTRY,
    UNCHANGED,
    Note,
    PlannedStep,
    StepDeps,
    StepKind,
    Traits,
    UndoBook,
    Value,
    substitute,
)
from bot.views import escape

__all__ = ["REGISTRY", "TRAITS", "UNCHANGED", "PlannedStep", "StepKind", "Traits", "UndoBook", "artifact_of",
           "can_undo", "perform", "plan", "plan_builtin", "take_backup", "traits", "traits_of", "undo", "undo_title"]


class _Traits(Mapping[str, Traits]):
    """Each registered kind's traits, read-only and live (a kind registered later shows up)."""

    def __getitem__(self, kind: str) -> Traits:
        return REGISTRY[kind].traits

    def __iter__(self) -> Iterator[str]:
        return iter(REGISTRY)

    def __len__(self) -> int:
        return len(REGISTRY)


TRAITS: Mapping[str, Traits] = _Traits()


def traits(kind: str) -> Traits:
    return REGISTRY[kind].traits


def traits_of(step: PlannedStep) -> Traits:
    """One planned step's traits (its kind's, or what its arguments make them)."""
    return REGISTRY[step.kind].traits_for(step.args)


async def plan(ctx: StepDeps, spec: Any, values: Mapping[str, Value]) -> PlannedStep:
    """Resolve one catalog step against the parameter values; probes only read."""
    kind = REGISTRY[spec.kind]
    args = {name: getattr(spec, name) for name in kind.arg_names}
    if kind.escape_values:  # values go into a message: Slack's control characters are escaped, the catalog's kept
        values = {key: escape(str(value)) for key, value in values.items()}
    args = substitute(args, values)
    service = getattr(spec, "service", None)
    title, probe = await kind.describe(ctx, service, args)
    traits = kind.traits_for(args)
    return PlannedStep(kind=kind.name, service=service, args=args, title=spec.name or title, undo=traits.undo,
                       on_failure=spec.on_failure or traits.on_failure, timeout=spec.timeout,
                       retries=spec.retries, probe=probe)


async def plan_builtin(ctx: StepDeps, kind: str, service: str, args: Mapping[str, Any]) -> PlannedStep:
    """A step no catalog runbook holds (a built-in plan's: restart, rollback, backup, retention, restore, check),
    checked by its kind's catalog model like any other; `args` may set name, timeout, retries and on_failure too."""
    model = REGISTRY[kind].args
    given = {"kind": kind, **({"service": service} if "service" in model.model_fields else {}), **args}
    return await plan(ctx, model.model_validate(given), {})


async def perform(ctx: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note = QUIET) -> str:
    """Run one step once; returns its short result. Raises ExecutorError (with the state left) when it fails.
    `note` shows how a long step is getting on (a health gate's "try 2 of 3") before it ends."""
    return await REGISTRY[step.kind].perform(ctx, run, step, book, note)


async def undo(ctx: StepDeps, step: PlannedStep, data: dict[str, Any]) -> str:
    """Put back what `data` (captured before the step changed anything) says was there."""
    reverse = REGISTRY[step.kind].undo
    if reverse is None:
        raise ExecutorError(f"`{step.kind}` has no undo", state="its change stays", effect=Effect.UNTOUCHED)
    return await reverse(ctx, step, data)


def can_undo(step: PlannedStep, data: dict[str, Any] | None) -> bool:
    """Whether there is something to put back: an undo exists and what it needs was captured in time."""
    if step.undo is None or not data:
        return False
    return REGISTRY[step.kind].can_undo(step, data)


def undo_title(step: PlannedStep, data: dict[str, Any]) -> str:
    words = REGISTRY[step.kind].undo_words
    what = words(step, data) if words is not None else step.undo or "undo"
    return f"Undo “{step.title}”: {what}"
