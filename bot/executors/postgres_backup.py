"""PostgreSQL backups: pg_dump to a verified custom-format file, pg_restore in one transaction then ANALYZE, and
retention.

It never decides when to back up or who may restore (the actions domain does) and never takes the safety backup.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from bot import adapters
from bot.clock import Clock
from bot.executors._target import FILE_LEFT, delete_within
from bot.executors._tools import run_tool, scrub, tool_environ
from bot.executors.backup_targets import PostgresBackupTarget
from bot.executors.base import Artifact, Effect, ExecutorError, Progress, TargetState

NOT_WRITTEN = TargetState("the database was not changed; no backup was written", Effect.UNTOUCHED)
NOT_TOUCHED = TargetState("the database was not touched; the restore did not start", Effect.UNTOUCHED)
ROLLED_BACK = TargetState("the restore ran in a single transaction that was rolled back; the database is as it was "
                          "before", Effect.UNTOUCHED)
# pg_restore killed part-way: the server rolls its transaction back when the connection drops, unless the COMMIT
# had already gone through; which one, opsbot cannot tell.
STOPPED = TargetState("unknown: pg_restore was stopped part-way; the database is as it was unless the restore had "
                      "just committed (look at its tables before acting)", Effect.UNKNOWN)

# libpq reads these from the environment, so a DSN's query parameters travel the same way as its password.
_QUERY_ENV = {
    "host": "PGHOST", "hostaddr": "PGHOSTADDR", "port": "PGPORT", "user": "PGUSER", "dbname": "PGDATABASE",
    "sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL", "sslcompression": "PGSSLCOMPRESSION", "sslsni": "PGSSLSNI", "requiressl": "PGREQUIRESSL",
    "gssencmode": "PGGSSENCMODE", "krbsrvname": "PGKRBSRVNAME", "channel_binding": "PGCHANNELBINDING",
    "connect_timeout": "PGCONNECT_TIMEOUT", "application_name": "PGAPPNAME", "options": "PGOPTIONS",
    "target_session_attrs": "PGTARGETSESSIONATTRS", "passfile": "PGPASSFILE",
}
# A restored dump has no planner statistics: until ANALYZE runs, queries plan blind and checks that read
# pg_stat numbers stay red.
ANALYZE_STEP = "Update the planner statistics (ANALYZE)"
SslMode = Literal["disable", "prefer", "allow", "require", "verify-ca", "verify-full"]
_SSL_MODES: dict[str, SslMode] = {mode: mode for mode in get_args(SslMode)}  # the DSN's sslmode, for asyncpg
# Without it an unreachable server holds the step until the whole dump timeout runs out.
_DEFAULT_CONNECT_TIMEOUT = "10"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Connection:
    """A DSN taken apart into libpq environment variables; the password never reaches a repr or an argv."""

    host: str
    port: int
    database: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    params: Mapping[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = {"PGHOST": self.host, "PGPORT": str(self.port), "PGDATABASE": self.database}
        if self.user:
            env["PGUSER"] = self.user
        if self.password:
            env["PGPASSWORD"] = self.password
        env.update({_QUERY_ENV[key]: value for key, value in self.params.items()})
        env.setdefault("PGCONNECT_TIMEOUT", _DEFAULT_CONNECT_TIMEOUT)
        return env

    def secrets(self) -> list[str]:
        return [self.password, quote(self.password, safe="")] if self.password else []


def parse_dsn(dsn: str, env_name: str) -> Connection:
    """Split postgresql://user:pass@host:port/db?sslmode=... ; errors name `env_name`, never the value."""
    try:
        parts = urlsplit(dsn.strip())
        port = parts.port
    except ValueError:
        raise ValueError(f"${env_name} is not a postgresql:// URL (one host, numeric port)") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"${env_name} is not a postgresql:// URL")
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(params) - set(_QUERY_ENV))
    if unknown:
        raise ValueError(f"${env_name}: unsupported connection parameter(s) {', '.join(unknown)}")
    database = params.pop("dbname", None) or unquote(parts.path.lstrip("/"))
    if not database:
        raise ValueError(f"${env_name} names no database")
    # pg_restore --dbname expands a value with "=" or a URI prefix into a whole connection string.
    if "=" in database or "://" in database:
        raise ValueError(f"${env_name}: the database name must not contain '=' or '://'")
    host = params.pop("host", None) or parts.hostname or "localhost"
    port = int(params.pop("port", None) or port or 5432)
    user = params.pop("user", None) or (unquote(parts.username) if parts.username else None)
    password = unquote(parts.password) if parts.password else None
    return Connection(host, port, database, user, password, params)


def backup_file_name(service: str, label: str, now: datetime, suffix: str) -> str:
    """`<service>-<label>-<UTC yyyymmddTHHMMSSZ><suffix>`, with anything path-like in the parts replaced."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{_safe_part(service)}-{_safe_part(label)}-{stamp}{suffix}"


def _safe_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._]+", "-", text).strip("-.") or "backup"


def unused_path(directory: Path, name: str, suffix: str) -> Path:
    """`directory/name`, or `name-2`, `name-3`… when two backups land in the same second."""
    stem = name[: -len(suffix)] if suffix and name.endswith(suffix) else name
    candidate, n = directory / name, 1
    while candidate.exists() or (directory / f".{candidate.name}.partial").exists():
        n += 1
        candidate = directory / f"{stem}-{n}{suffix}"
    return candidate


@asynccontextmanager
async def new_backup_file(directory: Path, name: str, suffix: str, *, state: TargetState) -> AsyncIterator[tuple[Path, Path]]:
    """A private `.partial` file to write a backup into, and the name it gets once verified: renamed when the
    block ends, removed if anything in it fails, so a backup that did not verify never looks like one."""
    try:
        await asyncio.to_thread(directory.mkdir, mode=0o700, parents=True, exist_ok=True)
        final = await asyncio.to_thread(unused_path, directory, name, suffix)
        partial = directory / f".{final.name}.partial"
        await asyncio.to_thread(create_private, partial)
    except OSError as exc:
        raise ExecutorError(f"cannot write to {directory}: {exc.strerror or exc}", state=state.text,
                            effect=state.effect) from None
    try:
        yield partial, final
        await asyncio.to_thread(partial.rename, final)
    except BaseException:
        await asyncio.to_thread(partial.unlink, missing_ok=True)
        raise


def create_private(path: Path) -> None:
    """Create an empty file only its owner can read: backups hold all the data, even while being written."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def file_digest(path: Path) -> tuple[str, int]:
    """sha256 hex digest and size in bytes; blocking, so callers run it in a thread."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


async def check_digest(artifact: Artifact, *, state: TargetState) -> None:
    """Raise ExecutorError unless the file exists with the recorded size and sha256."""
    try:
        digest, size = await asyncio.to_thread(file_digest, artifact.path)
    except FileNotFoundError:
        raise ExecutorError(f"{artifact.path.name} is missing from {artifact.path.parent}", state=state.text,
                            effect=state.effect) from None
    except OSError as exc:
        raise ExecutorError(f"{artifact.path.name} cannot be read: {exc.strerror}", state=state.text,
                            effect=state.effect) from None
    if size != artifact.size:
        raise ExecutorError(f"{artifact.path.name} is corrupted: size differs ({size} bytes, expected {artifact.size})",
                            state=state.text, effect=state.effect)
    if digest != artifact.sha256:
        raise ExecutorError(f"{artifact.path.name} is corrupted: checksum differs", state=state.text, effect=state.effect)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def expired(artifacts: Sequence[Artifact], now: datetime, retention_days: int, keep_min: int) -> list[Artifact]:
    """The artifacts older than `retention_days`, oldest first, sparing the `keep_min` newest whatever their age."""
    if retention_days < 0 or keep_min < 0:
        raise ValueError("retention_days and keep_min must not be negative")
    cutoff = now - timedelta(days=retention_days)
    newest_first = sorted(artifacts, key=lambda a: (a.created_at, str(a.path)), reverse=True)
    return [a for a in reversed(newest_first[keep_min:]) if a.created_at < cutoff]


def tool_env(connection: Connection | None) -> dict[str, str]:
    """The tools need PATH and the locale, but a stray PG* variable of the bot's own must not redirect them."""
    env = tool_environ("PG")
    if connection is not None:
        env.update(connection.env())
    return env


def _toc_entries(listing: str) -> int:
    """The "TOC Entries: N" of a custom-format archive's header (an empty database still has a few)."""
    if "Format: CUSTOM" not in listing:
        return 0
    match = re.search(r"^;\s+TOC Entries:\s+(\d+)", listing, re.MULTILINE)
    return int(match.group(1)) if match else 0


class PostgresBackups:
    """Backups of one database with pg_dump/pg_restore; implements `Backups`."""

    def __init__(self, service: str, target: PostgresBackupTarget, environ: Mapping[str, str], clock: Clock) -> None:
        self._service = service
        self._target = target
        self._environ = environ
        self._clock = clock

    def _connection(self, *, state: TargetState) -> Connection:
        dsn = self._environ.get(self._target.dsn_env)
        if not dsn:
            raise ExecutorError(f"environment variable {self._target.dsn_env} is not set", state=state.text, effect=state.effect)
        try:
            return parse_dsn(dsn, self._target.dsn_env)
        except ValueError as exc:
            raise ExecutorError(str(exc), state=state.text, effect=state.effect) from None

    def _names(self) -> tuple[str, str]:
        """Database and host:port for titles; the env var's name when the DSN cannot be read yet."""
        try:
            conn = parse_dsn(self._environ.get(self._target.dsn_env) or "", self._target.dsn_env)
        except ValueError:
            return f"from ${self._target.dsn_env}", "(DSN not readable)"
        return conn.database, f"{conn.host}:{conn.port}"

    def describe(self) -> str:
        database, where = self._names()
        return f"PostgreSQL database {database} on {where} (dumps in {self._target.directory})"

    def backup_plan(self) -> list[str]:
        database, where = self._names()
        return [f"Dump database {database} on {where.rsplit(':', 1)[0]}", "Verify the dump (pg_restore --list)"]

    def restore_plan(self, artifact: Artifact) -> list[str]:
        return [f"Verify {artifact.path.name}", f"Restore into {self._names()[0]}", ANALYZE_STEP]

    async def backup(self, progress: Progress, *, label: str) -> Artifact:
        conn = self._connection(state=NOT_WRITTEN)
        now = self._clock.now()
        name = backup_file_name(self._service, label, now, ".dump")
        async with new_backup_file(self._target.directory, name, ".dump", state=NOT_WRITTEN) as (partial, final):
            async with progress.step(f"Dump database {conn.database} on {conn.host}") as step:
                argv = [self._target.pg_dump, "--format=custom", f"--file={partial}", "--no-password"]
                await run_tool(argv, env=tool_env(conn), timeout=self._target.timeout, state=NOT_WRITTEN, stopped=NOT_WRITTEN,
                               secrets=conn.secrets())
                digest, size = await asyncio.to_thread(file_digest, partial)
                step.detail = human_size(size)
            async with progress.step("Verify the dump (pg_restore --list)") as step:
                entries = await self._list(partial, state=NOT_WRITTEN)
                step.detail = f"{entries} entries, sha256 {digest[:12]}"
        return Artifact(path=final, size=size, sha256=digest, created_at=now)

    async def _list(self, path: Path, *, state: TargetState) -> int:
        argv = [self._target.pg_restore, "--list", str(path)]
        listing = await run_tool(argv, env=tool_env(None), timeout=self._target.timeout, state=state, stopped=state)
        entries = _toc_entries(listing)
        if entries == 0:
            raise ExecutorError(f"{path.name} is not a readable pg_dump archive (pg_restore --list shows no entries)",
                                state=state.text, effect=state.effect)
        return entries

    async def _verify(self, artifact: Artifact, *, state: TargetState) -> int:
        await check_digest(artifact, state=state)
        return await self._list(artifact.path, state=state)

    async def verify(self, artifact: Artifact) -> None:
        await self._verify(artifact, state=FILE_LEFT)

    async def restore(self, artifact: Artifact, progress: Progress) -> str:
        conn = self._connection(state=NOT_TOUCHED)
        async with progress.step(f"Verify {artifact.path.name}") as step:
            entries = await self._verify(artifact, state=NOT_TOUCHED)
            step.detail = f"checksum matches, {entries} entries"
        async with progress.step(f"Restore into {conn.database}") as step:
            # --single-transaction: any error rolls everything back, so a failed restore changes nothing.
            argv = [
                self._target.pg_restore, "--clean", "--if-exists", "--no-owner", "--no-password",
                "--single-transaction", f"--dbname={conn.database}", str(artifact.path),
            ]
            await run_tool(argv, env=tool_env(conn), timeout=self._target.timeout, state=ROLLED_BACK, stopped=STOPPED,
                           secrets=conn.secrets())
            step.detail = "done"
        restored = f"Restored database {conn.database} on {conn.host}:{conn.port} from {artifact.path.name}"
        async with progress.step(ANALYZE_STEP) as step:
            # The data is back whatever happens here: a failure is said, never raised (a raise would read as a
            # failed restore and invite undoing a good one).
            problem = await self._analyze(conn)
            step.detail = f"warning: {problem}; run ANALYZE on {conn.database} by hand" if problem else "done"
        return f"{restored}; warning: {problem}" if problem else restored

    async def _analyze(self, conn: Connection) -> str | None:
        """ANALYZE the whole database as the restore's user; None when it ran, else what went wrong."""
        asyncpg = adapters.module("asyncpg")  # the PostgreSQL client loads only when a restore runs ANALYZE
        try:
            wait = float(conn.params.get("connect_timeout") or _DEFAULT_CONNECT_TIMEOUT)
            client = await asyncpg.connect(
                host=conn.params.get("hostaddr") or conn.host, port=conn.port, user=conn.user, password=conn.password,
                database=conn.database, passfile=conn.params.get("passfile"),
                ssl=_SSL_MODES.get(conn.params.get("sslmode", "")), timeout=wait)
            try:
                await client.execute("ANALYZE", timeout=self._target.timeout)
            finally:
                await client.close()
        except (OSError, TimeoutError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            return "ANALYZE failed: " + scrub(str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__,
                                              conn.secrets())
        return None

    async def delete(self, artifact: Artifact) -> None:
        await delete_within(self._target.directory, artifact)
