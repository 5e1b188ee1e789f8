"""The `recreate` kind: pull the image reference the service runs again and recreate its containers when that
reference now names another image (a patched build under the same tag); undone by recreating onto the image before.

Not responsible for pulling or recreating (`bot.executors`, capability `Recreates`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from bot.executors.base import Effect, RecordingProgress, Recreates
from bot.runs import targets
from bot.runs.models import ActionRun
from bot.runs.steps.base import (
    Note,
    PlannedStep,
    StepDeps,
    StepKind,
    Traits,
    UndoBook,
    _ServiceStep,
    probe,
    register,
)


class RecreateStep(_ServiceStep):
    """Pull the image reference the service's containers run again (the same tag) and recreate those whose image
    differs from what it names now: the patch path, where a deploy of the running tag does nothing. Docker targets
    only. Undo: recreate them onto the image they ran before."""

    kind: Literal["recreate"]
    pull_timeout: float = Field(
        default=300, gt=0, le=3600,
        description="seconds the pull may take (at most an hour); a pull that takes longer fails the step with the "
                    "containers untouched. A registry that refuses (or cannot be reached) fails it the same way, "
                    "unless the host's own copy of the reference is already newer than what runs (built or loaded "
                    "there), which is then used")


async def _running(deps: StepDeps, service: str) -> str:
    async with targets.capable(deps, service, Recreates) as found:
        workload: Recreates = found
        return f"{await workload.current_image()} (image {(await workload.image_id()).removeprefix('sha256:')[:12]})"


async def _describe(deps: StepDeps, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    looked = await probe(lambda: _running(deps, service or ""), "runs {} now")
    return (f"Pull the image {service} runs again and recreate its containers if it changed"
            f"{targets.where(deps, service)}"), looked


async def _perform(deps: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note) -> str:
    async with targets.capable(deps, step.service or "", Recreates) as found:
        workload: Recreates = found
        await book.keep(image_id=await workload.image_id())
        return await workload.recreate(RecordingProgress(), pull_timeout=float(step.args["pull_timeout"]))


async def _recreate_back(deps: StepDeps, step: PlannedStep, data: dict[str, Any]) -> str:
    """The undo: the containers recreated onto the image they ran before (the tag has moved on, so by its id)."""
    async with targets.capable(deps, step.service or "", Recreates) as found:
        workload: Recreates = found
        return await workload.recreate(RecordingProgress(), image_id=str(data["image_id"]))


def _back_words(step: PlannedStep, data: dict[str, Any]) -> str:
    return f"recreate onto image {str(data.get('image_id')).removeprefix('sha256:')[:12]} again"


KIND = register(StepKind("recreate", RecreateStep,
                         Traits(changes=True, undo="recreate onto the image it ran before", cut_short=Effect.UNKNOWN,
                                needs="target", capability=(Recreates,)),
                         _describe, _perform, undo=_recreate_back, undo_words=_back_words))
