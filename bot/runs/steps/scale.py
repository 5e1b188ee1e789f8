"""The `scale` kind: set the number of replicas; undone by scaling back to the count it had.

Not responsible for how a target scales (`bot.executors`, capabilities `Scales` and `PreviewsScale`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from bot.executors.base import Effect, PreviewsScale, RecordingProgress, Scales
from bot.runs import targets
from bot.runs.models import ActionRun
from bot.runs.steps._counts import count_words, keep_counts
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
    replicas: Annotated[int, Field(ge=0)] | Template = Field(
        description="how many replicas (0 or more, or an integer parameter). Kubernetes: the deployment's replicas. "
                    "Docker: 0 stops all of the service's containers and keeps them, so scaling back starts them "
                    "again. A Compose service (a target whose `labels` name both `com.docker.compose.project` and "
                    "`com.docker.compose.service`) goes to any count: below the number running, the highest-numbered "
                    "ones are stopped and removed; above it, stopped ones are started and then copies of the "
                    "lowest-numbered container are created (same image, settings, labels and networks, named "
                    "`<project>-<service>-<n>` as Compose does; refused if it publishes a fixed host port). Other "
                    "Docker targets go to 0 or to their number of containers (starting them all); any other count "
                    "is refused. The undo scales back to the number running before",
        examples=[3, "{{ params.replicas }}"])


async def running_now(deps: StepDeps, service: str) -> int:
    async with targets.capable(deps, service, Scales) as found:
        workload: Scales = found
        return await workload.replicas()


async def _preview(deps: StepDeps, service: str, replicas: int) -> str:
    """What scaling would change, where the target can say (which containers); else how many run now."""
    async with targets.capable(deps, service, Scales) as found:
        if isinstance(found, PreviewsScale):
            return await found.scale_preview(replicas)
        workload: Scales = found
        return f"{await workload.replicas()} running now"


async def _describe(deps: StepDeps, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    replicas = args["replicas"]
    if isinstance(replicas, int) or str(replicas).isdigit():
        looked = await probe(lambda: _preview(deps, service or "", int(replicas)), "{}")
    else:
        looked = await probe(lambda: running_now(deps, service or ""), "{} running now")
    return f"Scale {service} to {replicas}{targets.where(deps, service)}", looked


async def _perform(deps: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note) -> str:
    async with targets.capable(deps, step.service or "", Scales) as found:
        workload: Scales = found
        await keep_counts(workload, book)
        return await workload.scale(int(step.args["replicas"]), RecordingProgress())


async def _scale_back(deps: StepDeps, step: PlannedStep, data: dict[str, Any]) -> str:
    """The undo: the count running before, again (a Docker target refuses a count other than none or all)."""
    async with targets.capable(deps, step.service or "", Scales) as found:
        workload: Scales = found
        return await workload.scale(int(data["replicas"]), RecordingProgress())


KIND = register(StepKind("scale", ScaleStep,
                         Traits(changes=True, undo="scale back to the replicas it had", cut_short=Effect.UNKNOWN,
                                needs="target", capability=(Scales,)),
                         _describe, _perform, undo=_scale_back, undo_words=count_words))
