"""Backup files a crash left behind, found by chores: `.partial` files of a backup cut short (removed), and verified
archives whose record was never written (the store went away, or the process died, between the rename and the insert:
recorded, so they are listed, restorable and pruned like any other).

Not responsible for writing backups (bot/executors/*_backup.py name, write and rename them) nor for deciding that a
run is dead (`actions.recover`, which runs just before this chore).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from bot.executors.base import DeployHistory
from bot.executors.postgres_backup import _safe_part, file_digest
from bot.runs import targets
from bot.runs.models import ActionKind, ActionState, BackupLabel, BackupRecord
from bot.runs.ports import BackupLedger, RunStore
from bot.runs.targets import TargetDeps

log = logging.getLogger(__name__)


class _Store(RunStore, BackupLedger, DeployHistory, Protocol):
    """The live runs (whose directories are left alone) and the backup ledger."""


class PartialsDeps(TargetDeps, Protocol):
    """What the chores read and record (the bot's `Context` has it)."""

    @property
    def store(self) -> _Store: ...

# A partial file younger than this is left alone even with no live run in sight: a run that became approved just
# after the store was read may be creating one now. Older ones were written by a run that is no longer live.
PARTIAL_GRACE_SECONDS = 300
LIVE = [ActionState.APPROVED, ActionState.RUNNING]


def partial_name(service: str) -> re.Pattern[str]:
    """The names opsbot gives a backup of `service` while it is written: `.<service>-<label>-<stamp>[-n]<suffix>.partial`
    (see `backup_file_name` and `new_backup_file`). Nothing else in the directory is ever touched."""
    stamp, suffix = r"[0-9]{8}T[0-9]{6}Z(?:-[0-9]+)?", r"(?:\.[A-Za-z0-9]+)+"
    return re.compile(rf"\.{re.escape(_safe_part(service))}-[A-Za-z0-9._-]+-{stamp}{suffix}\.partial")


def archive_name(service: str) -> re.Pattern[str]:
    """The names a verified backup of `service` gets when its `.partial` file is renamed: `<service>-<label>-<stamp>[-n]
    <suffix>` (`backup_file_name`, `unused_path`); the rename happens only after the archive verified."""
    return re.compile(rf"{re.escape(_safe_part(service))}-(?P<label>[a-z]+)-(?P<stamp>[0-9]{{8}}T[0-9]{{6}}Z)"
                      r"(?:-[0-9]+)?(?:\.[A-Za-z0-9]+)+")


@dataclass(frozen=True)
class Directory:
    path: Path
    services: tuple[str, ...]  # every service whose backups are kept here


def backup_directories(services: Iterable[tuple[str, Path]]) -> list[Directory]:
    grouped: dict[Path, list[str]] = {}
    for service, directory in services:
        grouped.setdefault(Path(os.path.abspath(directory)), []).append(service)
    return [Directory(path, tuple(sorted(names))) for path, names in sorted(grouped.items())]


async def remove_orphaned_partials(ctx: PartialsDeps, *, wall_clock: Callable[[], float] = time.time) -> int:
    """Remove the partial files of interrupted backups, in directories no live run (approved or running) writes to.

    `wall_clock` is real time: files' modification times are, whatever clock the domain runs on.
    """
    directories = backup_directories(
        (name, service.backup.directory) for name, service in ctx.catalog.services.items() if service.backup is not None
    )
    if not directories:
        return 0
    checked_at = wall_clock()  # before the store is read: a run that starts later writes newer files
    live = await ctx.store.actions(states=LIVE, limit=1000)
    busy = {service for run in live for service in run.services}
    removed = 0
    for directory in directories:
        if busy.intersection(directory.services):
            continue  # its partial file may be the one a live run is writing
        removed += await asyncio.to_thread(_remove_in, directory, checked_at - PARTIAL_GRACE_SECONDS)
    return removed


def _remove_in(directory: Directory, older_than: float) -> int:
    patterns = [partial_name(service) for service in directory.services]
    try:
        names = os.listdir(directory.path)
    except FileNotFoundError:
        return 0
    except OSError as exc:
        log.warning("cannot look for orphaned partial backups in %s: %s", directory.path, exc.strerror or exc)
        return 0
    removed = 0
    for name in names:
        if not any(pattern.fullmatch(name) for pattern in patterns):
            continue
        path = directory.path / name
        try:
            info = os.lstat(path)
            if not stat.S_ISREG(info.st_mode) or info.st_mtime >= older_than:
                continue  # a link or a directory is not ours; a fresh file may still be written
            path.unlink()
        except FileNotFoundError:
            continue  # removed meanwhile (another replica, or its run finished)
        except OSError as exc:
            log.warning("cannot remove the orphaned partial backup %s: %s", path, exc.strerror or exc)
            continue
        removed += 1
        log.info("removed %s: the partial file of a backup that was cut short", path)
    return removed


@dataclass(frozen=True)
class _Found:
    service: str
    path: Path
    label: BackupLabel
    created_at: datetime
    sha256: str
    size: int


async def record_orphaned_archives(ctx: PartialsDeps, *, wall_clock: Callable[[], float] = time.time) -> int:
    """Record the verified archives that have no record, in directories no live run (approved or running) writes to.

    A replica that resumes later and writes the same record finds it there (one live record per path)."""
    directories = backup_directories(
        (name, service.backup.directory) for name, service in ctx.catalog.services.items() if service.backup is not None
    )
    if not directories:
        return 0
    checked_at = wall_clock()  # before the store is read: an archive written by a run that starts later is newer
    live = await ctx.store.actions(states=LIVE, limit=1000)
    busy = {service for run in live for service in run.services}
    recorded = 0
    for directory in directories:
        if busy.intersection(directory.services):
            continue  # a live run may be about to record the archive it just renamed
        known = {str(record.path) for service in directory.services
                 for record in await ctx.store.backups(service, include_deleted=True, limit=1_000_000)}
        for found in await asyncio.to_thread(_unrecorded_in, directory, known, checked_at):
            kind = targets.backup_target(ctx, found.service, ActionKind.BACKUP).type
            await ctx.store.add_backup(BackupRecord(
                service=found.service, kind=kind, path=found.path, size=found.size, sha256=found.sha256,
                created_at=found.created_at, label=found.label, verified_at=ctx.clock.now()))
            recorded += 1
            log.warning("recorded %s: a verified backup of %s whose record was lost when its run was cut short",
                        found.path, found.service)
    return recorded


def _unrecorded_in(directory: Directory, known: set[str], older_than: float) -> list[_Found]:
    patterns = {service: archive_name(service) for service in directory.services}
    try:
        names = sorted(os.listdir(directory.path))
    except OSError:
        return []  # a missing or unreadable directory is said by the partials chore and by backups themselves
    found = []
    for name in names:
        path = directory.path / name
        if str(path) in known:
            continue
        for service, pattern in patterns.items():
            match = pattern.fullmatch(name)
            if match is None or match["label"] not in {label.value for label in BackupLabel}:
                continue
            try:
                info = os.lstat(path)
                if not stat.S_ISREG(info.st_mode) or info.st_mtime >= older_than:
                    break  # a link is not ours; a newer archive belongs to a run that started after the store was read
                sha256, size = file_digest(path)
            except OSError:
                break  # gone meanwhile (pruned), or unreadable: nothing to record
            created = datetime.strptime(match["stamp"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            found.append(_Found(service, path, BackupLabel(match["label"]), created, sha256, size))
            break
    return found
