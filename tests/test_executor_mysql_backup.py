"""MysqlBackups against the real MariaDB and the real mysqldump/mysql clients.

Fresh databases come from `mysql_database`; a user with an awkward password proves the option file carries it
intact and that it never reaches an argv, the environment or a message.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import stat
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

import pymysql
import pytest
from pydantic import ValidationError

from bot.clock import ManualClock
from bot.executors.backup_targets import MysqlBackupTarget
from bot.executors.base import Artifact, Effect, ExecutorError, RecordingProgress
from bot.executors.mysql_backup import (
    NO_GTIDS,
    NOT_TOUCHED,
    NOT_WRITTEN,
    PART_WAY,
    MysqlBackups,
    is_oracle_mysqldump,
    option_value,
)
from bot.executors.postgres_backup import FILE_LEFT, file_digest
from tests.conftest import free_port

PASSWORD = 'p@ss:w/rd"#\\ x;'
START = datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC)


class Shop:
    """A database with an `orders` table, and a user of its own with PASSWORD."""

    def __init__(self, admin_dsn: str) -> None:
        parts = urlsplit(admin_dsn)
        self.database = parts.path.lstrip("/")
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 3306
        self.user = f"h4_{uuid.uuid4().hex[:8]}"
        self.admin = pymysql.connect(host=self.host, port=self.port, user=parts.username or "root",
                                     password=parts.password or "", database=self.database, autocommit=True)

    def dsn(self, password: str = PASSWORD, port: int | None = None) -> str:
        return f"mysql://{self.user}:{quote(password, safe='')}@{self.host}:{port or self.port}/{self.database}"

    def run(self, sql: str, *args: object) -> list[tuple]:
        with self.admin.cursor() as cursor:
            cursor.execute(sql, args or None)
            return list(cursor.fetchall())

    def rows(self) -> list[tuple]:
        return self.run("SELECT id, note FROM orders ORDER BY id")


@pytest.fixture
def shop(mysql_database: str) -> Iterator[Shop]:
    shop = Shop(mysql_database)
    shop.run("CREATE TABLE orders (id INT PRIMARY KEY, note VARCHAR(50) NOT NULL) ENGINE=InnoDB")
    shop.run("INSERT INTO orders VALUES (1, 'first'), (2, 'zweite — ü'), (3, 'third')")
    shop.run(f"CREATE USER '{shop.user}'@'%%' IDENTIFIED BY %s", PASSWORD)
    shop.run(f"GRANT ALL ON `{shop.database}`.* TO '{shop.user}'@'%'")
    yield shop
    shop.run(f"DROP USER IF EXISTS '{shop.user}'@'%'")
    shop.admin.close()


def make(tmp_path: Path, dsn: str, **target: object) -> MysqlBackups:
    spec = MysqlBackupTarget.model_validate({"type": "mysql", "dsn_env": "SHOP_DB_URL", "directory": tmp_path / "dumps",
                                             **target})
    return MysqlBackups("shop", spec, {"SHOP_DB_URL": dsn}, ManualClock(START))


def wrapper(tmp_path: Path, name: str, real: str) -> str:
    """A stand-in program at the process boundary: records its argv, environment and the option file it was
    given (mode, and whether the password is in it), then runs the real tool."""
    path = tmp_path / name
    path.write_text(
        f"#!{sys.executable}\nimport json, os, stat, sys\n"
        "opts = [a.split('=', 1)[1] for a in sys.argv if a.startswith('--defaults-file=')]\n"
        "info = {'argv': sys.argv, 'env': dict(os.environ), 'opts': opts}\n"
        "if opts:\n"
        "    st = os.stat(opts[0]); info['mode'] = stat.S_IMODE(st.st_mode)\n"
        "    info['dir_mode'] = stat.S_IMODE(os.stat(os.path.dirname(opts[0])).st_mode)\n"
        "    info['has_password'] = 'password=' in open(opts[0]).read()\n"
        f"with open({str(tmp_path / (name + '.jsonl'))!r}, 'a') as log: log.write(json.dumps(info) + '\\n')\n"
        f"os.execv({real!r}, [{real!r}] + sys.argv[1:])\n"
    )
    path.chmod(0o755)
    return str(path)


def recorded(tmp_path: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()]


def real(tool: str) -> str:
    import shutil

    found = shutil.which(tool)
    assert found, f"{tool} is not installed"
    return found


def rewrite(path: Path, data: bytes) -> Artifact:
    """Replace a dump's content and return an Artifact whose checksum matches it: only the content check is left."""
    path.write_bytes(data)
    digest, size = file_digest(path)
    return Artifact(path=path, size=size, sha256=digest, created_at=START)


# --- backup and restore ----------------------------------------------------------------------------------


async def test_backup_writes_a_private_verified_gzip_dump_and_restore_brings_the_rows_back(tmp_path: Path, shop: Shop) -> None:
    backups = make(tmp_path, shop.dsn())
    progress = RecordingProgress()
    artifact = await backups.backup(progress, label="manual")

    assert artifact.path == tmp_path / "dumps" / "shop-manual-20260301T123005Z.sql.gz"
    assert stat.S_IMODE(artifact.path.stat().st_mode) == 0o600
    assert [s.state for s in progress.steps] == ["succeeded", "succeeded"]
    assert progress.steps[0].detail.startswith("1 table, ")
    assert "1 CREATE TABLE, complete" in progress.steps[1].detail
    text = gzip.decompress(artifact.path.read_bytes()).decode()
    # No --databases: no CREATE DATABASE / USE, so it restores into whatever database the DSN names.
    assert "CREATE TABLE `orders`" in text and "CREATE DATABASE" not in text and "\nUSE " not in text
    assert [p.name for p in (tmp_path / "dumps").iterdir()] == [artifact.path.name]  # no partial left
    await backups.verify(artifact)

    shop.run("DELETE FROM orders WHERE id = 2")
    shop.run("UPDATE orders SET note = 'changed' WHERE id = 1")
    shop.run("CREATE TABLE later (id INT)")
    progress = RecordingProgress()
    summary = await backups.restore(artifact, progress)
    assert summary == f"Restored database {shop.database} on {shop.host}:{shop.port} from {artifact.path.name}"
    assert shop.rows() == [(1, "first"), (2, "zweite — ü"), (3, "third")]
    assert [s.title for s in progress.steps] == [f"Verify {artifact.path.name}", f"Restore into {shop.database}"]


async def test_an_empty_database_backs_up_and_verifies(tmp_path: Path, mysql_database: str) -> None:
    backups = make(tmp_path, mysql_database)
    artifact = await backups.backup(RecordingProgress(), label="manual")
    await backups.verify(artifact)


async def test_password_travels_in_a_private_option_file_removed_after_the_run(tmp_path: Path, shop: Shop) -> None:
    backups = make(tmp_path, shop.dsn(), mysqldump=wrapper(tmp_path, "mysqldump", real("mysqldump")),
                   mysql=wrapper(tmp_path, "mysql", real("mysql")))
    artifact = await backups.backup(RecordingProgress(), label="manual")
    await backups.restore(artifact, RecordingProgress())

    version, *dumps = recorded(tmp_path, "mysqldump")
    assert version["argv"][1:] == ["--no-defaults", "--version"] and not version["opts"]  # connects to nothing
    calls = dumps + recorded(tmp_path, "mysql")
    # mysqldump once; mysql to count the tables before the dump, to check the connection before the restore,
    # and for the restore itself.
    assert len(calls) == 1 + 3
    for call in calls:
        assert call["argv"][1].startswith("--defaults-file=")  # it must come first to be honoured
        assert (call["mode"], call["dir_mode"], call["has_password"]) == (0o600, 0o700, True)
        assert not any(PASSWORD in arg or quote(PASSWORD, safe="") in arg for arg in call["argv"])
        assert not any(PASSWORD in value for value in call["env"].values())
        assert "MYSQL_PWD" not in call["env"]
        assert not Path(call["opts"][0]).exists() and not Path(call["opts"][0]).parent.exists()
    [dump] = dumps
    assert {"--single-transaction", "--routines", "--triggers"} <= set(dump["argv"]) and "--databases" not in dump["argv"]
    assert dump["argv"][-1] == shop.database


# --- MySQL's mysqldump and GTIDs ----------------------------------------------------------------------------


def mysql_flavoured(tmp_path: Path, real: str) -> str:
    """A mysqldump that says it is MySQL 8.0's, as Oracle's prints it: records its argv, then runs the MariaDB tool
    installed here without the one option only MySQL's knows."""
    path = tmp_path / "mysqldump-8.0"
    path.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        "if '--version' in sys.argv:\n"
        "    sys.exit(print('mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)'))\n"
        f"with open({str(tmp_path / 'mysqldump-8.0.jsonl')!r}, 'a') as log: log.write(json.dumps(sys.argv) + '\\n')\n"
        f"os.execv({real!r}, [{real!r}] + [a for a in sys.argv[1:] if a != {NO_GTIDS!r}])\n"
    )
    path.chmod(0o755)
    return str(path)


async def test_mysqls_mysqldump_is_told_to_leave_gtids_out_of_the_dump(tmp_path: Path, shop: Shop) -> None:
    backups = make(tmp_path, shop.dsn(), mysqldump=mysql_flavoured(tmp_path, real("mysqldump")))
    artifact = await backups.backup(RecordingProgress(), label="manual")
    [argv] = [json.loads(line) for line in (tmp_path / "mysqldump-8.0.jsonl").read_text().splitlines()]
    assert argv[1].startswith("--defaults-file=") and NO_GTIDS in argv and argv[-1] == shop.database
    await backups.verify(artifact)


async def test_mariadbs_mysqldump_is_not_given_the_gtid_option_it_would_refuse(tmp_path: Path, shop: Shop) -> None:
    tool = await asyncio.create_subprocess_exec(real("mysqldump"), "--version", stdout=asyncio.subprocess.PIPE)
    assert b"MariaDB" in (await tool.communicate())[0]  # the tool installed here is MariaDB's
    backups = make(tmp_path, shop.dsn(), mysqldump=wrapper(tmp_path, "mysqldump", real("mysqldump")))
    artifact = await backups.backup(RecordingProgress(), label="manual")
    [_, dump] = recorded(tmp_path, "mysqldump")
    assert NO_GTIDS not in dump["argv"] and not any("gtid" in arg for arg in dump["argv"])
    await backups.verify(artifact)


@pytest.mark.parametrize(("version", "mysql"), [
    ("mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)", True),
    ("mysqldump  Ver 8.4.0 for Linux on aarch64 (MySQL Community Server - GPL)", True),
    ("mysqldump  Ver 10.13 Distrib 5.7.44, for Linux (x86_64)", True),
    ("mysqldump  Ver 8.0.35-27 for Linux on x86_64 (Percona Server (GPL), Release '27', Revision '2f8eeab2')", True),
    ("mysqldump  Ver 10.19 Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)", False),
    ("mariadb-dump from 11.4.2-MariaDB, client 10.19 for debian-linux-gnu (x86_64)", False),
    ("", False),  # a stand-in that prints nothing: no flag, the dump still works
])
def test_only_mysqls_own_mysqldump_counts_as_mysql(version: str, mysql: bool) -> None:
    assert is_oracle_mysqldump(version) is mysql


# --- cancellation ------------------------------------------------------------------------------------------


async def test_a_cancelled_dump_stops_the_tool_closes_the_file_and_leaves_nothing(tmp_path: Path, shop: Shop) -> None:
    # Incompressible output: each gzip write keeps a worker thread busy, so the cancel lands while one runs.
    endless = tmp_path / "endless-mysqldump"
    endless.write_text(
        f"#!{sys.executable}\nimport os, sys\n"
        "if '--version' in sys.argv: sys.exit(print('mysqldump  Ver 10.19 Distrib 10.11.6-MariaDB'))\n"
        f"open({str(tmp_path / 'pid')!r}, 'w').write(str(os.getpid()))\n"
        "sys.stdout.buffer.write(b'-- MariaDB dump\\n')\n"
        "while True: sys.stdout.buffer.write(os.urandom(1 << 20))\n"
    )
    endless.chmod(0o755)
    backups = make(tmp_path, shop.dsn(), mysqldump=str(endless))
    task = asyncio.create_task(backups.backup(RecordingProgress(), label="manual"))
    partial = None
    for _ in range(200):
        await asyncio.sleep(0.05)
        partial = next((p for p in (tmp_path / "dumps").glob(".*.partial") if p.stat().st_size > 4 << 20), None)
        if partial is not None:
            break
    assert partial is not None, "the dump never got going"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert list((tmp_path / "dumps").iterdir()) == []
    with pytest.raises(ProcessLookupError):
        os.kill(int((tmp_path / "pid").read_text()), 0)  # killed and reaped
    # The close ran after the last write (not beside it): the file is closed and the gzip thread is gone.
    assert not [fd for fd in os.listdir("/proc/self/fd") if partial.name in os.path.realpath(f"/proc/self/fd/{fd}")]
    for _ in range(100):
        if not [t for t in threading.enumerate() if t.name.startswith("opsbot-gzip")]:
            break
        await asyncio.sleep(0.02)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("opsbot-gzip")]


def test_option_values_escape_what_the_client_would_unescape() -> None:
    assert option_value('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


async def test_wrong_password_fails_clearly_without_the_password_and_leaves_no_file(tmp_path: Path, shop: Shop) -> None:
    wrong = "not-the-password-42"
    backups = make(tmp_path, shop.dsn(password=wrong))
    with pytest.raises(ExecutorError) as caught:
        await backups.backup(RecordingProgress(), label="manual")
    assert "Access denied" in str(caught.value) and (caught.value.state, caught.value.effect) == (NOT_WRITTEN.text,
                                                                                                  NOT_WRITTEN.effect)
    assert wrong not in str(caught.value)
    assert list((tmp_path / "dumps").iterdir()) == []


async def test_unreachable_server_fails_with_its_state(tmp_path: Path, shop: Shop) -> None:
    backups = make(tmp_path, shop.dsn(port=free_port()))
    with pytest.raises(ExecutorError) as caught:
        await backups.backup(RecordingProgress(), label="manual")
    assert "mysql failed" in str(caught.value) and (caught.value.state, caught.value.effect) == (NOT_WRITTEN.text,
                                                                                                 NOT_WRITTEN.effect)
    assert PASSWORD not in str(caught.value)


async def test_restore_with_wrong_credentials_says_nothing_was_touched(tmp_path: Path, shop: Shop) -> None:
    artifact = await make(tmp_path, shop.dsn()).backup(RecordingProgress(), label="manual")
    with pytest.raises(ExecutorError) as caught:
        await make(tmp_path, shop.dsn(password="wrong-one")).restore(artifact, RecordingProgress())
    assert (caught.value.state, caught.value.effect) == (NOT_TOUCHED.text,
                                                         NOT_TOUCHED.effect) and "wrong-one" not in str(caught.value)


async def test_a_restore_that_fails_part_way_says_what_it_left(tmp_path: Path, shop: Shop) -> None:
    backups = make(tmp_path, shop.dsn())
    artifact = await backups.backup(RecordingProgress(), label="manual")
    text = gzip.decompress(artifact.path.read_bytes()).replace(b"INSERT INTO `orders`", b"INSERT INTO `no_such_table`")
    broken = rewrite(artifact.path, gzip.compress(text))
    with pytest.raises(ExecutorError, match="no_such_table") as caught:
        await backups.restore(broken, RecordingProgress())
    assert (caught.value.state, caught.value.effect) == (PART_WAY.text, Effect.CHANGED)
    assert shop.rows() == []  # orders was dropped and created again before the failing statement


async def test_timeout_stops_the_dump_and_removes_the_partial_file(tmp_path: Path, shop: Shop) -> None:
    slow = tmp_path / "slow-mysqldump"
    slow.write_text(f"#!{sys.executable}\nimport sys, time\n"
                    "if '--version' in sys.argv: sys.exit(print('mysqldump  Ver 10.19 Distrib 10.11.6-MariaDB'))\n"
                    "time.sleep(30)\n")
    slow.chmod(0o755)
    backups = make(tmp_path, shop.dsn(), mysqldump=str(slow), timeout=1)
    with pytest.raises(ExecutorError, match="did not finish within 1 s"):
        await backups.backup(RecordingProgress(), label="manual")
    assert list((tmp_path / "dumps").iterdir()) == []


# --- verification ----------------------------------------------------------------------------------------


async def test_a_changed_file_fails_its_checksum(tmp_path: Path, shop: Shop) -> None:
    backups = make(tmp_path, shop.dsn())
    artifact = await backups.backup(RecordingProgress(), label="manual")
    data = bytearray(artifact.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.path.write_bytes(bytes(data))
    with pytest.raises(ExecutorError, match="corrupted") as caught:
        await backups.verify(artifact)
    assert (caught.value.state, caught.value.effect) == (FILE_LEFT.text, FILE_LEFT.effect)
    with pytest.raises(ExecutorError, match="corrupted") as caught:
        await backups.restore(artifact, RecordingProgress())
    assert (caught.value.state, caught.value.effect) == (NOT_TOUCHED.text, NOT_TOUCHED.effect) and len(shop.rows()) == 3


@pytest.mark.parametrize(("damage", "error"), [
    (lambda data: data[: len(data) // 2], "corrupted"),  # cut short: gzip ends early
    (lambda data: gzip.compress(gzip.decompress(data).rsplit(b"-- Dump completed", 1)[0]), "incomplete"),
    (lambda data: gzip.compress(b"SELECT 1;\n-- Dump completed\n"), "not a mysqldump file"),
    (lambda data: data[:-4] + bytes(4), "corrupted"),  # the gzip trailer's length is wrong
])
async def test_a_damaged_dump_is_refused_even_with_a_matching_checksum(tmp_path: Path, shop: Shop, damage, error: str) -> None:
    backups = make(tmp_path, shop.dsn())
    artifact = await backups.backup(RecordingProgress(), label="manual")
    damaged = rewrite(artifact.path, damage(artifact.path.read_bytes()))
    with pytest.raises(ExecutorError, match=error):
        await backups.verify(damaged)
    shop.run("DELETE FROM orders")
    with pytest.raises(ExecutorError, match=error) as caught:
        await backups.restore(damaged, RecordingProgress())
    assert (caught.value.state, caught.value.effect) == (NOT_TOUCHED.text, NOT_TOUCHED.effect) and shop.rows() == []


async def test_a_dump_without_tables_of_a_database_with_tables_is_refused(tmp_path: Path, shop: Shop) -> None:
    fake = tmp_path / "fake-mysqldump"
    fake.write_text(f"#!{sys.executable}\nprint('-- MariaDB dump 10.19')\nprint('-- Dump completed on 2026-03-01')\n")
    fake.chmod(0o755)
    backups = make(tmp_path, shop.dsn(), mysqldump=str(fake))
    with pytest.raises(ExecutorError, match="holds no CREATE TABLE, but the database has 1 table"):
        await backups.backup(RecordingProgress(), label="manual")
    assert list((tmp_path / "dumps").iterdir()) == []


async def test_missing_dump_is_reported(tmp_path: Path, shop: Shop) -> None:
    artifact = Artifact(path=tmp_path / "dumps" / "gone.sql.gz", size=1, sha256="0" * 64, created_at=START)
    with pytest.raises(ExecutorError, match=r"gone\.sql\.gz is missing"):
        await make(tmp_path, shop.dsn()).verify(artifact)


# --- configuration and retention -------------------------------------------------------------------------


async def test_unset_dsn_variable_is_named(tmp_path: Path) -> None:
    spec = MysqlBackupTarget.model_validate({"type": "mysql", "dsn_env": "SHOP_DB_URL", "directory": tmp_path})
    with pytest.raises(ExecutorError, match="environment variable SHOP_DB_URL is not set"):
        await MysqlBackups("shop", spec, {}, ManualClock(START)).backup(RecordingProgress(), label="manual")


@pytest.mark.parametrize(("dsn", "error"), [
    ("postgresql://u:s3cret@h/db", "not a mysql:// or mariadb:// URL"),
    ("mysql://u:s3cret@h:3306/", "names no database"),
    ("mysql://u:s3cret@h:99999/db", "numeric port"),
    ("mysql://u:s3cret@h/-db", "must not start with '-'"),
])
async def test_bad_dsn_errors_name_the_variable_not_the_secret(tmp_path: Path, dsn: str, error: str) -> None:
    with pytest.raises(ExecutorError) as caught:
        await make(tmp_path, dsn).backup(RecordingProgress(), label="manual")
    assert "$SHOP_DB_URL" in str(caught.value) and error in str(caught.value) and "s3cret" not in str(caught.value)


def test_target_rejects_bad_settings(tmp_path: Path) -> None:
    for bad in ({"dsn_env": "not a name"}, {"retention_days": 0}, {"timeout": 0}, {"mysqldump": ""}, {"password": "x"}):
        with pytest.raises(ValidationError):
            MysqlBackupTarget.model_validate({"type": "mysql", "dsn_env": "X", "directory": tmp_path, **bad})


async def test_delete_removes_the_file_and_refuses_one_outside_the_directory(tmp_path: Path, shop: Shop) -> None:
    backups = make(tmp_path, shop.dsn())
    artifact = await backups.backup(RecordingProgress(), label="scheduled")
    await backups.delete(artifact)
    assert not artifact.path.exists()
    await backups.delete(artifact)  # already gone: fine
    outside = tmp_path / "elsewhere.sql.gz"
    outside.write_bytes(b"keep me")
    with pytest.raises(ExecutorError, match="not deleted"):
        await backups.delete(Artifact(path=outside, size=7, sha256="0" * 64, created_at=START))
    assert outside.exists()


def test_the_test_password_needs_escaping() -> None:
    # Guards the scenario above: the password must exercise the option file's quoting.
    assert all(c in PASSWORD for c in '"#\\;') and os.sep in PASSWORD
