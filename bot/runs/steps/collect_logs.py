"""The `collect-logs` kind: the service's recent logs, uploaded as a file to the run's channel; reads only.

Not responsible for reading logs (`bot.executors`, capability `Logs`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import Field

from bot.executors.base import Effect, Logs
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
    refused,
    register,
)
from bot.views import human_size
from bot.views.words import plural


class CollectLogsStep(_ServiceStep):
    kind: Literal["collect-logs"]
    minutes: float = Field(default=60, gt=0, le=7 * 24 * 60, examples=[15, 0.5],
                           description="how far back, in minutes (fractions allowed; at most 7 days)")
    max_kb: int = Field(default=1024, ge=1, le=20 * 1024,
                        description="the newest KiB kept per container or pod (at most 20 MiB); the rest is cut")


async def _describe(deps: StepDeps, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    return f"Collect the last {args['minutes']:g} min of logs of {service}{targets.where(deps, service)} as a file here", ""


async def _perform(deps: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note) -> str:
    if not run.channel_id:
        raise refused("the run has no channel to upload the logs to")
    service, minutes, limit = step.service or "", float(step.args["minutes"]), int(step.args["max_kb"]) * 1024
    async with targets.capable(deps, service, Logs) as found:
        workload: Logs = found
        logs = await workload.logs(timedelta(minutes=minutes), max_bytes=limit)
    content = "\n".join(f"==> {name} <==\n{text}" for name, text in logs) or "(no log lines in the window)"
    stamp = deps.clock.now().strftime("%Y%m%d-%H%M%S")
    await deps.chat.upload(run.channel_id, filename=f"{service}-logs-{stamp}.txt",
                           title=f"Logs of {service}, last {minutes:g} min",
                           content=content, comment=f"Logs of `{service}` collected by runbook run #{run.id}.")
    return f"{plural(len(logs), 'log')}, {human_size(len(content.encode()))} uploaded"


KIND = register(StepKind("collect-logs", CollectLogsStep,
                         Traits(changes=False, undo=None, cut_short=Effect.UNTOUCHED, needs="target",
                                on_failure="continue", capability=(Logs,)),
                         _describe, _perform))
