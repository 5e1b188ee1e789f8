"""Group commit: statements asked for while a transaction is being written go together in the next one, so a burst of
concurrent requests costs one transaction (one thread hop on SQLite, one connection and one commit on PostgreSQL)
instead of one each, and a lone statement is written at once, never held back to wait for company.

Each caller still waits for its own statement to be committed and gets its own rows or its own error: what the caller
may do after the write (a request's work after its audit entry) is exactly what it could do before. Not responsible
for the SQL (bot/store/audit_sql.py) nor for the transaction itself (each backend's `_atomic`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bot.errors import StoreUnavailable
from bot.store.sql import Statement

Rows = list[dict[str, Any]]
Atomic = Callable[[Sequence[Statement]], Awaitable[list[Rows]]]

# At most this many statements per transaction: a longer burst is written in several, one after another.
MOST = 100


class GroupCommit:
    """`writers`: transactions in flight at once. One on SQLite (one connection does all the writing); on PostgreSQL a
    few, each on its own pooled connection, so a burst does not queue behind one transaction's round trips. The
    statements of different callers are independent (each caller's next statement waits for its previous one)."""

    def __init__(self, atomic: Atomic, *, most: int = MOST, writers: int = 1) -> None:
        self._atomic, self._most, self._most_writers = atomic, most, writers
        self._waiting: list[tuple[Statement, asyncio.Future[Rows]]] = []
        self._writers: set[asyncio.Task[None]] = set()  # kept here: the loop holds its tasks only weakly

    async def run(self, statement: Statement) -> Rows:
        """The statement's rows (for RETURNING), once the transaction that holds it is committed."""
        done: asyncio.Future[Rows] = asyncio.get_running_loop().create_future()
        self._waiting.append((statement, done))
        if self._busy() < self._most_writers:
            writer = asyncio.ensure_future(self._write())
            self._writers.add(writer)
            writer.add_done_callback(self._writers.discard)
        return await done

    async def _write(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:self._most], self._waiting[self._most:]
                try:
                    await self._commit(batch)
                finally:
                    _abandon(batch)
        finally:
            if not self._busy(besides=asyncio.current_task()):
                _abandon(self._waiting)  # cut short with no other writer left to take them: nobody waits forever
                self._waiting = []

    def _busy(self, besides: asyncio.Future[Any] | None = None) -> int:
        """Writers still at work. One that has just finished may still be in the set (its removal runs after the
        caller it answered wakes): it does not count, else the next statement could wait for a writer that is gone."""
        return sum(writer is not besides and not writer.done() for writer in self._writers)

    async def _commit(self, batch: list[tuple[Statement, asyncio.Future[Rows]]]) -> None:
        try:
            results = await self._atomic([statement for statement, _ in batch])
        except StoreUnavailable as exc:  # nothing of the batch was written: each caller gets the outage
            _fail(batch, exc)
            return
        except Exception as exc:  # noqa: BLE001 - handed to the callers, whatever it is
            if len(batch) == 1:
                _fail(batch, exc)
                return
            # A statement the database refuses fails only its own caller: the others are written one by one.
            for one in batch:
                await self._commit([one])
            return
        for (_, done), rows in zip(batch, results, strict=True):
            if not done.done():  # a caller that stopped waiting (cancelled) has its statement written all the same
                done.set_result(rows)


def _abandon(batch: Sequence[tuple[Statement, asyncio.Future[Rows]]]) -> None:
    """Only when the writer itself is cut short (its task cancelled as the loop closes): nobody waits forever."""
    for _, done in batch:
        if not done.done():
            done.cancel()


def _fail(batch: Sequence[tuple[Statement, asyncio.Future[Rows]]], exc: BaseException) -> None:
    for _, done in batch:
        if not done.done():
            done.set_exception(exc)
