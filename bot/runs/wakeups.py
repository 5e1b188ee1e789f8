"""Wake-ups for steps that wait on the store: a `manual` step reads its run every few seconds for a person's answer
(the press may land on any replica), and a press or a Cancel handled by this replica wakes it at once instead.

Not responsible for what the waiting step reads: the store stays the truth, a wake-up only says "read it now".
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from bot.clock import Clock


class Wakeups:
    def __init__(self) -> None:
        self._waiting: defaultdict[int, set[asyncio.Event]] = defaultdict(set)

    def wake(self, run_id: int) -> None:
        """Steps of `run_id` waiting here read the store now."""
        for event in self._waiting.get(run_id, ()):
            event.set()

    async def wait(self, run_id: int, clock: Clock, seconds: float) -> None:
        """Return after `seconds` on `clock`, or sooner when `run_id` is woken."""
        event = asyncio.Event()
        self._waiting[run_id].add(event)
        sleeping = asyncio.ensure_future(clock.sleep(seconds))
        woken = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait((sleeping, woken), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeping, woken):
                task.cancel()
            self._waiting[run_id].discard(event)
            if not self._waiting[run_id]:
                del self._waiting[run_id]
