"""Who hears that a run ended, besides its own message: features that start runs from elsewhere (an alert's Run
button) add a listener at start-up, and the run flows call `ended` once a run's final state is stored.

The run engine knows the listeners only by this signature, so `bot.runs` imports none of them. Best effort, like a
run's message: a listener that fails is logged and never changes the run.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from bot.runs.models import ActionRun

log = logging.getLogger(__name__)

RunListener = Callable[[ActionRun], Awaitable[None]]


class RunListeners:
    def __init__(self) -> None:
        self._listeners: list[RunListener] = []

    def add(self, listener: RunListener) -> None:
        if listener not in self._listeners:
            self._listeners.append(listener)

    async def ended(self, run: ActionRun) -> None:
        """Tell every listener that `run` (as stored, in a final state) ended."""
        for listener in self._listeners:
            try:
                await listener(run)
            except Exception:
                log.exception("a listener of run %s's end failed", run.id)
