"""The `scale` kind: set the number of replicas; undone by setting back the count it had.

Not responsible for how a target scales (`bot.executors`, capabilities `Scales` and `StartsStops`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from bot.executors.base import Effect, RecordingProgress, Scales
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
    probe,
    register,
)


class ScaleStep(_ServiceStep):
    kind: Literal["scale"]
    replicas: int | Template = Field(
        description="how many replicas (0 or more, or an integer parameter). Kubernetes: the deployment's replicas. "
                    "Docker has no replicas: 0 stops all of the service's containers and their count starts them all "
                    "again; any other number is refused", examples=[3, "{{ params.replicas }}"])


async def running_now(deps: StepDeps, service: str) -> int:
    async with targets.capable(deps, service, Scales) as found:
        workload: Scales = found
        return await workload.replicas()


async def _describe(deps: StepDeps, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    looked = await probe(lambda: running_now(deps, service or ""), "{} running now")
    return f"Scale {service} to {args['replicas']}{targets.where(deps, service)}", looked


async def _perform(deps: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note) -> str:
    async with targets.capable(deps, step.service or "", Scales) as found:
        workload: Scales = found
        await keep_counts(workload, book)
        return await workload.scale(int(step.args["replicas"]), RecordingProgress())


KIND = register(StepKind("scale", ScaleStep,
                         Traits(changes=True, undo="scale back to the replicas it had", cut_short=Effect.UNKNOWN,
                                needs="target", capability=(Scales,)),
                         _describe, _perform, undo=put_back, undo_words=count_words))
