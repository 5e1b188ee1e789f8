"""The `start` kind: start the service (its containers, or `replicas` of it, 1 by default); undone by putting
back what ran.

Not responsible for how a target starts (`bot.executors`, capabilities `StartsStops` or `Scales`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from bot.executors.base import Effect, RecordingProgress, Scales, StartsStops
from bot.runs import targets
from bot.runs.models import ActionRun
from bot.runs.steps._counts import count_words, keep_counts, put_back
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
from bot.views.words import plural


class StartStep(_ServiceStep):
    kind: Literal["start"]
    replicas: int | Template | None = Field(default=None, description="Kubernetes: how many to start (default 1)")


async def _describe(deps: StepDeps, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    count = f" with {plural(int(args['replicas']), 'replica')}" if args.get("replicas") else ""
    return f"Start {service}{count}{targets.where(deps, service)}", ""


async def _perform(deps: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note) -> str:
    async with targets.capable(deps, step.service or "", StartsStops, Scales) as workload:
        current = await keep_counts(workload, book)
        if isinstance(workload, StartsStops):
            return await workload.start(RecordingProgress())
        if current > 0:
            return f"already running {plural(current, 'replica')}"
        scales: Scales = workload
        return await scales.scale(int(step.args.get("replicas") or 1), RecordingProgress())


def _words(step: PlannedStep, data: dict[str, Any]) -> str:
    return "stop it again" if "running" in data else count_words(step, data)


KIND = register(StepKind("start", StartStep,
                         Traits(changes=True, undo="stop it again", cut_short=Effect.UNKNOWN, needs="target",
                                capability=(StartsStops, Scales)),
                         _describe, _perform, undo=put_back, undo_words=_words))
