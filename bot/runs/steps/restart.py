"""The `restart` kind: restart the service's workload and wait until it runs; no undo (it was running before).

Not responsible for how a target restarts (`bot.executors`, capability `Restarts`).
"""

from __future__ import annotations

from typing import Any, Literal

from bot.executors.base import Effect, RecordingProgress, Restarts
from bot.runs import targets
from bot.runs.models import ActionRun
from bot.runs.steps.base import Note, PlannedStep, StepDeps, StepKind, Traits, UndoBook, _ServiceStep, register


class RestartStep(_ServiceStep):
    kind: Literal["restart"]


async def _describe(deps: StepDeps, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    return f"Restart {service}{targets.where(deps, service)}", ""


async def _perform(deps: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note) -> str:
    async with targets.capable(deps, step.service or "", Restarts) as found:
        workload: Restarts = found
        return await workload.restart(RecordingProgress())


KIND = register(StepKind("restart", RestartStep, Traits(changes=True, undo=None, cut_short=Effect.UNKNOWN,
                                                        needs="target", capability=(Restarts,)),
                         _describe, _perform))
