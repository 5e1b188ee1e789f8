"""A backup cut short by a crash leaves its `.partial` file; the chores remove it once no live run can own it, and
touch nothing else: only inside backup directories, only names opsbot gives, never while a run is live."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from bot.clock import ManualClock
from bot.runs.models import ActionKind, ActionRun, ActionState, BackupLabel, BackupRecord
from bot.runs.partials import (
    PARTIAL_GRACE_SECONDS,
    partial_name,
    record_orphaned_archives,
    remove_orphaned_partials,
)
from bot.scheduling.scheduler import chores
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings, start_bot

T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)

# What SIGKILL leaves: the real executor code opens its partial file and the process dies inside the block.
_CRASH = """
import asyncio, os, signal, sys
from datetime import UTC, datetime
from pathlib import Path
from bot.executors.postgres_backup import backup_file_name, new_backup_file

async def main() -> None:
    name = backup_file_name(sys.argv[2], "manual", datetime.now(UTC), ".tar.gz")
    async with new_backup_file(Path(sys.argv[1]), name, ".tar.gz", state="untouched") as (partial, final):
        partial.write_bytes(b"half an archive")
        print(partial, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


def crash_mid_backup(directory: Path, service: str) -> Path:
    done = subprocess.run([sys.executable, "-c", _CRASH, str(directory), service], capture_output=True, text=True,
                          cwd=Path(__file__).parent.parent, timeout=60, check=False)
    assert done.returncode == -9, done.stderr
    partial = Path(done.stdout.strip())
    assert partial.exists() and partial.parent == directory
    return partial


def aged(path: Path, seconds: float = PARTIAL_GRACE_SECONDS + 60) -> Path:
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)
    return path


@pytest.fixture
async def bot(slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path) -> AsyncIterator[RunningBot]:
    (tmp_path / "data").mkdir()
    catalog = f"""
services:
  files:
    environment: production
    backup: {{type: directory, paths: ["{tmp_path / 'data'}"], directory: "{tmp_path / 'backups'}"}}
"""
    running, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'opsbot.db'}"), catalog, slack, http,
                                      clock=ManualClock(T0))
    yield running
    await runner.cleanup()


def test_the_pattern_matches_opsbots_names_only() -> None:
    pattern = partial_name("files")
    assert pattern.fullmatch(".files-manual-20261123T030000Z.tar.gz.partial")
    assert pattern.fullmatch(".files-scheduled-20261123T030000Z-2.sql.gz.partial")
    assert not pattern.fullmatch("files-manual-20261123T030000Z.tar.gz")  # a finished backup
    assert not pattern.fullmatch(".files-manual-20261123T030000Z.tar.gz.partial.keep")
    assert not pattern.fullmatch(".notes.partial")
    assert not pattern.fullmatch(".files2-manual-20261123T030000Z.tar.gz.partial")  # another service's
    assert not pattern.fullmatch(".files-../x-20261123T030000Z.tar.gz.partial")


async def test_a_crashed_backups_partial_file_is_removed_once_its_run_is_interrupted(bot: RunningBot, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    backups.mkdir(mode=0o700)
    orphan = aged(crash_mid_backup(backups, "files"))
    finished = aged(_touch(backups / "files-manual-20261120T030000Z.tar.gz"))
    not_ours = aged(_touch(backups / ".notes.partial"))
    fresh = _touch(backups / ".files-manual-20261123T025900Z.tar.gz.partial")  # a run that started just now may write it
    link = backups / ".files-manual-20261123T020000Z.tar.gz.partial"
    link.symlink_to(not_ours)
    aged(link)
    outside = aged(_touch(tmp_path / ".files-manual-20261123T020000Z.tar.gz.partial"))

    # The run that was writing it is still `running` with a fresh heartbeat: it may be alive on another replica.
    clock = bot.ctx.clock
    assert isinstance(clock, ManualClock)
    run_id = await bot.ctx.store.create_action(ActionRun(
        service="files", kind=ActionKind.BACKUP, environment="production", target="files", requested_by="U0ALICE",
        created_at=clock.now(), expires_at=clock.now() + timedelta(hours=1), state=ActionState.APPROVED))
    await bot.ctx.store.transition_action(run_id, ActionState.RUNNING, expect={ActionState.APPROVED}, lease_owner="replica-b",
                                          heartbeat_at=clock.now())
    await chores(bot.ctx)
    assert orphan.exists(), "a live run may own it"

    # Its replica was killed: a lease later the chores interrupt the run and remove what it left.
    clock.advance(bot.ctx.settings.lease_seconds * 2 + bot.ctx.settings.chore_seconds + 1)
    await chores(bot.ctx)
    run = await bot.ctx.store.get_action(run_id)
    assert run is not None and run.state is ActionState.INTERRUPTED
    assert not orphan.exists()
    assert finished.exists() and not_ours.exists() and fresh.exists() and link.is_symlink() and outside.exists()
    assert await remove_orphaned_partials(bot.ctx) == 0


async def test_nothing_is_removed_while_a_runbook_touching_the_service_is_live(bot: RunningBot, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    backups.mkdir(mode=0o700)
    partial = aged(crash_mid_backup(backups, "files"))
    now = bot.ctx.clock.now()
    await bot.ctx.store.create_action(ActionRun(
        service="other", kind=ActionKind.RUNBOOK, environment="production", target="x", requested_by="U0ALICE",
        created_at=now, expires_at=now + timedelta(hours=1), state=ActionState.APPROVED,
        params={"runbook": "tidy", "services": ["other", "files"]}))
    assert await remove_orphaned_partials(bot.ctx) == 0
    assert partial.exists()


def _touch(path: Path) -> Path:
    path.write_bytes(b"")
    return path


async def test_a_verified_archive_whose_record_was_lost_is_recorded_once_no_live_run_can_record_it(
        bot: RunningBot, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    backups.mkdir(mode=0o700)
    # What a replica killed (or cut off from its store) between the rename and the insert leaves: a verified archive.
    lost = backups / "files-scheduled-20261123T020000Z.tar.gz"
    lost.write_bytes(b"a verified archive")
    aged(lost)
    fresh = _touch(backups / "files-manual-20261123T030000Z.tar.gz")  # a run that started after the store was read
    other = aged(_touch(backups / "files-nightly-20261123T010000Z.tar.gz"))  # not a label opsbot gives
    now = bot.ctx.clock.now()
    run_id = await bot.ctx.store.create_action(ActionRun(
        service="files", kind=ActionKind.BACKUP, environment="production", target="files", requested_by="U0ALICE",
        created_at=now, expires_at=now + timedelta(hours=1), state=ActionState.APPROVED))
    assert await record_orphaned_archives(bot.ctx) == 0, "a live run may be about to record it"

    await bot.ctx.store.transition_action(run_id, ActionState.FAILED, expect={ActionState.APPROVED})
    assert await record_orphaned_archives(bot.ctx, wall_clock=lambda: fresh.stat().st_mtime) == 1
    [record] = await bot.ctx.store.backups("files")
    assert (record.path, record.label, record.size) == (lost, BackupLabel.SCHEDULED, len(b"a verified archive"))
    assert record.created_at == datetime(2026, 11, 23, 2, 0, tzinfo=UTC) and record.verified_at is not None
    assert record.sha256 == hashlib.sha256(b"a verified archive").hexdigest()
    assert await record_orphaned_archives(bot.ctx, wall_clock=lambda: fresh.stat().st_mtime) == 0, "recorded once"

    # The replica that wrote it comes back and records it too: still one record, the same id.
    again = await bot.ctx.store.add_backup(BackupRecord(
        service="files", kind="directory", path=lost, size=record.size, sha256=record.sha256,
        created_at=record.created_at, label=BackupLabel.SCHEDULED, verified_at=now, run_id=run_id))
    assert again == record.id and len(await bot.ctx.store.backups("files")) == 1
    assert other.exists() and fresh.exists()
