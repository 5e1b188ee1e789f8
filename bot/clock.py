"""Time as a dependency: the system clock, and a manual one for tests and demos.

Everything time-based takes a Clock so a test moves time instead of sleeping. Times are UTC.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, for durations."""

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """A clock that moves only when told to; `sleep` returns once `advance` passes its deadline."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._elapsed = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._elapsed

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._elapsed + max(seconds, 0.0), future))
        await future

    def advance(self, seconds: float) -> None:
        self._elapsed += seconds
        self._now += timedelta(seconds=seconds)
        due = [(at, fut) for at, fut in self._sleepers if at <= self._elapsed]
        self._sleepers = [(at, fut) for at, fut in self._sleepers if at > self._elapsed]
        for _, future in due:
            if not future.done():
                future.set_result(None)
