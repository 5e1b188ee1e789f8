"""The `backup` kind: a verified backup of the service, recorded as the run's; nothing to undo.

Not responsible for how a backup is written (`bot.executors`, the service's `backup:`) nor for retention (`retention`).
"""

from __future__ import annotations

from typing import Any, Literal

from bot.executors.base import Effect, RecordingProgress
from bot.runs import targets
from bot.runs.models import SCHEDULER, ActionKind, ActionRun, BackupLabel
from bot.runs.steps._backups import take_backup
from bot.runs.steps.base import Note, PlannedStep, StepDeps, StepKind, Traits, UndoBook, _ServiceStep, register
from bot.views import human_size


class BackupStep(_ServiceStep):
    kind: Literal["backup"]


async def _describe(deps: StepDeps, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    return f"Back up {service} (verified)", ""


async def _perform(deps: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note) -> str:
    service = step.service or ""
    # A run the schedule started keeps a scheduled backup, whatever its plan: retention and views tell them apart.
    label = BackupLabel.SCHEDULED if run.requested_by == SCHEDULER else BackupLabel.MANUAL
    record = await take_backup(deps, service, run.id, targets.backups_for(deps, service, ActionKind.BACKUP),
                               RecordingProgress(), label)
    return f"backup {record.id} written and verified, {human_size(record.size)}"


KIND = register(StepKind("backup", BackupStep,
                         Traits(changes=False, undo=None, cut_short=Effect.UNTOUCHED, needs="backup"),
                         _describe, _perform))
