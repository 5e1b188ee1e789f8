"""The `wait` kind: a pause between steps (for a cache to warm, a queue to drain); changes nothing.

Not responsible for the clock (`StepDeps.clock`, a fake one in tests).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from bot.executors.base import Effect
from bot.runs.models import ActionRun
from bot.runs.steps.base import Note, PlannedStep, StepDeps, StepKind, Template, Traits, UndoBook, _Step, register


class WaitStep(_Step):
    kind: Literal["wait"]
    seconds: float | Template = Field(description="how long to pause")


async def _describe(deps: StepDeps, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    return f"Wait {float(args['seconds']):g} s", ""


async def _perform(deps: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note) -> str:
    await deps.clock.sleep(float(step.args["seconds"]))
    return "done"


KIND = register(StepKind("wait", WaitStep, Traits(changes=False, undo=None, cut_short=Effect.UNTOUCHED),
                         _describe, _perform))
