"""The `deploy` kind: run another image; undone by deploying the image it ran before.

Not responsible for how a target changes image (`bot.executors`, capability `Deploys`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from bot.executors.base import Deploys, Effect, RecordingProgress
from bot.runs import targets
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
    probe,
    register,
)


class DeployStep(_ServiceStep):
    kind: Literal["deploy"]
    image: Template = Field(description="a tag of the image the service runs (`1.4.2`), or a full image reference "
                                        "(`registry/app:1.4.2`); the image is pulled only if the host does not have it",
                            examples=["{{ params.tag }}", "1.4.2"])


async def current_image(deps: StepDeps, service: str) -> str:
    async with targets.capable(deps, service, Deploys) as found:
        workload: Deploys = found
        return await workload.current_image()


async def _describe(deps: StepDeps, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    looked = await probe(lambda: current_image(deps, service or ""), "runs {} now")
    return f"Deploy {args['image']} to {service}{targets.where(deps, service)}", looked


async def _perform(deps: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note) -> str:
    async with targets.capable(deps, step.service or "", Deploys) as found:
        workload: Deploys = found
        await book.keep(image=await workload.current_image())
        return await workload.deploy(str(step.args["image"]), RecordingProgress())


async def deploy_again(deps: StepDeps, step: PlannedStep, data: dict[str, Any]) -> str:
    """Undo of a deploy or a rollback: the image it ran before, deployed again."""
    async with targets.capable(deps, step.service or "", Deploys) as found:
        workload: Deploys = found
        return await workload.deploy(str(data["image"]), RecordingProgress())


def again_words(step: PlannedStep, data: dict[str, Any]) -> str:
    return f"deploy {data.get('image')} again"


KIND = register(StepKind("deploy", DeployStep,
                         Traits(changes=True, undo="deploy the image it ran before", cut_short=Effect.UNKNOWN,
                                needs="target", capability=(Deploys,)),
                         _describe, _perform, undo=deploy_again, undo_words=again_words))
