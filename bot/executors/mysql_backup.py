"""MySQL/MariaDB backups: mysqldump streamed into a verified .sql.gz, restored by the mysql client, and retention.

It never decides when to back up or who may restore (the actions domain does) and never takes the safety backup.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import os
import re
import shutil
import tempfile
import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from bot.clock import Clock
from bot.executors._target import FILE_LEFT, delete_within
from bot.executors._tools import pipe_tool, run_tool, tool_environ
from bot.executors.backup_targets import MysqlBackupTarget
from bot.executors.base import Artifact, Effect, ExecutorError, Progress, TargetState
from bot.executors.mysql_dsn import MysqlConnection, parse_mysql_dsn
from bot.executors.postgres_backup import (
    backup_file_name,
    check_digest,
    file_digest,
    human_size,
    new_backup_file,
)
from bot.views.words import plural

NOT_WRITTEN = TargetState("the database was not changed; no backup was written", Effect.UNTOUCHED)
NOT_TOUCHED = TargetState("the database was not touched; the restore did not start", Effect.UNTOUCHED)
# DDL commits on its own in MySQL, so a restore cannot run in one transaction the way pg_restore's does.
PART_WAY = TargetState("the restore stopped part-way: the tables before the failing statement were replaced from "
                       "the dump, the others are as they were", Effect.CHANGED)
# Stopped from outside (a timeout) or fed a file that stopped reading: how far the client had got is not known.
STOPPED = TargetState("unknown: the restore was stopped part-way; some tables may have been replaced from the dump "
                      "(look at them before acting)", Effect.UNKNOWN)
SUFFIX = ".sql.gz"
HEADERS = ("-- MySQL dump", "-- MariaDB dump")
TRAILER = "-- Dump completed"
_CHUNK = 1 << 20
# MariaDB 10.11.8+ puts a "sandbox mode" comment before its "-- MariaDB dump" header line.
_HEAD_LINES = 5
_CONNECT_TIMEOUT = 10
_VERSION_TIMEOUT = 30  # `mysqldump --version` connects to nothing; if it hangs, something is badly wrong
# MySQL's mysqldump (not MariaDB's) writes `SET @@GLOBAL.GTID_PURGED` when the server has gtid_mode=ON; restored
# into a server with GTIDs of its own, that statement fails after the tables before it were replaced.
NO_GTIDS = "--set-gtid-purged=OFF"
_CREATE_TABLE = re.compile(rb"^CREATE TABLE ", re.MULTILINE)
_COUNT_TABLES = ("SELECT COUNT(*) FROM information_schema.TABLES "
                 "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'")


_T = TypeVar("_T")


def option_value(value: str) -> str:
    """A value for a MySQL option file: double-quoted, with the escapes the client's parser undoes."""
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
               .replace("\r", "\\r").replace("\t", "\\t"))
    return f'"{escaped}"'


@asynccontextmanager
async def option_file(conn: MysqlConnection, *, state: TargetState) -> AsyncIterator[Path]:
    """The connection as a `[client]` option file, 0600 in a private directory that is removed afterwards:
    a password on the command line shows in `ps`, and MYSQL_PWD is readable in /proc/<pid>/environ."""
    lines = ["[client]", f"host={option_value(conn.host)}", f"port={conn.port}",
             # "localhost" would otherwise mean the Unix socket, not the host and port the DSN names.
             "protocol=TCP"]
    if conn.user:
        lines.append(f"user={option_value(conn.user)}")
    if conn.password is not None:
        lines.append(f"password={option_value(conn.password)}")

    def write() -> Path:
        private = Path(tempfile.mkdtemp(prefix="opsbot-mysql-"))  # mode 0700
        path = private / "client.cnf"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        return path

    try:
        path = await asyncio.to_thread(write)
    except OSError as exc:
        raise ExecutorError(f"cannot write the temporary MySQL option file: {exc.strerror or exc}", state=state.text,
                            effect=state.effect) from None
    try:
        yield path
    finally:
        await asyncio.to_thread(shutil.rmtree, path.parent, True)


def mysql_env() -> dict[str, str]:
    """PATH and the locale, without a stray MYSQL_PWD/MYSQL_HOST of the bot's own redirecting the tools."""
    return tool_environ("MYSQL")


def is_oracle_mysqldump(version: str) -> bool:
    """Whether `mysqldump --version` printed MySQL's tool (Oracle's or Percona's build), which knows
    --set-gtid-purged, rather than MariaDB's, which refuses it. Unrecognised output counts as not MySQL: the dump
    then still works, only without the flag."""
    # MySQL 8: "mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)"; MySQL 5.7: "mysqldump
    # Ver 10.13 Distrib 5.7.44, …"; MariaDB: "mysqldump  Ver 10.19 Distrib 10.11.6-MariaDB, …" or
    # "mariadb-dump from 11.4.2-MariaDB, client 10.19 …".
    return "Ver " in version and "mariadb" not in version.lower()


def read_dump(path: Path) -> tuple[list[str], int, str]:
    """Read a .sql.gz through to its gzip trailer (CRC and length are checked at the end of the stream): its
    first lines, how many CREATE TABLE statements, and the last non-empty line. Blocking."""
    head: list[str] = []
    last, tables, carry = "", 0, b""
    with gzip.open(path, "rb") as gz:
        while True:
            chunk = gz.read(_CHUNK)
            data = carry + chunk
            # At the end of the stream the unterminated rest is a line too.
            cut = len(data) if not chunk else data.rfind(b"\n") + 1
            whole, carry = data[:cut], data[cut:]
            if len(head) < _HEAD_LINES and whole:
                head += [line.decode(errors="replace") for line in whole.split(b"\n")[:_HEAD_LINES - len(head)]]
            tables += len(_CREATE_TABLE.findall(whole))
            tail = whole.rstrip()
            if tail:
                last = tail[tail.rfind(b"\n") + 1:].decode(errors="replace")
            if not chunk:
                return head, tables, last


async def check_dump(path: Path, *, state: TargetState, tables: int = 0) -> int:
    """Raise ExecutorError unless `path` is a whole mysqldump: gzip intact, header, trailer, and at least one
    CREATE TABLE when the database had `tables` tables. Returns the CREATE TABLE count."""
    try:
        head, created, last = await asyncio.to_thread(read_dump, path)
    except FileNotFoundError:
        raise ExecutorError(f"{path.name} is missing from {path.parent}", state=state.text, effect=state.effect) from None
    except (OSError, EOFError, zlib.error) as exc:
        raise ExecutorError(f"{path.name} is corrupted: {str(exc) or type(exc).__name__}", state=state.text,
                            effect=state.effect) from None
    if not any(line.startswith(HEADERS) for line in head):
        raise ExecutorError(f"{path.name} is not a mysqldump file (it does not start with \"-- MySQL dump\")", state=state.text,
                            effect=state.effect)
    if not last.startswith(TRAILER):
        raise ExecutorError(f"{path.name} is incomplete: it does not end with \"{TRAILER}\"", state=state.text,
                            effect=state.effect)
    if tables and not created:
        raise ExecutorError(f"{path.name} holds no CREATE TABLE, but the database has {tables} table(s)", state=state.text,
                            effect=state.effect)
    return created


class _OneThread:
    """Blocking gzip calls on one worker thread of its own, run in the order they are made. asyncio cannot stop a
    thread part-way: when a dump or restore is cancelled, a write or read may still be running, and the close
    must queue behind it rather than race it (a GzipFile is not thread-safe)."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opsbot-gzip")

    async def __call__(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def last(self, fn: Callable[..., _T], *args: Any) -> _T:
        """The final call (the close). Shielded: a second cancellation must not take it off the queue, leaving
        the file open; the thread ends once it has run."""
        try:
            return await asyncio.shield(self(fn, *args))
        finally:
            self.end()

    def end(self) -> None:
        """No more calls: the thread ends after those queued (none is dropped)."""
        self._pool.shutdown(wait=False)


def _open_gzip(path: Path) -> gzip.GzipFile:
    # The partial file already exists with mode 0600 (new_backup_file); open it without re-creating it.
    return gzip.GzipFile(filename="", mode="wb", fileobj=path.open("r+b"), mtime=0)


def _close(gz: gzip.GzipFile) -> None:
    """Write the gzip trailer and close the file under it (GzipFile leaves a passed-in file open)."""
    handle = gz.fileobj
    try:
        gz.close()
    finally:
        if isinstance(handle, io.IOBase):  # always: the file _open_gzip opened (typeshed types it loosely)
            handle.close()


async def _gzip_chunks(path: Path, *, state: TargetState) -> AsyncIterator[bytes]:
    """The decompressed dump, a chunk at a time (it was verified just before; a read error now is the disk's)."""
    thread = _OneThread()
    try:
        handle = await thread(gzip.GzipFile, path, "rb")
    except OSError as exc:
        thread.end()
        raise ExecutorError(f"{path.name} cannot be read: {exc.strerror or exc}", state=state.text, effect=state.effect) from None
    try:
        while True:
            try:
                chunk = await thread(handle.read, _CHUNK)
            except (OSError, EOFError, zlib.error) as exc:
                raise ExecutorError(f"{path.name} could not be read to the end: {str(exc) or type(exc).__name__}",
                                    state=state.text, effect=state.effect) from None
            if not chunk:
                return
            yield chunk
    finally:
        await thread.last(handle.close)


class MysqlBackups:
    """Backups of one MySQL/MariaDB database with mysqldump/mysql; implements `Backups`."""

    def __init__(self, service: str, target: MysqlBackupTarget, environ: Mapping[str, str], clock: Clock) -> None:
        self._service = service
        self._target = target
        self._environ = environ
        self._clock = clock

    def _connection(self, *, state: TargetState) -> MysqlConnection:
        env = self._target.dsn_env
        dsn = self._environ.get(env)
        if not dsn:
            raise ExecutorError(f"environment variable {env} is not set", state=state.text, effect=state.effect)
        try:
            conn = parse_mysql_dsn(dsn)
        except ValueError as exc:
            raise ExecutorError(f"${env}: {exc}", state=state.text, effect=state.effect) from None
        if conn.database.startswith("-"):
            # mysqldump takes the database as a bare argument; one starting with "-" would be read as an option.
            raise ExecutorError(f"${env}: the database name must not start with '-'", state=state.text, effect=state.effect)
        return conn

    def _names(self) -> tuple[str, str]:
        """Database and host:port for titles; the env var's name when the DSN cannot be read yet."""
        try:
            conn = parse_mysql_dsn(self._environ.get(self._target.dsn_env) or "")
        except ValueError:
            return f"from ${self._target.dsn_env}", "(DSN not readable)"
        return conn.database, f"{conn.host}:{conn.port}"

    def describe(self) -> str:
        database, where = self._names()
        return f"MySQL database {database} on {where} (dumps in {self._target.directory})"

    def backup_plan(self) -> list[str]:
        database, where = self._names()
        return [f"Dump database {database} on {where.rsplit(':', 1)[0]}", "Verify the dump (read it back)"]

    def restore_plan(self, artifact: Artifact) -> list[str]:
        return [f"Verify {artifact.path.name}", f"Restore into {self._names()[0]}"]

    async def backup(self, progress: Progress, *, label: str) -> Artifact:
        conn = self._connection(state=NOT_WRITTEN)
        now = self._clock.now()
        name = backup_file_name(self._service, label, now, SUFFIX)
        async with new_backup_file(self._target.directory, name, SUFFIX, state=NOT_WRITTEN) as (partial, final):
            async with (option_file(conn, state=NOT_WRITTEN) as options,
                        progress.step(f"Dump database {conn.database} on {conn.host}") as step):
                tables = await self._count_tables(options, conn, state=NOT_WRITTEN)
                digest, size = await self._dump(options, conn, partial)
                step.detail = f"{plural(tables, 'table')}, {human_size(size)}"
            async with progress.step("Verify the dump (read it back)") as step:
                created = await check_dump(partial, state=NOT_WRITTEN, tables=tables)
                step.detail = f"{created} CREATE TABLE, complete, sha256 {digest[:12]}"
        return Artifact(path=final, size=size, sha256=digest, created_at=now)

    async def _count_tables(self, options: Path, conn: MysqlConnection, *, state: TargetState) -> int:
        """How many base tables the database has, so that a dump without any is caught."""
        argv = [self._target.mysql, f"--defaults-file={options}", f"--connect-timeout={_CONNECT_TIMEOUT}",
                "--batch", "--skip-column-names", f"--database={conn.database}", f"--execute={_COUNT_TABLES}"]
        text = (await run_tool(argv, env=mysql_env(), timeout=self._target.timeout, state=state, stopped=state,
                               secrets=conn.secrets(), keep=64)).strip()
        if not text.isdigit():
            raise ExecutorError(f"could not count the tables of {conn.database}: the server answered {text[:40]!r}",
                                state=state.text, effect=state.effect)
        return int(text)

    async def _dump(self, options: Path, conn: MysqlConnection, partial: Path) -> tuple[str, int]:
        # --defaults-file (not --defaults-extra-file): a ~/.my.cnf read after an extra file would override the
        # DSN's user and password. No --databases: without its CREATE DATABASE/USE lines the dump restores into
        # the database the DSN names, not whatever name it had when it was taken.
        argv = [
            self._target.mysqldump, f"--defaults-file={options}", "--single-transaction", "--routines", "--triggers",
            "--hex-blob", "--no-tablespaces", "--default-character-set=utf8mb4", *await self._gtid_options(),
            conn.database,
        ]
        # Compressing a chunk takes a while: not on the event loop, and every call on the same thread (_OneThread).
        thread = _OneThread()
        try:
            gz = await thread(_open_gzip, partial)
        except OSError as exc:
            thread.end()
            raise ExecutorError(f"cannot write to {partial.parent}: {exc.strerror or exc}", state=NOT_WRITTEN.text,
                                effect=NOT_WRITTEN.effect) from None

        async def sink(chunk: bytes) -> None:
            try:
                await thread(gz.write, chunk)
            except OSError as exc:
                raise ExecutorError(f"cannot write to {partial.parent}: {exc.strerror or exc}", state=NOT_WRITTEN.text,
                                effect=NOT_WRITTEN.effect) from None

        dumped = False
        try:
            await pipe_tool(argv, env=mysql_env(), timeout=self._target.timeout, state=NOT_WRITTEN,
                            stopped=NOT_WRITTEN, secrets=conn.secrets(), sink=sink)
            dumped = True
        finally:
            try:
                await thread.last(_close, gz)  # writes the gzip trailer, after any write still under way
            except OSError as exc:
                if dumped:  # otherwise the dump's own failure is the one to report
                    raise ExecutorError(f"cannot write to {partial.parent}: {exc.strerror or exc}", state=NOT_WRITTEN.text,
                                effect=NOT_WRITTEN.effect) from None
        return await asyncio.to_thread(file_digest, partial)

    async def _gtid_options(self) -> list[str]:
        """NO_GTIDS when the mysqldump in use is MySQL's; MariaDB's has no such option (and writes no GTIDs
        unless asked to)."""
        # --no-defaults: an option file meant for the dump (or a broken one) must not change what --version says.
        argv = [self._target.mysqldump, "--no-defaults", "--version"]
        version = await run_tool(argv, env=mysql_env(), timeout=min(self._target.timeout, _VERSION_TIMEOUT),
                                 state=NOT_WRITTEN, stopped=NOT_WRITTEN, keep=400)
        return [NO_GTIDS] if is_oracle_mysqldump(version) else []

    async def _verify(self, artifact: Artifact, *, state: TargetState) -> int:
        await check_digest(artifact, state=state)
        return await check_dump(artifact.path, state=state)

    async def verify(self, artifact: Artifact) -> None:
        await self._verify(artifact, state=FILE_LEFT)

    async def restore(self, artifact: Artifact, progress: Progress) -> str:
        conn = self._connection(state=NOT_TOUCHED)
        async with progress.step(f"Verify {artifact.path.name}") as step:
            created = await self._verify(artifact, state=NOT_TOUCHED)
            step.detail = f"checksum matches, {created} CREATE TABLE, complete"
        async with (option_file(conn, state=NOT_TOUCHED) as options,
                    progress.step(f"Restore into {conn.database}") as step):
            # Connect once first: wrong credentials or an unknown database must not read as a half-done restore.
            await self._count_tables(options, conn, state=NOT_TOUCHED)
            # The mysql client stops at the first failing statement (no --force).
            argv = [self._target.mysql, f"--defaults-file={options}", f"--connect-timeout={_CONNECT_TIMEOUT}",
                    "--batch", "--default-character-set=utf8mb4", f"--database={conn.database}"]
            await pipe_tool(argv, env=mysql_env(), timeout=self._target.timeout, state=PART_WAY, stopped=STOPPED,
                            secrets=conn.secrets(), feed=_gzip_chunks(artifact.path, state=STOPPED))
            step.detail = "done"
        return f"Restored database {conn.database} on {conn.host}:{conn.port} from {artifact.path.name}"

    async def delete(self, artifact: Artifact) -> None:
        await delete_within(self._target.directory, artifact)
