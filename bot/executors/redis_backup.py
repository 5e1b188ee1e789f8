"""Redis backups: `redis-cli --rdb` into a verified RDB file, and retention. Restores are refused with the steps.

An RDB snapshot can only be loaded by a Redis server at start-up, so opsbot never restores one itself; it never
decides when to back up (the actions domain does) and never takes the safety backup.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from bot.clock import Clock
from bot.executors._target import FILE_LEFT, delete_within
from bot.executors._tools import run_tool, tool_environ
from bot.executors.backup_targets import RedisBackupTarget
from bot.executors.base import Artifact, Effect, ExecutorError, Progress, TargetState
from bot.executors.postgres_backup import (
    backup_file_name,
    check_digest,
    file_digest,
    human_size,
    new_backup_file,
)

NOT_WRITTEN = TargetState("Redis was not changed; no backup was written", Effect.UNTOUCHED)
NOT_TOUCHED = TargetState("Redis was not touched; the restore did not start", Effect.UNTOUCHED)
SUFFIX = ".rdb"
EOF_OPCODE = 0xFF
_MAGIC = re.compile(rb"^REDIS(\d{4})$")
# The CRC64 trailer after the EOF opcode exists from RDB version 5 (Redis 2.6) on.
_FIRST_CHECKSUMMED_VERSION = 5
_TRAILER = 9  # EOF opcode + 8-byte checksum


@dataclass(frozen=True)
class RedisServer:
    """A redis:// URL taken apart; the password never reaches a repr, an argv or a message."""

    host: str
    port: int
    tls: bool = False
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    def argv(self) -> list[str]:
        args = ["-h", self.host, "-p", str(self.port)]
        if self.user:
            args += ["--user", self.user]
        if self.tls:
            args.append("--tls")
        return args

    def env(self) -> dict[str, str]:
        """redis-cli's `-a`/`-u` put the password in argv (visible in `ps`); REDISCLI_AUTH keeps it out."""
        env = tool_environ("REDISCLI_AUTH")
        if self.password:
            env["REDISCLI_AUTH"] = self.password
        return env

    def secrets(self) -> list[str]:
        return [self.password, quote(self.password, safe="")] if self.password else []


def parse_redis_url(url: str, env_name: str) -> RedisServer:
    """Split redis://[user:pass@]host:port[/db] (rediss:// for TLS); errors name `env_name`, never the value."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ValueError(f"${env_name} is not a redis:// URL (one host, numeric port)") from None
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"${env_name} is not a redis:// or rediss:// URL")
    if parts.query:
        raise ValueError(f"${env_name}: connection parameters (?…) are not supported for backups")
    return RedisServer(
        host=parts.hostname or "localhost", port=port or 6379, tls=parts.scheme == "rediss",
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def read_rdb_frame(path: Path) -> tuple[int, bytes]:
    """The RDB version from the 9-byte header, and the file's last 9 bytes. Blocking."""
    with path.open("rb") as handle:
        head = handle.read(9)
        size = handle.seek(0, 2)
        handle.seek(max(0, size - _TRAILER))
        tail = handle.read(_TRAILER)
    match = _MAGIC.match(head)
    if match is None:
        raise ValueError("it does not start with \"REDIS\" and a 4-digit version")
    return int(match.group(1)), tail


async def check_rdb(path: Path, *, state: TargetState) -> tuple[int, bool]:
    """Raise ExecutorError unless `path` has an RDB header and ends in the EOF opcode and its checksum; the
    version, and whether the checksum is set (Redis writes 0 when `rdbchecksum no`)."""
    try:
        version, tail = await asyncio.to_thread(read_rdb_frame, path)
    except FileNotFoundError:
        raise ExecutorError(f"{path.name} is missing from {path.parent}", state=state.text, effect=state.effect) from None
    except OSError as exc:
        raise ExecutorError(f"{path.name} cannot be read: {exc.strerror or exc}", state=state.text, effect=state.effect) from None
    except ValueError as exc:
        raise ExecutorError(f"{path.name} is not an RDB file: {exc}", state=state.text, effect=state.effect) from None
    if version < _FIRST_CHECKSUMMED_VERSION:
        raise ExecutorError(f"{path.name} is RDB version {version}, older than opsbot reads (5 and later)", state=state.text,
                            effect=state.effect)
    if len(tail) < _TRAILER or tail[0] != EOF_OPCODE:
        raise ExecutorError(f"{path.name} is incomplete: it does not end with the RDB end-of-file marker", state=state.text,
                            effect=state.effect)
    return version, tail[1:] != bytes(8)


class RestoreUnsupported(ExecutorError):
    """A restore opsbot will not do itself; the message says how a person does it."""


def manual_restore(file: str | None, directory: Path) -> str:
    what = f"`{file}`" if file else f"a backup from {directory}"
    return (
        "opsbot cannot restore Redis: an RDB snapshot is only read by a Redis server when it starts, not by a "
        f"running one. To restore {what} by hand: 1) stop Redis; 2) copy the file into its data directory "
        "(`CONFIG GET dir`) under its `dbfilename` (`dump.rdb` by default), replacing the one there; 3) if "
        "`appendonly` is on, move the appendonly files away (Redis would load them instead); 4) start Redis "
        "and check its keys (`INFO keyspace`)."
    )


class RedisBackups:
    """RDB snapshots of one Redis server taken with redis-cli; implements `Backups` (restore refuses)."""

    def __init__(self, service: str, target: RedisBackupTarget, environ: Mapping[str, str], clock: Clock) -> None:
        self._service = service
        self._target = target
        self._environ = environ
        self._clock = clock

    def _server(self, *, state: TargetState) -> RedisServer:
        env = self._target.url_env
        url = self._environ.get(env)
        if not url:
            raise ExecutorError(f"environment variable {env} is not set", state=state.text, effect=state.effect)
        try:
            return parse_redis_url(url, env)
        except ValueError as exc:
            raise ExecutorError(str(exc), state=state.text, effect=state.effect) from None

    def _where(self) -> str:
        try:
            server = parse_redis_url(self._environ.get(self._target.url_env) or "", self._target.url_env)
        except ValueError:
            return f"from ${self._target.url_env}"
        return f"{server.host}:{server.port}"

    def describe(self) -> str:
        return f"Redis server {self._where()}, all databases (snapshots in {self._target.directory})"

    def backup_plan(self) -> list[str]:
        return [f"Snapshot Redis on {self._where()} (redis-cli --rdb)", "Verify the snapshot (RDB header and end marker)"]

    def restore_plan(self, artifact: Artifact) -> list[str]:
        # Raised while the plan is made: nobody is asked to approve, and no safety backup is taken, in vain.
        raise RestoreUnsupported(manual_restore(artifact.path.name, self._target.directory), state=NOT_TOUCHED.text,
                                 effect=NOT_TOUCHED.effect)

    async def backup(self, progress: Progress, *, label: str) -> Artifact:
        server = self._server(state=NOT_WRITTEN)
        now = self._clock.now()
        name = backup_file_name(self._service, label, now, SUFFIX)
        async with new_backup_file(self._target.directory, name, SUFFIX, state=NOT_WRITTEN) as (partial, final):
            async with progress.step(f"Snapshot Redis on {server.host}:{server.port}") as step:
                argv = [self._target.redis_cli, *server.argv(), "--no-auth-warning", "--rdb", str(partial)]
                await run_tool(argv, env=server.env(), timeout=self._target.timeout, state=NOT_WRITTEN,
                               stopped=NOT_WRITTEN, secrets=server.secrets())
                digest, size = await asyncio.to_thread(file_digest, partial)
                step.detail = human_size(size)
            async with progress.step("Verify the snapshot (RDB header and end marker)") as step:
                version, checksummed = await check_rdb(partial, state=NOT_WRITTEN)
                step.detail = (f"RDB version {version}, complete" + ("" if checksummed else ", no CRC (rdbchecksum no)")
                               + f", sha256 {digest[:12]}")
        return Artifact(path=final, size=size, sha256=digest, created_at=now)

    async def verify(self, artifact: Artifact) -> None:
        await check_digest(artifact, state=FILE_LEFT)
        await check_rdb(artifact.path, state=FILE_LEFT)

    async def restore(self, artifact: Artifact, progress: Progress) -> str:
        raise RestoreUnsupported(manual_restore(artifact.path.name, self._target.directory), state=NOT_TOUCHED.text,
                                 effect=NOT_TOUCHED.effect)

    async def delete(self, artifact: Artifact) -> None:
        await delete_within(self._target.directory, artifact)
