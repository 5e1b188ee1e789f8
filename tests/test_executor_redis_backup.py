"""RedisBackups against a real Redis (the session's private `snapshot_redis`, which answers `--rdb` at once) and
the real redis-cli.

A snapshot is checked for the RDB frame (magic, version, end marker and checksum); restores are refused with the
manual steps, since only a starting server reads an RDB file.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError

from bot.clock import ManualClock
from bot.executors.backup_targets import RedisBackupTarget
from bot.executors.base import Artifact, ExecutorError, RecordingProgress
from bot.executors.postgres_backup import FILE_LEFT, file_digest
from bot.executors.redis_backup import (
    NOT_TOUCHED,
    NOT_WRITTEN,
    RedisBackups,
    RestoreUnsupported,
    parse_redis_url,
)
from tests.conftest import free_port

START = datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC)
URL = "redis://127.0.0.1:6379/0"  # for what never connects (verify, restore plans, a fake redis-cli)


def make(tmp_path: Path, url: str, **target: object) -> RedisBackups:
    spec = RedisBackupTarget.model_validate({"type": "redis", "url_env": "CACHE_URL", "directory": tmp_path / "rdb", **target})
    return RedisBackups("cache", spec, {"CACHE_URL": url}, ManualClock(START))


@pytest.fixture
async def marker(snapshot_redis: str) -> AsyncIterator[tuple[str, str]]:
    """A key with a short value (RDB keeps strings under 20 bytes uncompressed), removed afterwards."""
    client = aioredis.from_url(snapshot_redis)
    key, value = f"opsbot-test-{uuid.uuid4().hex[:8]}", f"v-{uuid.uuid4().hex[:8]}"
    await client.set(key, value)
    yield key, value
    await client.delete(key)
    await client.aclose()


def rewrite(path: Path, data: bytes) -> Artifact:
    """Replace the file's content with an Artifact whose checksum matches: only the RDB check is left."""
    path.write_bytes(data)
    digest, size = file_digest(path)
    return Artifact(path=path, size=size, sha256=digest, created_at=START)


async def test_backup_writes_a_private_verified_rdb_snapshot(tmp_path: Path, marker: tuple[str, str],
                                                             snapshot_redis: str) -> None:
    backups = make(tmp_path, snapshot_redis)
    progress = RecordingProgress()
    artifact = await backups.backup(progress, label="manual")

    assert artifact.path == tmp_path / "rdb" / "cache-manual-20260301T123005Z.rdb"
    assert stat.S_IMODE(artifact.path.stat().st_mode) == 0o600
    data = artifact.path.read_bytes()
    assert data[:5] == b"REDIS" and data[5:9].isdigit() and data[-9] == 0xFF
    key, value = marker
    assert key.encode() in data and value.encode() in data
    assert [s.state for s in progress.steps] == ["succeeded", "succeeded"]
    assert progress.steps[1].detail.startswith(f"RDB version {int(data[5:9])}, complete")
    assert [p.name for p in (tmp_path / "rdb").iterdir()] == [artifact.path.name]
    await backups.verify(artifact)


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory, snapshot_redis: str) -> bytes:
    """One real RDB snapshot for the verification tests."""
    path = tmp_path_factory.mktemp("rdb") / "sample.rdb"
    port = str(urlsplit(snapshot_redis).port)
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", port, "--rdb", str(path)], check=True, capture_output=True,
                   timeout=60)
    return path.read_bytes()


@pytest.mark.parametrize(("damage", "error"), [
    (lambda data: data[:-20], "incomplete"),  # cut short: no end marker
    (lambda data: data[:-9], "incomplete"),  # the end marker's checksum is gone
    (lambda data: b"NOTREDIS0" + data[9:], "not an RDB file"),
    (lambda data: b"REDIS0004" + data[9:], "older than opsbot reads"),
    (lambda data: b"", "not an RDB file"),
])
async def test_a_damaged_snapshot_is_refused_even_with_a_matching_checksum(tmp_path: Path, snapshot: bytes, damage,
                                                                           error: str) -> None:
    backups = make(tmp_path, URL)
    (tmp_path / "rdb").mkdir()
    await backups.verify(rewrite(tmp_path / "rdb" / "whole.rdb", snapshot))
    damaged = rewrite(tmp_path / "rdb" / "damaged.rdb", damage(snapshot))
    with pytest.raises(ExecutorError, match=error) as caught:
        await backups.verify(damaged)
    assert (caught.value.state, caught.value.effect) == (FILE_LEFT.text, FILE_LEFT.effect)


async def test_a_changed_snapshot_fails_its_checksum(tmp_path: Path, snapshot: bytes) -> None:
    (tmp_path / "rdb").mkdir()
    artifact = rewrite(tmp_path / "rdb" / "a.rdb", snapshot)
    artifact.path.write_bytes(snapshot[:-1] + bytes([snapshot[-1] ^ 0xFF]))
    with pytest.raises(ExecutorError, match="corrupted: checksum differs"):
        await make(tmp_path, URL).verify(artifact)


async def test_a_snapshot_without_its_end_marker_is_never_kept(tmp_path: Path) -> None:
    fake = tmp_path / "fake-redis-cli"
    fake.write_text(f"#!{sys.executable}\nimport sys\nopen(sys.argv[sys.argv.index('--rdb') + 1], 'wb').write(b'REDIS0011' + "
                    "b'x' * 40)\n")
    fake.chmod(0o755)
    with pytest.raises(ExecutorError, match="incomplete") as caught:
        await make(tmp_path, URL, redis_cli=str(fake)).backup(RecordingProgress(), label="manual")
    assert (caught.value.state, caught.value.effect) == (NOT_WRITTEN.text,
                                                         NOT_WRITTEN.effect) and list((tmp_path / "rdb").iterdir()) == []


async def test_restore_is_refused_with_the_manual_steps_before_anything_runs(tmp_path: Path, snapshot: bytes) -> None:
    backups = make(tmp_path, URL)
    (tmp_path / "rdb").mkdir()
    artifact = rewrite(tmp_path / "rdb" / "cache-manual-20260301T123005Z.rdb", snapshot)
    with pytest.raises(RestoreUnsupported) as planned:
        backups.restore_plan(artifact)
    progress = RecordingProgress()
    with pytest.raises(RestoreUnsupported) as caught:
        await backups.restore(artifact, progress)
    for error in (planned.value, caught.value):
        assert (error.state, error.effect) == (NOT_TOUCHED.text, NOT_TOUCHED.effect)
        assert artifact.path.name in str(error)
        assert all(words in str(error) for words in ("stop Redis", "dump.rdb", "CONFIG GET dir", "appendonly", "start Redis"))
    assert progress.steps == []


async def test_password_travels_in_rediscli_auth_never_in_argv(tmp_path: Path, snapshot_redis: str) -> None:
    real = shutil.which("redis-cli")
    assert real
    spy = tmp_path / "redis-cli"
    # Records what it was given, then runs the real client without the password (the test server has none).
    spy.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        f"open({str(tmp_path / 'cli.json')!r}, 'w').write(json.dumps({{'argv': sys.argv, 'env': dict(os.environ)}}))\n"
        "env = {k: v for k, v in os.environ.items() if k != 'REDISCLI_AUTH'}\n"
        f"os.execve({real!r}, [{real!r}] + sys.argv[1:], env)\n"
    )
    spy.chmod(0o755)
    secret = "s3cret/pa:ss"
    port = str(urlsplit(snapshot_redis).port)
    await make(tmp_path, f"redis://ops:s3cret%2Fpa%3Ass@127.0.0.1:{port}/2",
               redis_cli=str(spy)).backup(RecordingProgress(), label="manual")
    call = json.loads((tmp_path / "cli.json").read_text())
    assert call["env"]["REDISCLI_AUTH"] == secret
    assert not any("s3cret" in arg for arg in call["argv"])
    assert call["argv"][1:7] == ["-h", "127.0.0.1", "-p", port, "--user", "ops"]
    assert "--rdb" in call["argv"]


async def test_unreachable_server_fails_with_its_state_and_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(ExecutorError, match="Could not connect") as caught:
        await make(tmp_path, f"redis://:hunter2@127.0.0.1:{free_port()}/0").backup(RecordingProgress(), label="manual")
    assert (caught.value.state, caught.value.effect) == (NOT_WRITTEN.text,
                                                         NOT_WRITTEN.effect) and "hunter2" not in str(caught.value)
    assert list((tmp_path / "rdb").iterdir()) == []


async def test_unset_url_variable_is_named(tmp_path: Path) -> None:
    spec = RedisBackupTarget.model_validate({"type": "redis", "url_env": "CACHE_URL", "directory": tmp_path})
    with pytest.raises(ExecutorError, match="environment variable CACHE_URL is not set"):
        await RedisBackups("cache", spec, {}, ManualClock(START)).backup(RecordingProgress(), label="manual")


@pytest.mark.parametrize(("url", "error"), [
    ("http://u:s3cret@h/0", "not a redis:// or rediss:// URL"),
    ("redis://u:s3cret@h:99999/0", "numeric port"),
    ("redis://u:s3cret@h/0?ssl_cert_reqs=none", "not supported"),
])
def test_bad_url_errors_name_the_variable_not_the_secret(url: str, error: str) -> None:
    with pytest.raises(ValueError, match="CACHE_URL") as caught:
        parse_redis_url(url, "CACHE_URL")
    assert "$CACHE_URL" in str(caught.value) and error in str(caught.value) and "s3cret" not in str(caught.value)


def test_tls_urls_ask_redis_cli_for_tls() -> None:
    server = parse_redis_url("rediss://cache.internal:6380", "CACHE_URL")
    assert server.argv() == ["-h", "cache.internal", "-p", "6380", "--tls"] and "REDISCLI_AUTH" not in server.env()


def test_target_rejects_bad_settings(tmp_path: Path) -> None:
    for bad in ({"url_env": "not a name"}, {"keep_min": 0}, {"timeout": -1}, {"redis_cli": ""}, {"url": URL}):
        with pytest.raises(ValidationError):
            RedisBackupTarget.model_validate({"type": "redis", "url_env": "X", "directory": tmp_path, **bad})


async def test_delete_refuses_a_file_outside_the_directory(tmp_path: Path) -> None:
    backups = make(tmp_path, URL)
    outside = tmp_path / "elsewhere.rdb"
    outside.write_bytes(b"keep me")
    with pytest.raises(ExecutorError, match="not deleted"):
        await backups.delete(Artifact(path=outside, size=7, sha256="0" * 64, created_at=START))
    assert outside.exists()
