"""The `retention` kind: delete the service's backups past its `retention_days`, keeping its newest `keep_min`.

Not responsible for which backups a rule expires (`bot.executors.postgres_backup.expired`) nor for writing them.
"""

from __future__ import annotations

from typing import Any, Literal

from bot.executors.base import Effect
from bot.runs import targets
from bot.runs.models import ActionKind, ActionRun
from bot.runs.steps._backups import apply_retention, retention_title
from bot.runs.steps.base import Note, PlannedStep, StepDeps, StepKind, Traits, UndoBook, _ServiceStep, register


class RetentionStep(_ServiceStep):
    kind: Literal["retention"]


async def _describe(deps: StepDeps, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    return retention_title(deps, service or ""), ""


async def _perform(deps: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note) -> str:
    service = step.service or ""
    return await apply_retention(deps, service, targets.backups_for(deps, service, ActionKind.BACKUP))


# Deleting expired backups changes no service; an old file that will not go is a word in the result, not a failure.
KIND = register(StepKind("retention", RetentionStep,
                         Traits(changes=False, undo=None, cut_short=Effect.UNTOUCHED, needs="backup",
                                on_failure="continue"),
                         _describe, _perform))
