"""The `check` kind: the service's health checks, tried up to `attempts` times; a gate that changes nothing.

Not responsible for the checks themselves (`bot.checks`, run through `StepDeps.check`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from bot.executors.base import Effect, ExecutorError
from bot.runs.models import ActionRun
from bot.runs.steps.base import (
    Note,
    PlannedStep,
    StepDeps,
    StepKind,
    Template,
    Traits,
    UndoBook,
    _ServiceStep,
    register,
)
from bot.views.words import plural, try_of

if TYPE_CHECKING:
    from bot.catalog import Service
    from bot.health import CheckResult
    from bot.runbooks.definitions import Runbook


class CheckStep(_ServiceStep):
    kind: Literal["check"]
    attempts: Annotated[int, Field(ge=1, le=100)] | Template = 1
    interval: float = Field(default=10, ge=0, le=600, description="seconds between attempts")


async def _describe(deps: StepDeps, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    tries = f", up to {args['attempts']} tries {args['interval']:g} s apart" if args["attempts"] > 1 else ""
    return f"Check the health of {service}{tries}", ""


async def _perform(deps: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note) -> str:
    service, attempts, interval = step.service or "", int(step.args["attempts"]), float(step.args["interval"])
    failing: list[CheckResult] = []
    for attempt in range(1, attempts + 1):
        checked = await deps.check(service)
        failing = [r for r in checked.results if r.status.failing]
        if not failing:
            return f"{plural(len(checked.results), 'check')} green" + (f" on try {attempt}" if attempt > 1 else "")
        if attempt < attempts:
            reasons = "; ".join(f"{r.check}: {r.reason}" for r in failing)
            await note(f"{try_of(attempt + 1, attempts)} in {interval:g} s (last: {reasons})")
            await deps.clock.sleep(interval)
    reasons = "; ".join(f"{r.check}: {r.reason}" for r in failing)
    tries = f" after {attempts} tries" if attempts > 1 else ""
    raise ExecutorError(f"{service} is not healthy{tries}: {reasons}", state=f"{service} fails its health checks",
                        effect=Effect.UNTOUCHED)  # checking changes nothing


def _validate(runbook: Runbook, service: Service, step: Any) -> list[tuple[str, str]]:
    if not service.checks:
        return [("service", f"services.{step.service} has no `checks:`, so there is nothing to gate on")]
    return []


KIND = register(StepKind("check", CheckStep, Traits(changes=False, undo=None, cut_short=Effect.UNTOUCHED),
                         _describe, _perform, validate=_validate))
