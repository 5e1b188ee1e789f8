"""What stop, start and scale share: counting what ran before a step, and putting that count back as its undo.

Not responsible for how a target scales or starts (`bot.executors`, capabilities `Scales` and `StartsStops`).
"""

from __future__ import annotations

from typing import Any

from bot.executors.base import Effect, ExecutorError, RecordingProgress, Scales, StartsStops
from bot.runs import targets
from bot.runs.steps.base import PlannedStep, StepDeps, UndoBook


async def keep_counts(workload: Scales | StartsStops, book: UndoBook) -> int:
    """Remember what ran before the step; returns the count. A target started and stopped as a whole (Docker)
    records whether it ran too, which its undo needs."""
    if isinstance(workload, StartsStops):
        count = await workload.running_count()
        await book.keep(running=await workload.is_running(), replicas=count)
        return count
    count = await workload.replicas()
    await book.keep(replicas=count)
    return count


async def put_back(deps: StepDeps, step: PlannedStep, data: dict[str, Any]) -> str:
    """Undo of stop, start and scale: the count before, again."""
    service, progress = step.service or "", RecordingProgress()
    async with targets.capable(deps, service, StartsStops, Scales) as workload:
        if not isinstance(workload, StartsStops):
            scales: Scales = workload
            return await scales.scale(int(data["replicas"]), progress)
        # Started and stopped as a whole: what ran before was all, none, or some — which some, opsbot does not guess.
        before, total = int(data.get("replicas") or 0), await workload.container_count()
        if 0 < before < total:
            raise ExecutorError(f"{before} of {total} containers ran before this step; opsbot does not guess "
                                "which to stop again", state=f"{service} is left as the step made it",
                                effect=Effect.UNTOUCHED)
        return await (workload.start(progress) if before else workload.stop(progress))


def count_words(step: PlannedStep, data: dict[str, Any]) -> str:
    return f"scale back to {data.get('replicas')}"
