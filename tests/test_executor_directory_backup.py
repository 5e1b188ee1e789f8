"""DirectoryBackups on real trees in the test's directory: round trips, damaged archives, hostile archives.

Trees are compared whole (names, kinds, contents, link targets), so "restored" means exactly as backed up.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.clock import ManualClock
from bot.executors.backup_targets import DirectoryBackupTarget
from bot.executors.base import Artifact, ExecutorError, RecordingProgress
from bot.executors.directory_backup import (
    MANIFEST,
    NOT_TOUCHED,
    NOT_WRITTEN,
    DirectoryBackups,
)
from bot.executors.postgres_backup import file_digest

START = datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC)


def snapshot(root: Path) -> dict[str, object]:
    """Every entry under `root` (or `root` itself when it is a file): kind plus content or link target."""
    if root.is_file():
        return {".": root.read_bytes()}
    seen: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            seen[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            seen[rel] = "dir"
        else:
            seen[rel] = path.read_bytes()
    return seen


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    """A directory tree and a lone config file to back up."""
    data = tmp_path / "srv" / "data"
    (data / "uploads" / "2026").mkdir(parents=True)
    (data / "empty").mkdir()
    (data / "index.json").write_text('{"v": 1}')
    (data / "uploads" / "2026" / "a.bin").write_bytes(os.urandom(50_000))
    (data / "uploads" / "b.txt").write_text("bee")
    (data / "latest").symlink_to("uploads/b.txt")
    config = tmp_path / "etc" / "app.conf"
    config.parent.mkdir()
    config.write_text("debug = false\n")
    return data, config


def make(tmp_path: Path, paths: list[Path]) -> DirectoryBackups:
    target = DirectoryBackupTarget(type="directory", paths=paths, directory=tmp_path / "backups")
    return DirectoryBackups("files", target, ManualClock(START))


def leftovers(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.rglob(".*") if ".restore-" in p.name or ".old-" in p.name
                  or p.name.endswith(".partial"))


async def test_restore_puts_the_tree_back_exactly(tmp_path: Path, world: tuple[Path, Path]) -> None:
    data, config = world
    backups = make(tmp_path, [data, config])
    before = (snapshot(data), snapshot(config))
    progress = RecordingProgress()
    artifact = await backups.backup(progress, label="manual")

    assert artifact.path == tmp_path / "backups" / "files-manual-20260301T123005Z.tar.gz"
    assert file_digest(artifact.path) == (artifact.sha256, artifact.size)
    assert stat.S_IMODE(artifact.path.stat().st_mode) == 0o600
    assert [(s.title, s.state) for s in progress.steps] == [
        (f"Archive {data} and 1 more", "succeeded"), ("Verify the archive (read it back)", "succeeded"),
    ]
    assert [s.title for s in progress.steps] == backups.backup_plan()
    await backups.verify(artifact)

    (data / "index.json").write_text('{"v": 2}')
    (data / "uploads" / "b.txt").unlink()
    (data / "uploads" / "new.txt").write_text("added after the backup")
    (data / "extra" / "deep").mkdir(parents=True)
    (data / "empty").rmdir()
    config.write_text("debug = true\n")
    progress = RecordingProgress()
    summary = await backups.restore(artifact, progress)

    assert (snapshot(data), snapshot(config)) == before
    assert summary == f"Restored {data} and 1 more from {artifact.path.name}"
    assert [(s.title, s.state) for s in progress.steps] == [
        (f"Verify {artifact.path.name}", "succeeded"), (f"Restore {data} and 1 more", "succeeded"),
    ]
    assert progress.steps[1].detail.startswith("4 files")
    assert leftovers(tmp_path) == []


async def test_restore_recreates_a_path_deleted_entirely(tmp_path: Path, world: tuple[Path, Path]) -> None:
    data, _ = world
    backups = make(tmp_path, [data])
    before = snapshot(data)
    artifact = await backups.backup(RecordingProgress(), label="manual")
    for path in sorted(data.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink()
    data.rmdir()
    await backups.restore(artifact, RecordingProgress())
    assert snapshot(data) == before


async def test_missing_path_is_named_and_nothing_is_written(tmp_path: Path, world: tuple[Path, Path]) -> None:
    data, _ = world
    gone = tmp_path / "srv" / "gone"
    progress = RecordingProgress()
    with pytest.raises(ExecutorError, match=f"{gone} does not exist") as caught:
        await make(tmp_path, [data, gone]).backup(progress, label="manual")
    assert (caught.value.state, caught.value.effect) == (NOT_WRITTEN.text, NOT_WRITTEN.effect)
    assert progress.steps[0].state == "failed"
    assert list((tmp_path / "backups").iterdir()) == []


@pytest.mark.parametrize("damage", ["flip", "truncate"])
async def test_damaged_archive_is_refused_and_the_tree_is_untouched(tmp_path: Path, world: tuple[Path, Path],
                                                                    damage: str) -> None:
    data, _ = world
    backups = make(tmp_path, [data])
    artifact = await backups.backup(RecordingProgress(), label="manual")
    raw = bytearray(artifact.path.read_bytes())
    if damage == "flip":
        raw[len(raw) // 2] ^= 0xFF
    else:
        del raw[len(raw) // 2:]
    artifact.path.write_bytes(bytes(raw))
    (data / "index.json").write_text("changed since")
    after = snapshot(data)

    with pytest.raises(ExecutorError, match=r"corrupted: (checksum|size) differs"):
        await backups.verify(artifact)
    with pytest.raises(ExecutorError, match="corrupted") as caught:
        await backups.restore(artifact, RecordingProgress())
    assert (caught.value.state, caught.value.effect) == (NOT_TOUCHED.text, NOT_TOUCHED.effect)
    assert snapshot(data) == after


@pytest.mark.parametrize("damage", ["flip", "truncate"])
async def test_unreadable_archive_fails_verification_even_with_a_matching_checksum(tmp_path: Path, world: tuple[Path, Path],
                                                                                   damage: str) -> None:
    data, _ = world
    backups = make(tmp_path, [data])
    artifact = await backups.backup(RecordingProgress(), label="manual")
    raw = bytearray(artifact.path.read_bytes())
    if damage == "flip":
        raw[len(raw) // 2] ^= 0xFF
    else:
        del raw[len(raw) // 2:]
    artifact.path.write_bytes(bytes(raw))
    sha, size = file_digest(artifact.path)
    with pytest.raises(ExecutorError, match=f"{artifact.path.name} is corrupted"):
        await backups.verify(Artifact(artifact.path, size, sha, START))


def hostile(path: Path, roots: list[Path], member: tarfile.TarInfo, payload: bytes = b"pwned") -> Artifact:
    """A well-formed tar.gz with a correct manifest and one planted member."""
    manifest = json.dumps({"version": 1, "paths": [str(r) for r in roots]}).encode()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        root = tarfile.TarInfo("paths/0")
        root.type, root.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(root)
        if member.isreg():
            member.size = len(payload)
            tar.addfile(member, io.BytesIO(payload))
        else:
            tar.addfile(member)
    sha, size = file_digest(path)
    return Artifact(path, size, sha, START)


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, 0o644
    return info


@pytest.mark.parametrize("planted", [
    member("paths/0/../../evil.txt"),
    member("../evil.txt"),
    member("/tmp/evil.txt"),
    member("paths/7/evil.txt"),
    member("paths/0/link", tarfile.SYMTYPE, "/etc/passwd"),
    member("paths/0/link", tarfile.SYMTYPE, "../../evil.txt"),
    member("paths/0/hard", tarfile.LNKTYPE, "../evil.txt"),
    member("paths/0/dev", tarfile.CHRTYPE),
], ids=["dotdot", "parent", "absolute", "unknown-root", "abs-symlink", "escaping-symlink", "escaping-hardlink", "device"])
async def test_archive_escaping_its_paths_is_refused_on_restore(tmp_path: Path, world: tuple[Path, Path],
                                                                planted: tarfile.TarInfo) -> None:
    data, _ = world
    backups = make(tmp_path, [data])
    (tmp_path / "backups").mkdir()
    artifact = hostile(tmp_path / "backups" / "files-evil.tar.gz", [data], planted)
    before = snapshot(tmp_path)

    with pytest.raises(ExecutorError, match="was refused: unsafe") as caught:
        await backups.restore(artifact, RecordingProgress())

    assert (caught.value.state, caught.value.effect) == (NOT_TOUCHED.text, NOT_TOUCHED.effect)
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "srv" / "evil.txt").exists()


async def test_archive_of_other_paths_is_refused(tmp_path: Path, world: tuple[Path, Path]) -> None:
    data, config = world
    artifact = await make(tmp_path, [data]).backup(RecordingProgress(), label="manual")
    with pytest.raises(ExecutorError, match="but the catalog lists"):
        await make(tmp_path, [config]).restore(artifact, RecordingProgress())
    assert config.read_text() == "debug = false\n"


async def test_delete_removes_the_archive_and_tolerates_a_missing_one(tmp_path: Path, world: tuple[Path, Path]) -> None:
    data, _ = world
    backups = make(tmp_path, [data])
    artifact = await backups.backup(RecordingProgress(), label="manual")
    await backups.delete(artifact)
    assert not artifact.path.exists()
    await backups.delete(artifact)
    with pytest.raises(ExecutorError, match="not deleted"):
        await backups.delete(Artifact(data / "index.json", 1, "0" * 64, START))
    assert (data / "index.json").exists()


@pytest.mark.parametrize(("paths", "directory", "error"), [
    (["relative/data"], "/b", "not an absolute path"),
    ([], "/b", "at least 1"),
    (["/srv/data"], "relative", "not an absolute path"),
    (["/srv/data", "/srv/data/uploads"], "/b", "overlap"),
    (["/srv/data"], "/srv/data/backups", "overlaps"),
    (["/"], "/b", "filesystem root"),
])
def test_target_rejects_paths_a_restore_could_not_replace_safely(paths: list[str], directory: str, error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        DirectoryBackupTarget.model_validate({"type": "directory", "paths": paths, "directory": directory})
