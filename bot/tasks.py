"""Work that outlives the request that started it: owned by the core, not by a Slack listener.

Tasks are held strongly (asyncio keeps only weak references), failures are logged, and shutdown waits for them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from bot.errors import store_down

log = logging.getLogger(__name__)


class BackgroundTasks:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._services: set[asyncio.Task[Any]] = set()

    def run_forever(self, work: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """A loop that lives as long as the bot (expiry, schedulers): not waited for, cancelled at shutdown."""
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._services.add(task)
        task.add_done_callback(self._services.discard)
        return task

    def spawn(self, work: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or (exc := task.exception()) is None:
            return
        if store_down(exc):  # the store logs its outage once; a task it stopped is not another traceback
            log.info("background task %s stopped: the store could not be reached", task.get_name())
        else:
            log.error("background task %s failed", task.get_name(), exc_info=exc)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def idle(self) -> None:
        """Wait until nothing is running (tests and shutdown use it)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def drain(self, timeout: float) -> None:
        """Stop the loops, give running work `timeout` seconds to finish, then cancel what is left."""
        for service in list(self._services):
            service.cancel()
        if self._services:
            await asyncio.wait(set(self._services))
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            log.warning("cancelling %s at shutdown", task.get_name())
            task.cancel()
        if pending:
            await asyncio.wait(pending)
