"""The `restore` kind: a safety backup first, then the chosen backup over the live target; undone by restoring the
safety backup.

Not responsible for how a restore runs or what it leaves on failure (`bot.executors`, the service's `backup:`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from bot.executors.base import Effect, ExecutorError, RecordingProgress
from bot.ids import parse_id
from bot.runs import targets
from bot.runs.models import ActionKind, ActionRun, BackupLabel
from bot.runs.steps._backups import artifact_of, take_backup
from bot.runs.steps.base import (
    PARAM_REFERENCE,
    Note,
    PlannedStep,
    StepDeps,
    StepKind,
    Template,
    Traits,
    UndoBook,
    _ServiceStep,
    refused,
    register,
)
from bot.views import human_size

if TYPE_CHECKING:
    from bot.catalog import Service
    from bot.runbooks.definitions import Runbook


class RestoreStep(_ServiceStep):
    kind: Literal["restore"]
    backup: int | Template = Field(description="a backup id, `latest`, or {{ params.<a backup parameter> }}")


async def _describe(deps: StepDeps, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    backup_id = parse_id(str(args["backup"]))
    record = await deps.store.get_backup(backup_id) if backup_id is not None else None
    what = (f"backup {record.id} of {record.created_at:%Y-%m-%d %H:%M} UTC, {human_size(record.size)}" if record
            else f"backup {args['backup']}")
    return f"Restore {service} from {what} (a safety backup is taken first)", ""


async def _perform(deps: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note) -> str:
    service, backup_id, progress = step.service or "", int(step.args["backup"]), RecordingProgress()
    record = await deps.store.get_backup(backup_id)
    if record is None or record.service != service or record.deleted_at is not None:
        raise refused(f"backup {backup_id} of {service} is gone")
    backups = targets.backups_for(deps, service, ActionKind.RESTORE)
    safety = await take_backup(deps, service, run.id, backups, progress, BackupLabel.SAFETY)
    await book.keep(safety_backup=safety.id)
    try:
        summary = await backups.restore(artifact_of(record), progress)
    except ExecutorError as exc:
        raise ExecutorError(str(exc), state=f"{exc.state}; the state before is in safety backup {safety.id}",
                            effect=exc.effect) from exc
    return f"{summary} (safety backup {safety.id} first)"


async def _undo(deps: StepDeps, step: PlannedStep, data: dict[str, Any]) -> str:
    service = step.service or ""
    record = await deps.store.get_backup(int(data["safety_backup"]))
    if record is None:
        raise ExecutorError(f"safety backup {data['safety_backup']} is gone", state="the restored data stays",
                            effect=Effect.UNTOUCHED)
    backups = targets.backups_for(deps, service, ActionKind.RESTORE)
    return await backups.restore(artifact_of(record), RecordingProgress())


def _can_undo(step: PlannedStep, data: dict[str, Any]) -> bool:
    return "safety_backup" in data  # no safety backup taken: the restore never began


def _words(step: PlannedStep, data: dict[str, Any]) -> str:
    return f"restore safety backup {data.get('safety_backup')}"


def _validate(runbook: Runbook, service: Service, step: Any) -> list[tuple[str, str]]:
    found = []
    if service.backup is not None and service.backup.type == "redis":
        found.append(("kind", (f"services.{step.service} backs up Redis, which opsbot cannot restore "
                               "(Redis reads an RDB file only as it starts); restore it by hand")))
    if isinstance(step.backup, str) and step.backup != "latest":
        names = PARAM_REFERENCE.findall(step.backup)
        declared = runbook.parameters.get(names[0]) if len(names) == 1 else None
        if getattr(declared, "type", None) != "backup" or getattr(declared, "service", None) != step.service:
            found.append(("backup", (f"give a backup id, `latest`, or {{{{ params.<name> }}}} of a "
                                     f"parameter of type backup with service {step.service}")))
    return found


KIND = register(StepKind("restore", RestoreStep,
                         Traits(changes=True, undo="restore the safety backup taken first", cut_short=Effect.UNKNOWN,
                                needs="backup"),
                         _describe, _perform, undo=_undo, can_undo=_can_undo, undo_words=_words, validate=_validate))
