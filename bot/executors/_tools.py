"""Running the backup kinds' command-line tools (pg_dump, mysqldump, redis-cli…): no shell, bounded memory, a timeout.

It builds no argv and reads no secret: each backup kind says what to run, with which environment and what to hide.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from bot.executors.base import Effect, ExecutorError, TargetState

_CHUNK = 1 << 20
_STDERR_KEEP = 16 * 1024  # the end of stderr is where tools say why they failed


def tool_environ(*drop_prefixes: str) -> dict[str, str]:
    """The bot's environment (PATH, the locale) without the variables, such as PGHOST or MYSQL_PWD, that would
    point a tool at some other server or account than the catalog names."""
    return {key: value for key, value in os.environ.items() if not key.startswith(drop_prefixes)}


def scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def error_tail(stderr: bytes, secrets: Sequence[str], lines: int = 5, chars: int = 800) -> str:
    """The last few non-empty lines of a tool's stderr on one line, secrets replaced by ***."""
    kept = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()][-lines:]
    return scrub(" / ".join(kept)[-chars:], secrets)


async def pipe_tool(
    argv: Sequence[str], *, env: Mapping[str, str], timeout: float, state: TargetState, stopped: TargetState,
    secrets: Sequence[str] = (), feed: AsyncIterator[bytes] | None = None,
    sink: Callable[[bytes], Awaitable[None]] | None = None,
) -> None:
    """Run one program without a shell, streaming `feed` into its stdin and its stdout into `sink` chunk by
    chunk (bounded memory). ExecutorError with the end of its stderr (secrets scrubbed) and `state` if it fails,
    or with `stopped` if it is still running after `timeout` seconds (it is killed then: a tool that was writing
    to the target may have got anywhere)."""
    name = Path(argv[0]).name
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if feed is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if sink is not None else asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, env=dict(env),
        )
    except OSError as exc:
        # Nothing ran, whatever the tool would have done had it started.
        raise ExecutorError(f"{name} could not be started: {exc.strerror or exc}",
                            state=f"nothing was changed: {name} never ran", effect=Effect.UNTOUCHED) from None
    err = bytearray()

    async def read_stderr() -> None:
        assert proc.stderr is not None
        while chunk := await proc.stderr.read(_CHUNK):
            err.extend(chunk)
            del err[:-_STDERR_KEEP]

    async def write_stdin() -> None:
        assert proc.stdin is not None and feed is not None
        try:
            async for chunk in feed:
                proc.stdin.write(chunk)
                await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the tool stopped reading (it failed); its exit status and stderr say why
        finally:
            proc.stdin.close()

    async def read_stdout() -> None:
        assert proc.stdout is not None and sink is not None
        while chunk := await proc.stdout.read(_CHUNK):
            await sink(chunk)

    try:
        async with asyncio.timeout(timeout):
            # A task group: when one side fails (a full disk), the others are cancelled rather than left running.
            async with asyncio.TaskGroup() as group:
                group.create_task(read_stderr())
                if feed is not None:
                    group.create_task(write_stdin())
                if sink is not None:
                    group.create_task(read_stdout())
            await proc.wait()
    except BaseException as exc:
        # A timeout, a failed write or a cancelled action must not leave the tool dumping or restoring (or
        # pg_restore holding its locks) behind.
        try:
            proc.kill()
        except ProcessLookupError:
            pass
        # asyncio reports the exit only once the pipes are at their end: a reader that stopped (cancelled, or its
        # sink failed) leaves output unread, and `wait()` would hang. What is left is dropped.
        for stream in (proc.stdout, proc.stderr):
            while stream is not None and await stream.read(_CHUNK):
                pass
        await proc.wait()
        if isinstance(exc, TimeoutError):
            raise ExecutorError(f"{name} did not finish within {timeout:g} s and was stopped", state=stopped.text,
                                effect=stopped.effect) from None
        if isinstance(exc, BaseExceptionGroup):
            raise exc.exceptions[0] from None  # the first failure is the one worth a message
        raise
    if proc.returncode != 0:
        tail = error_tail(bytes(err), secrets)
        raise ExecutorError(f"{name} failed (exit {proc.returncode}): {tail or 'no error output'}", state=state.text,
                            effect=state.effect)


async def run_tool(argv: Sequence[str], *, env: Mapping[str, str], timeout: float, state: TargetState,
                   stopped: TargetState, secrets: Sequence[str] = (), keep: int | None = None) -> str:
    """Run one program without a shell and return its stdout (only the first `keep` bytes when given: enough for
    a version or a count, whatever the tool prints); failures as `pipe_tool`'s."""
    out = bytearray()

    async def collect(chunk: bytes) -> None:
        out.extend(chunk if keep is None else chunk[: max(0, keep - len(out))])

    await pipe_tool(argv, env=env, timeout=timeout, state=state, stopped=stopped, secrets=secrets, sink=collect)
    return out.decode(errors="replace")
