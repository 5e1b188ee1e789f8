"""The `stop` kind: stop the service (all its containers, or scale to 0); undone by putting back what ran.

Not responsible for how a target stops (`bot.executors`, capabilities `StartsStops` or `Scales`).
"""

from __future__ import annotations

from typing import Any, Literal

from bot.executors.base import Effect, RecordingProgress, Scales, StartsStops
from bot.runs import targets
from bot.runs.models import ActionRun
from bot.runs.steps._counts import count_words, keep_counts, put_back
from bot.runs.steps.base import Note, PlannedStep, StepDeps, StepKind, Traits, UndoBook, _ServiceStep, register


class StopStep(_ServiceStep):
    kind: Literal["stop"]


async def _describe(deps: StepDeps, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    return f"Stop {service}{targets.where(deps, service)}", ""


async def _perform(deps: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note) -> str:
    async with targets.capable(deps, step.service or "", StartsStops, Scales) as workload:
        await keep_counts(workload, book)
        if isinstance(workload, StartsStops):
            return await workload.stop(RecordingProgress())
        scales: Scales = workload
        return await scales.scale(0, RecordingProgress())


def _words(step: PlannedStep, data: dict[str, Any]) -> str:
    return "start it again" if "running" in data else count_words(step, data)


KIND = register(StepKind("stop", StopStep,
                         Traits(changes=True, undo="start it again", cut_short=Effect.UNKNOWN, needs="target",
                                capability=(StartsStops, Scales)),
                         _describe, _perform, undo=put_back, undo_words=_words))
