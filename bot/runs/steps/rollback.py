"""The `rollback` kind: back to the previous revision (or `to`); undone by deploying the image it ran before.

Not responsible for how a target picks a revision (`bot.executors`, capabilities `RollsBack` and `Deploys`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from bot.executors.base import Effect, RecordingProgress, RollsBack
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
from bot.runs.steps.deploy import again_words, current_image, deploy_again


class RollbackStep(_ServiceStep):
    kind: Literal["rollback"]
    to: Template | None = Field(default=None, description="a revision or tag; None: the previous one")


async def _describe(deps: StepDeps, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    looked = await probe(lambda: current_image(deps, service or ""), "runs {} now")
    return f"Roll {service} back to {args['to'] or 'the previous image'}{targets.where(deps, service)}", looked


async def _perform(deps: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note) -> str:
    async with targets.capable(deps, step.service or "", RollsBack) as found:
        workload: RollsBack = found
        await book.keep(image=await workload.current_image())
        to = step.args.get("to")
        return await workload.rollback(None if to is None else str(to), RecordingProgress())


KIND = register(StepKind("rollback", RollbackStep,
                         Traits(changes=True, undo="deploy the image it ran before", cut_short=Effect.UNKNOWN,
                                needs="target", capability=(RollsBack,)),
                         _describe, _perform, undo=deploy_again, undo_words=again_words))
