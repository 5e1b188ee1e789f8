"""The `check` kind: a health gate on the service's checks (all of them, or the ones it names), tried up to
`attempts` times; it changes nothing.

Not responsible for the checks themselves (`bot.checks`, run through `StepDeps.check`) nor for their grading.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, Field

from bot.checks.base import Status
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
    refused,
    register,
)
from bot.views.words import try_of

if TYPE_CHECKING:
    from bot.catalog import Service
    from bot.health import CheckResult
    from bot.runbooks.definitions import Runbook

NO_CHECKS = "no health checks in the catalog"


def _distinct(names: list[str]) -> list[str]:
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"names {', '.join(twice)} more than once")
    return names


class CheckStep(_ServiceStep):
    kind: Literal["check"]
    checks: Annotated[list[Annotated[str, Field(min_length=1)]], AfterValidator(_distinct)] | None = Field(
        default=None, min_length=1,
        description="the names of the service's checks this gate waits on (a check's `name`, or its default label "
                    "such as `http /health` or `redis`); not given: every check of the service")
    attempts: Annotated[int, Field(ge=1, le=100)] | Template = Field(
        default=1, description="tries before the gate fails (1 to 100, or a parameter)")
    interval: float = Field(default=10, ge=0, le=600, description="seconds between attempts")
    warning_passes: bool = Field(
        default=False, description="false: a check at warning fails the gate like a critical one; true: only "
                                   "critical and errors fail it")


def _gated(step: PlannedStep | dict[str, Any]) -> tuple[str, ...]:
    args = step.args if isinstance(step, PlannedStep) else step
    return tuple(args.get("checks") or ())  # a plan stored before gates chose checks has no `checks`


def _labels(service: Service | None) -> list[str]:
    return [check.label for check in service.checks] if service is not None else []


async def _describe(deps: StepDeps, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    tries = f", up to {args['attempts']} tries {args['interval']:g} s apart" if args["attempts"] > 1 else ""
    chosen = _gated(args)
    what = f"{', '.join(chosen)} of {service}" if chosen else f"the health of {service}"
    labels = _labels(deps.catalog.services.get(service or ""))
    if not labels:
        return f"Check {what}{tries}", NO_CHECKS
    warning = "a warning passes" if args.get("warning_passes") else "a warning fails it"
    return f"Check {what}{tries}", f"waits on {', '.join(chosen or labels)}; {warning}"


def _passes(result: CheckResult, warning_passes: bool) -> bool:
    return result.status is Status.OK or (warning_passes and result.status is Status.WARNING)


def _shown(results: Sequence[CheckResult]) -> str:
    """Each gated check with what it found: `queue: warning, 12 items (limit 10)`."""
    return "; ".join(f"{r.check}: {r.status.value}, {r.reason}" if r.reason else f"{r.check}: {r.status.value}"
                     for r in results)


async def _perform(deps: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note) -> str:
    service, attempts, interval = step.service or "", int(step.args["attempts"]), float(step.args["interval"])
    warning_passes, chosen = bool(step.args.get("warning_passes", False)), _gated(step)
    labels = _labels(deps.catalog.services.get(service))
    gone = [name for name in chosen if name not in labels]
    if gone:  # the catalog changed since the plan was made
        raise refused(f"{service} has no check named {', '.join(gone)} any more (its checks: "
                      f"{', '.join(labels) or 'none'})")
    if not labels:
        return NO_CHECKS  # a built-in plan made before the checks were removed, or a migrated one: nothing to wait on
    failing: list[CheckResult] = []
    for attempt in range(1, attempts + 1):
        checked = await deps.check(service, chosen)
        failing = [r for r in checked.results if not _passes(r, warning_passes)]
        if not failing:
            return _shown(checked.results) + (f" (on try {attempt})" if attempt > 1 else "")
        if attempt < attempts:
            await note(f"{try_of(attempt + 1, attempts)} in {interval:g} s (last: {_shown(failing)})")
            await deps.clock.sleep(interval)
    tries = f" after {attempts} tries" if attempts > 1 else ""
    raise ExecutorError(f"{service} is not healthy{tries}: {_shown(failing)}", state=f"{service} fails its health checks",
                        effect=Effect.UNTOUCHED)  # checking changes nothing


def _validate(runbook: Runbook, service: Service, step: Any) -> list[tuple[str, str]]:
    labels = _labels(service)
    if not labels:
        return [("service", f"services.{step.service} has no `checks:`, so there is nothing to gate on")]
    found = []
    for name in step.checks or ():
        if name not in labels:
            close = difflib.get_close_matches(name, labels, n=1)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            valid = ", ".join(labels)
            found.append(("checks", f"services.{step.service} has no check named {name!r}{hint} (its checks: {valid})"))
    return found


KIND = register(StepKind("check", CheckStep, Traits(changes=False, undo=None, cut_short=Effect.UNTOUCHED),
                         _describe, _perform, validate=_validate))
