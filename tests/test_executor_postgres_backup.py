"""PostgresBackups against the real PostgreSQL and the real pg_dump/pg_restore, plus retention as pure tests.

Fresh databases come from `pg_database`; the DSN carries a fake password (trust auth ignores it) to prove it never leaks.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from pydantic import ValidationError

from bot.clock import ManualClock
from bot.executors.backup_targets import PostgresBackupTarget
from bot.executors.base import Artifact, Effect, ExecutorError, RecordingProgress
from bot.executors.postgres_backup import (
    ANALYZE_STEP,
    NOT_TOUCHED,
    NOT_WRITTEN,
    ROLLED_BACK,
    PostgresBackups,
    expired,
    file_digest,
    parse_dsn,
)
from tests.conftest import free_port

PASSWORD = "hunter2"
START = datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC)


def with_password(dsn: str, port: int | None = None) -> str:
    parts = urlsplit(dsn)
    return f"postgresql://{parts.username}:{PASSWORD}@{parts.hostname}:{port or parts.port}{parts.path}"


def make(tmp_path: Path, dsn: str, **target: object) -> PostgresBackups:
    spec = PostgresBackupTarget.model_validate({"type": "postgres", "dsn_env": "APP_DB_DSN", "directory": tmp_path / "dumps",
                                                **target})
    return PostgresBackups("billing", spec, {"APP_DB_DSN": dsn}, ManualClock(START))


@pytest.fixture
async def db(pg_database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_database)
    await conn.execute("CREATE TABLE invoices (id int PRIMARY KEY, amount int NOT NULL)")
    await conn.execute("INSERT INTO invoices VALUES (1, 100), (2, 200), (3, 300)")
    yield conn
    await conn.close()


async def rows(conn: asyncpg.Connection) -> list[tuple[int, int]]:
    return [tuple(r) for r in await conn.fetch("SELECT id, amount FROM invoices ORDER BY id")]


def wrapper(tmp_path: Path, name: str, body: str) -> str:
    """A stand-in program at the process boundary: records what it was given, then does `body`."""
    path = tmp_path / name
    path.write_text(
        f"#!{sys.executable}\nimport json, os, sys, time\n"
        f"open({str(tmp_path / (name + '.json'))!r}, 'w').write(json.dumps({{'argv': sys.argv, 'env': dict(os.environ), 'pid': "
        f"os.getpid()}}))\n"
        f"{body}\n"
    )
    path.chmod(0o755)
    return str(path)


def recorded(tmp_path: Path, name: str) -> dict:
    return json.loads((tmp_path / f"{name}.json").read_text())


# --- backup and restore ----------------------------------------------------------------------------------


async def test_backup_then_restore_brings_the_rows_back(tmp_path: Path, pg_database: str, db: asyncpg.Connection) -> None:
    backups = make(tmp_path, with_password(pg_database))
    progress = RecordingProgress()
    artifact = await backups.backup(progress, label="manual")

    database = urlsplit(pg_database).path[1:]
    assert artifact.path == tmp_path / "dumps" / "billing-manual-20260301T123005Z.dump"
    assert artifact.created_at == START
    assert file_digest(artifact.path) == (artifact.sha256, artifact.size)
    assert stat.S_IMODE(artifact.path.stat().st_mode) == 0o600
    assert sorted(p.name for p in artifact.path.parent.iterdir()) == [artifact.path.name]
    assert [(s.title, s.state) for s in progress.steps] == [
        (f"Dump database {database} on 127.0.0.1", "succeeded"),
        ("Verify the dump (pg_restore --list)", "succeeded"),
    ]
    assert [s.title for s in progress.steps] == backups.backup_plan()
    await backups.verify(artifact)

    await db.execute("DELETE FROM invoices WHERE id = 1")
    await db.execute("UPDATE invoices SET amount = 0 WHERE id = 2")
    await db.execute("INSERT INTO invoices VALUES (4, 400)")
    progress = RecordingProgress()
    summary = await backups.restore(artifact, progress)

    assert await rows(db) == [(1, 100), (2, 200), (3, 300)]
    assert summary == f"Restored database {database} on 127.0.0.1:5432 from {artifact.path.name}"
    assert [(s.title, s.state) for s in progress.steps] == [
        (f"Verify {artifact.path.name}", "succeeded"), (f"Restore into {database}", "succeeded"),
        (ANALYZE_STEP, "succeeded"),
    ]
    assert [s.title for s in progress.steps] == backups.restore_plan(artifact)


async def statistics(conn: asyncpg.Connection, table: str) -> int:
    """Columns of `table` with planner statistics (pg_stats): ANALYZE writes them, a restore does not."""
    return int(await conn.fetchval("SELECT count(*) FROM pg_stats WHERE schemaname = 'public' AND tablename = $1", table))


async def test_a_restore_ends_with_analyze_so_the_restored_tables_have_planner_statistics(
        tmp_path: Path, pg_database: str, db: asyncpg.Connection) -> None:
    backups = make(tmp_path, with_password(pg_database))
    await db.execute("ANALYZE invoices")
    artifact = await backups.backup(RecordingProgress(), label="manual")
    assert await statistics(db, "invoices") == 2  # statistics are not in a dump: the restore starts without them

    progress = RecordingProgress()
    await backups.restore(artifact, progress)

    assert await statistics(db, "invoices") == 2
    assert [(s.title, s.state, s.detail) for s in progress.steps][-1] == (ANALYZE_STEP, "succeeded", "done")


async def test_a_failing_analyze_after_a_good_restore_is_a_warning_not_a_failure(
        tmp_path: Path, pg_database: str, db: asyncpg.Connection) -> None:
    # An expression index whose function fails outside pg_restore's own session: the restore builds the index, and
    # the ANALYZE that follows (which evaluates index expressions) fails on the server.
    await db.execute("""
        CREATE FUNCTION picky(value int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$
        BEGIN
            IF current_setting('application_name') <> 'pg_restore' THEN RAISE EXCEPTION 'picky refuses %', value; END IF;
            RETURN value;
        END $$""")
    await db.execute("SET application_name = 'pg_restore'")
    await db.execute("CREATE INDEX invoices_picky ON invoices (picky(amount))")
    await db.execute("RESET application_name")
    backups = make(tmp_path, with_password(pg_database))
    artifact = await backups.backup(RecordingProgress(), label="manual")
    await db.execute("DELETE FROM invoices WHERE id = 2")

    progress = RecordingProgress()
    summary = await backups.restore(artifact, progress)

    database = urlsplit(pg_database).path[1:]
    assert await rows(db) == [(1, 100), (2, 200), (3, 300)]  # the restore itself stands
    assert [s.state for s in progress.steps] == ["succeeded"] * 3
    detail = progress.steps[-1].detail
    assert detail.startswith("warning: ANALYZE failed: picky refuses ") and detail.endswith(
        f"; run ANALYZE on {database} by hand"), detail
    assert summary.startswith(f"Restored database {database} on 127.0.0.1:5432 from {artifact.path.name}; warning: "
                              "ANALYZE failed: picky refuses "), summary
    assert PASSWORD not in summary + detail


async def test_two_backups_in_the_same_second_do_not_overwrite(tmp_path: Path, pg_database: str, db: asyncpg.Connection) -> None:
    backups = make(tmp_path, pg_database)
    first = await backups.backup(RecordingProgress(), label="pre/restore")
    second = await backups.backup(RecordingProgress(), label="pre/restore")
    assert first.path.name == "billing-pre-restore-20260301T123005Z.dump"
    assert second.path.name == "billing-pre-restore-20260301T123005Z-2.dump"
    await backups.verify(first)
    await backups.verify(second)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
async def test_damaged_dump_is_refused_and_the_database_is_untouched(
    tmp_path: Path, pg_database: str, db: asyncpg.Connection, damage: str
) -> None:
    backups = make(tmp_path, pg_database)
    artifact = await backups.backup(RecordingProgress(), label="manual")
    data = bytearray(artifact.path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[len(data) // 2:]
    artifact.path.write_bytes(bytes(data))
    await db.execute("DELETE FROM invoices WHERE id = 3")

    with pytest.raises(ExecutorError, match=r"corrupted: (checksum|size) differs"):
        await backups.verify(artifact)
    progress = RecordingProgress()
    with pytest.raises(ExecutorError) as caught:
        await backups.restore(artifact, progress)

    assert (caught.value.state, caught.value.effect) == (NOT_TOUCHED.text, Effect.UNTOUCHED)
    assert [(s.title, s.state) for s in progress.steps] == [(f"Verify {artifact.path.name}", "failed")]
    assert await rows(db) == [(1, 100), (2, 200)]


async def test_file_that_is_not_a_dump_fails_verification_even_with_a_matching_checksum(tmp_path: Path, pg_database: str) -> None:
    backups = make(tmp_path, pg_database)
    path = tmp_path / "not-a-dump.dump"
    path.write_bytes(b"PGDMP" + os.urandom(2000))
    sha, size = file_digest(path)
    with pytest.raises(ExecutorError, match="pg_restore failed"):
        await backups.verify(Artifact(path, size, sha, START))


async def test_missing_dump_is_reported(tmp_path: Path, pg_database: str) -> None:
    backups = make(tmp_path, pg_database)
    with pytest.raises(ExecutorError, match=r"gone\.dump is missing"):
        await backups.verify(Artifact(tmp_path / "gone.dump", 1, "0" * 64, START))


async def test_failed_restore_is_rolled_back_whole(tmp_path: Path, pg_database: str, db: asyncpg.Connection) -> None:
    backups = make(tmp_path, pg_database)
    artifact = await backups.backup(RecordingProgress(), label="manual")
    await db.execute("DELETE FROM invoices WHERE id = 1")
    # A view the dump does not know about makes `DROP TABLE invoices` fail halfway through the restore.
    await db.execute("CREATE VIEW big_invoices AS SELECT * FROM invoices WHERE amount > 150")

    with pytest.raises(ExecutorError, match="pg_restore failed") as caught:
        await backups.restore(artifact, RecordingProgress())

    assert (caught.value.state, caught.value.effect) == (ROLLED_BACK.text, Effect.UNTOUCHED)
    assert await rows(db) == [(2, 200), (3, 300)]


# --- secrets and failures ----------------------------------------------------------------------------------


async def test_password_travels_in_the_environment_never_in_argv(tmp_path: Path, pg_database: str,
                                                                 db: asyncpg.Connection) -> None:
    real = shutil.which("pg_dump")
    assert real
    fake = wrapper(tmp_path, "pg_dump", f"os.execv({real!r}, [{real!r}] + sys.argv[1:])")
    backups = make(tmp_path, with_password(pg_database) + "?sslmode=disable&application_name=opsbot", pg_dump=fake)
    await backups.backup(RecordingProgress(), label="manual")

    seen = recorded(tmp_path, "pg_dump")
    assert not any(PASSWORD in arg for arg in seen["argv"])
    assert seen["argv"][1:4] == ["--format=custom", seen["argv"][2], "--no-password"]
    assert seen["env"]["PGPASSWORD"] == PASSWORD
    assert seen["env"]["PGDATABASE"] == urlsplit(pg_database).path[1:]
    assert (seen["env"]["PGSSLMODE"], seen["env"]["PGAPPNAME"]) == ("disable", "opsbot")
    description = backups.describe()
    assert PASSWORD not in description
    database = urlsplit(pg_database).path[1:]
    assert description == f"PostgreSQL database {database} on 127.0.0.1:5432 (dumps in {tmp_path / 'dumps'})"


async def test_unreachable_server_fails_with_state_and_no_password(tmp_path: Path, pg_database: str) -> None:
    backups = make(tmp_path, with_password(pg_database, port=free_port()))
    progress = RecordingProgress()
    with pytest.raises(ExecutorError, match=r"pg_dump failed .*127\.0\.0\.1") as caught:
        await backups.backup(progress, label="manual")

    assert (caught.value.state, caught.value.effect) == (NOT_WRITTEN.text, NOT_WRITTEN.effect)
    assert PASSWORD not in str(caught.value) and PASSWORD not in caught.value.state
    assert progress.steps[0].state == "failed" and PASSWORD not in progress.steps[0].detail
    assert list((tmp_path / "dumps").iterdir()) == []


async def test_tool_output_is_scrubbed_of_the_password(tmp_path: Path, pg_database: str) -> None:
    fake = wrapper(tmp_path, "pg_dump", "sys.stderr.write('pg_dump: error: auth failed for password ' + os.environ['PGPASSWORD'] "
                                        "+ '\\n'); sys.exit(1)")
    backups = make(tmp_path, with_password(pg_database), pg_dump=fake)
    with pytest.raises(ExecutorError, match=r"auth failed for password \*\*\*") as caught:
        await backups.backup(RecordingProgress(), label="manual")
    assert PASSWORD not in str(caught.value)


async def test_timeout_stops_the_tool_and_removes_the_partial_file(tmp_path: Path, pg_database: str) -> None:
    fake = wrapper(tmp_path, "pg_dump", "time.sleep(60)")
    backups = make(tmp_path, pg_database, pg_dump=fake, timeout=0.5)
    with pytest.raises(ExecutorError, match=r"did not finish within 0\.5 s") as caught:
        await backups.backup(RecordingProgress(), label="manual")

    assert (caught.value.state, caught.value.effect) == (NOT_WRITTEN.text, NOT_WRITTEN.effect)
    with pytest.raises(ProcessLookupError):
        os.kill(recorded(tmp_path, "pg_dump")["pid"], 0)
    assert list((tmp_path / "dumps").iterdir()) == []


async def test_unset_dsn_variable_is_named(tmp_path: Path) -> None:
    spec = PostgresBackupTarget(type="postgres", dsn_env="APP_DB_DSN", directory=tmp_path)
    backups = PostgresBackups("billing", spec, {}, ManualClock(START))
    with pytest.raises(ExecutorError, match="APP_DB_DSN is not set"):
        await backups.backup(RecordingProgress(), label="manual")
    assert "$APP_DB_DSN" in backups.describe()


def test_dsn_parameters_become_libpq_variables() -> None:
    conn = parse_dsn("postgresql://app:p%40ss@db.internal:6432/billing?sslmode=require&connect_timeout=3", "X")
    assert conn.env() == {
        "PGHOST": "db.internal", "PGPORT": "6432", "PGDATABASE": "billing", "PGUSER": "app",
        "PGPASSWORD": "p@ss", "PGSSLMODE": "require", "PGCONNECT_TIMEOUT": "3",
    }
    assert "p@ss" not in repr(conn)


@pytest.mark.parametrize(("dsn", "error"), [
    ("mysql://u:hunter2@h/db", "not a postgresql:// URL"),
    ("postgresql://u:hunter2@h:5432/", "names no database"),
    ("postgresql://u:hunter2@h/db?sslpassword=hunter2", "unsupported connection parameter"),
    ("postgresql://u:hunter2@h:port/db", "one host, numeric port"),
])
def test_bad_dsn_errors_name_the_variable_not_the_secret(dsn: str, error: str) -> None:
    with pytest.raises(ValueError, match=error) as caught:
        parse_dsn(dsn, "APP_DB_DSN")
    assert "$APP_DB_DSN" in str(caught.value) and PASSWORD not in str(caught.value)


def test_target_rejects_bad_settings(tmp_path: Path) -> None:
    base = {"type": "postgres", "dsn_env": "APP_DB_DSN", "directory": str(tmp_path)}
    for bad in ({"retention_days": 0}, {"keep_min": 0}, {"timeout": 0}, {"dsn_env": "not a name"}, {"dsn": "postgresql://x"}):
        with pytest.raises(ValidationError):
            PostgresBackupTarget.model_validate({**base, **bad})


# --- delete and retention ----------------------------------------------------------------------------------


async def test_delete_removes_the_file_and_tolerates_a_missing_one(tmp_path: Path, pg_database: str) -> None:
    backups = make(tmp_path, pg_database)
    (tmp_path / "dumps").mkdir()
    path = tmp_path / "dumps" / "billing-x.dump"
    path.write_bytes(b"x")
    artifact = Artifact(path, 1, "0" * 64, START)
    await backups.delete(artifact)
    assert not path.exists()
    await backups.delete(artifact)


async def test_delete_refuses_a_file_outside_the_dump_directory(tmp_path: Path, pg_database: str) -> None:
    backups = make(tmp_path, pg_database)
    precious = tmp_path / "precious.txt"
    precious.write_text("keep")
    with pytest.raises(ExecutorError, match="not deleted"):
        await backups.delete(Artifact(precious, 4, "0" * 64, START))
    assert precious.exists()


def aged(*days: float) -> list[Artifact]:
    return [Artifact(Path(f"/b/{d}.dump"), 1, "0" * 64, START - timedelta(days=d)) for d in days]


def test_expired_takes_only_what_is_older_than_retention() -> None:
    artifacts = aged(1, 10, 29, 31, 45, 90)
    assert [a.path.name for a in expired(artifacts, START, retention_days=30, keep_min=3)] == ["90.dump", "45.dump", "31.dump"]


def test_expired_keeps_the_newest_keep_min_even_when_all_are_old() -> None:
    artifacts = aged(100, 40, 60, 35)
    assert [a.path.name for a in expired(artifacts, START, retention_days=30, keep_min=3)] == ["100.dump"]
    assert expired(artifacts, START, retention_days=30, keep_min=4) == []
    assert expired(artifacts, START, retention_days=30, keep_min=10) == []


def test_expired_spares_keep_min_counted_among_the_newest_not_the_old_ones() -> None:
    artifacts = aged(1, 2, 50, 60)
    # The two newest already satisfy keep_min=2, so both old ones go; with keep_min=3 the 50-day one stays.
    assert [a.path.name for a in expired(artifacts, START, retention_days=7, keep_min=2)] == ["60.dump", "50.dump"]
    assert [a.path.name for a in expired(artifacts, START, retention_days=7, keep_min=3)] == ["60.dump"]


def test_expired_is_strictly_older_and_handles_nothing() -> None:
    assert expired(aged(30), START, retention_days=30, keep_min=0) == []
    assert [a.path.name for a in expired(aged(30.001), START, retention_days=30, keep_min=0)] == ["30.001.dump"]
    assert expired([], START, retention_days=30, keep_min=3) == []
    with pytest.raises(ValueError, match="must not be negative"):
        expired([], START, retention_days=-1, keep_min=3)
