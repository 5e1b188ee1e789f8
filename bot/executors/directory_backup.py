"""Directory backups: a verified tar.gz of configured paths, restored safely back over exactly those paths.

It never decides when to back up or who may restore (the actions domain does) and never takes the safety backup.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
import posixpath
import re
import shutil
import tarfile
import tempfile
import uuid
import zlib
from pathlib import Path, PurePosixPath

from bot.clock import Clock
from bot.executors._target import FILE_LEFT, delete_within
from bot.executors.backup_targets import DirectoryBackupTarget
from bot.executors.base import Artifact, Effect, ExecutorError, Progress, TargetState
from bot.executors.postgres_backup import (
    backup_file_name,
    check_digest,
    file_digest,
    human_size,
    new_backup_file,
)
from bot.views.words import plural

NOT_WRITTEN = TargetState("nothing was changed; no backup was written", Effect.UNTOUCHED)
NOT_TOUCHED = TargetState("the paths were not touched; the restore did not start", Effect.UNTOUCHED)
ROLLED_BACK = TargetState("the restore was undone; the paths are as they were before it", Effect.UNTOUCHED)
MANIFEST = "opsbot-backup.json"
SUFFIX = ".tar.gz"
_ROOT = re.compile(r"^paths/(\d+)(?:/|$)")
_CHUNK = 1 << 20
# Python releases before the tarfile extraction filters (3.11.4) fall back to the checks in `_safe_groups` alone.
_DATA_FILTER = hasattr(tarfile, "data_filter")
_UNREADABLE = (tarfile.TarError, OSError, EOFError, zlib.error, ValueError, KeyError, TypeError)


def _write_archive(paths: list[Path], dest: Path) -> int:
    """Manifest first, then each path as `paths/<i>`; the number of members written."""
    manifest = json.dumps({"version": 1, "paths": [str(p) for p in paths]}).encode()
    with tarfile.open(dest, "w:gz") as tar:
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        for i, path in enumerate(paths):
            tar.add(path, arcname=f"paths/{i}", recursive=True)
        return len(tar.getmembers())


def _read_back(archive: Path) -> tuple[list[str], int]:
    """Read every member's data and the gzip trailer (its CRC); the manifest's paths and the member count."""
    with gzip.open(archive, "rb") as gz:
        with tarfile.open(fileobj=gz, mode="r:") as tar:
            manifest: list[str] | None = None
            count = 0
            for member in tar:
                count += 1
                if not member.isreg():
                    continue
                data = tar.extractfile(member)
                assert data is not None  # a regular file always has a data stream
                if member.name == MANIFEST:
                    manifest = [str(p) for p in json.loads(data.read())["paths"]]
                    continue
                while data.read(_CHUNK):
                    pass
        while gz.read(_CHUNK):  # tarfile stops at its end marker; the CRC is checked at the stream's end
            pass
    if manifest is None:
        raise ValueError(f"no {MANIFEST} in the archive")
    return manifest, count


def _safe_groups(members: list[tarfile.TarInfo], count: int) -> list[list[tarfile.TarInfo]]:
    """The members of each `paths/<i>`, refusing anything that could land outside it."""
    groups: list[list[tarfile.TarInfo]] = [[] for _ in range(count)]
    for member in members:
        if member.name == MANIFEST:
            continue
        name = PurePosixPath(member.name)
        match = _ROOT.match(member.name)
        if name.is_absolute() or ".." in name.parts or not match or int(match.group(1)) >= count:
            raise ValueError(f"unsafe member {member.name!r} (outside the backed-up paths)")
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
            raise ValueError(f"unsafe member {member.name!r} (device or pipe)")
        root = f"paths/{match.group(1)}"
        if member.issym() or member.islnk():
            base = posixpath.dirname(member.name) if member.issym() else ""
            target = posixpath.normpath(posixpath.join(base, member.linkname))
            if posixpath.isabs(member.linkname) or not (target == root or target.startswith(root + "/")):
                raise ValueError(f"unsafe link {member.name!r} -> {member.linkname!r} (points outside {root})")
        groups[int(match.group(1))].append(member)
    return groups


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _stage(tar: tarfile.TarFile, roots: list[Path], order: list[int]) -> tuple[list[Path], int]:
    """Extract each root's members beside it (same filesystem, so the swap is a rename); staging dirs, files."""
    groups = _safe_groups(tar.getmembers(), len(order))
    staged: list[Path] = []
    try:
        for root, i in zip(roots, order, strict=True):
            root.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.restore-", dir=root.parent))
            staged.append(staging)
            # Members were checked by _safe_groups; the "data" filter is added where this Python has it.
            if _DATA_FILTER:
                tar.extractall(staging, members=groups[i], filter="data")
            else:
                tar.extractall(staging, members=groups[i])  # noqa: S202
            if not os.path.lexists(staging / "paths" / str(i)):
                raise ValueError(f"the archive holds nothing for {root}")
    except BaseException:
        for staging in staged:
            _remove(staging)
        raise
    return staged, sum(1 for group in groups for member in group if member.isreg())


def _swap(roots: list[Path], staged: list[Path], order: list[int]) -> None:
    """Move every staged copy into place; on any failure put the previous content back."""
    swapped: list[tuple[Path, Path | None, bool]] = []
    current: Path | None = None  # the path being moved when a move fails
    try:
        for root, staging, i in zip(roots, staged, order, strict=True):
            current = root
            old = root.parent / f".{root.name}.old-{uuid.uuid4().hex[:8]}" if os.path.lexists(root) else None
            if old is not None:
                os.rename(root, old)
            swapped.append((root, old, False))
            os.rename(staging / "paths" / str(i), root)
            swapped[-1] = (root, old, True)
    except OSError as exc:
        failed, stuck = current, []
        for root, old, placed in reversed(swapped):
            try:
                if placed:
                    _remove(root)
                if old is not None:
                    os.rename(old, root)
            except OSError:
                stuck.append(f"{root} (its previous content is at {old})")
        state = ROLLED_BACK if not stuck else TargetState(
            f"the restore could not be undone for {', '.join(stuck)}; the other paths are as they were", Effect.CHANGED)
        raise ExecutorError(f"could not move the restored copy of {failed} into place: {exc.strerror or exc}",
                            state=state.text, effect=state.effect) from None
    finally:
        for staging in staged:
            _remove(staging)
    leftovers = []
    for _, old, _ in swapped:
        try:
            if old is not None:
                _remove(old)
        except OSError:
            leftovers.append(str(old))
    if leftovers:
        raise ExecutorError(
            "restored, but the previous content could not be removed",
            state=f"the paths are restored; the previous content is still at {', '.join(leftovers)} (remove it by hand)",
            effect=Effect.CHANGED,
        )


class DirectoryBackups:
    """Backups of a set of files and directories as one tar.gz; implements `Backups`."""

    def __init__(self, service: str, target: DirectoryBackupTarget, clock: Clock) -> None:
        self._service = service
        self._target = target
        self._clock = clock

    def _paths_label(self) -> str:
        paths = self._target.paths
        return str(paths[0]) + (f" and {len(paths) - 1} more" if len(paths) > 1 else "")

    def describe(self) -> str:
        return f"Files in {', '.join(str(p) for p in self._target.paths)} (archives in {self._target.directory})"

    def backup_plan(self) -> list[str]:
        return [f"Archive {self._paths_label()}", "Verify the archive (read it back)"]

    def restore_plan(self, artifact: Artifact) -> list[str]:
        return [f"Verify {artifact.path.name}", f"Restore {self._paths_label()}"]

    async def backup(self, progress: Progress, *, label: str) -> Artifact:
        paths = list(self._target.paths)
        now = self._clock.now()
        name = backup_file_name(self._service, label, now, SUFFIX)
        async with new_backup_file(self._target.directory, name, SUFFIX, state=NOT_WRITTEN) as (partial, final):
            async with progress.step(f"Archive {self._paths_label()}") as step:
                missing = await asyncio.to_thread(lambda: [str(p) for p in paths if not os.path.lexists(p)])
                if missing:
                    raise ExecutorError(f"{', '.join(missing)} does not exist", state=NOT_WRITTEN.text,
                                        effect=NOT_WRITTEN.effect)
                try:
                    members = await asyncio.to_thread(_write_archive, paths, partial)
                except OSError as exc:
                    where = f" {exc.filename}" if exc.filename else ""
                    raise ExecutorError(f"cannot archive{where}: {exc.strerror or exc}", state=NOT_WRITTEN.text,
                                        effect=NOT_WRITTEN.effect) from None
                digest, size = await asyncio.to_thread(file_digest, partial)
                step.detail = f"{plural(members, 'entry', 'entries')}, {human_size(size)}"
            async with progress.step("Verify the archive (read it back)") as step:
                count = await self._read(partial, state=NOT_WRITTEN)
                step.detail = f"{count} entries read, sha256 {digest[:12]}"
        return Artifact(path=final, size=size, sha256=digest, created_at=now)

    async def _read(self, archive: Path, *, state: TargetState) -> int:
        try:
            manifest, count = await asyncio.to_thread(_read_back, archive)
        except _UNREADABLE as exc:
            raise ExecutorError(f"{archive.name} is corrupted: {str(exc) or type(exc).__name__}", state=state.text,
                                effect=state.effect) from None
        self._order(manifest, archive, state=state)
        return count

    def _order(self, manifest: list[str], archive: Path, *, state: TargetState) -> list[int]:
        """For each configured path, its index in the archive; the archive must hold exactly these paths."""
        configured = [str(p) for p in self._target.paths]
        if sorted(manifest) != sorted(configured):
            raise ExecutorError(
                f"{archive.name} holds {', '.join(manifest)}, but the catalog lists {', '.join(configured)}",
                state=state.text, effect=state.effect,
            )
        return [manifest.index(p) for p in configured]

    async def verify(self, artifact: Artifact) -> None:
        await check_digest(artifact, state=FILE_LEFT)
        await self._read(artifact.path, state=FILE_LEFT)

    async def restore(self, artifact: Artifact, progress: Progress) -> str:
        async with progress.step(f"Verify {artifact.path.name}") as step:
            await check_digest(artifact, state=NOT_TOUCHED)
            count = await self._read(artifact.path, state=NOT_TOUCHED)
            step.detail = f"checksum matches, {count} entries"
        async with progress.step(f"Restore {self._paths_label()}") as step:
            files = await asyncio.to_thread(self._restore_blocking, artifact.path)
            step.detail = plural(files, "file")
        return f"Restored {self._paths_label()} from {artifact.path.name}"

    def _restore_blocking(self, archive: Path) -> int:
        roots = list(self._target.paths)
        try:
            with tarfile.open(archive, "r:gz") as tar:
                order = self._order(_manifest(tar), archive, state=NOT_TOUCHED)
                staged, files = _stage(tar, roots, order)
        except _UNREADABLE as exc:  # tarfile.FilterError is a TarError
            raise ExecutorError(f"{archive.name} was refused: {exc}", state=NOT_TOUCHED.text,
                                effect=NOT_TOUCHED.effect) from None
        _swap(roots, staged, order)
        return files

    async def delete(self, artifact: Artifact) -> None:
        await delete_within(self._target.directory, artifact)


def _manifest(tar: tarfile.TarFile) -> list[str]:
    data = tar.extractfile(MANIFEST)
    if data is None:
        raise ValueError(f"{MANIFEST} is not a file")
    return [str(p) for p in json.loads(data.read())["paths"]]
