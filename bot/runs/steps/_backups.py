"""Backups as the backup and restore kinds (and the built-in plans) take them: written, verified, recorded, expired.

Not responsible for how a backup is made (the `*_backup.py` executors) nor for when (schedules, plans).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot.executors.base import Artifact, Backups, ExecutorError
from bot.runs import targets
from bot.runs.models import ActionKind, BackupLabel, BackupRecord
from bot.runs.steps.base import StepDeps


async def take_backup(deps: StepDeps, service: str, run_id: int | None, backups: Backups, progress: Any,
                      label: BackupLabel) -> BackupRecord:
    """Write and verify a backup of `service`, and record it (as the run's) so it can be listed and restored."""
    artifact = await backups.backup(progress, label=label.value)
    kind = targets.backup_target(deps, service, ActionKind.BACKUP).type
    record = BackupRecord(service=service, kind=kind, path=artifact.path, size=artifact.size, sha256=artifact.sha256,
                          created_at=artifact.created_at, label=label, verified_at=deps.clock.now(), run_id=run_id)
    return replace(record, id=await deps.store.add_backup(record))


def artifact_of(record: BackupRecord) -> Artifact:
    return Artifact(path=record.path, size=record.size, sha256=record.sha256, created_at=record.created_at)


def retention_title(deps: StepDeps, service: str) -> str:
    target = targets.backup_target(deps, service, ActionKind.BACKUP)
    return f"Apply retention ({target.retention_days} days, keep at least {target.keep_min})"


async def apply_retention(deps: StepDeps, service: str, backups: Backups) -> str:
    """Delete the backups past the service's retention (keeping its newest `keep_min`); what happened, in words."""
    from bot.executors.postgres_backup import expired  # the postgres module holds the shared rule; its client is lazy

    target = targets.backup_target(deps, service, ActionKind.BACKUP)
    records = {str(r.path): r for r in await deps.store.backups(service, limit=1000)}
    artifacts = [artifact_of(r) for r in records.values()]
    doomed = expired(artifacts, deps.clock.now(), target.retention_days, target.keep_min)
    removed, problems = 0, []
    for artifact in doomed:
        try:
            await backups.delete(artifact)
        except ExecutorError as exc:
            # The new backup is written and verified; an old file that will not go is worth a word, not a failure.
            problems.append(f"{artifact.path.name}: {exc}")
            continue
        await deps.store.mark_backup_deleted(records[str(artifact.path)].id or 0, deps.clock.now())
        removed += 1
    return f"{removed} removed, {len(artifacts) - removed} kept" + (f"; could not remove {'; '.join(problems)}"
                                                                   if problems else "")
