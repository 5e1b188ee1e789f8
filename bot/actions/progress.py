"""Live step reporting for an action run: each step's state is stored first, then the Slack message follows.

Implements `bot.executors.base.Progress`. Executors name their steps; planned steps are matched by title.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace

from bot.actions.models import ActionStep, StepState
from bot.clock import Clock
from bot.errors import OpsbotError
from bot.executors.base import ExecutorError, Step
from bot.store import Store
from bot.tracing import NO_TRACER, Tracer

log = logging.getLogger(__name__)


class RunProgress:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        run_id: int,
        steps: list[ActionStep],
        refresh: Callable[[list[ActionStep]], Awaitable[None]],
        prefix: str = "",
        *,
        tracer: Tracer = NO_TRACER,
        kind: str = "action",
    ) -> None:
        self._store, self._clock, self._run_id = store, clock, run_id
        self.steps = steps  # shared with prefixed views
        self._refresh, self._prefix = refresh, prefix
        self._tracer, self._kind = tracer, kind  # one span per step, named by the run's kind

    def prefixed(self, prefix: str) -> RunProgress:
        """The same run's progress with titles prefixed (the safety backup before a restore)."""
        return RunProgress(self._store, self._clock, self._run_id, self.steps, self._refresh, self._prefix + prefix,
                           tracer=self._tracer, kind=self._kind)

    def step(self, title: str) -> AbstractAsyncContextManager[Step]:
        return self._step(self._prefix + title)

    @asynccontextmanager
    async def _step(self, title: str) -> AsyncIterator[Step]:
        index = next((i for i, s in enumerate(self.steps) if s.title == title and s.state is StepState.WAITING), None)
        if index is None:  # a step the plan did not name (e.g. one per container): shown as it happens
            self.steps.append(ActionStep(len(self.steps), title))
            index = len(self.steps) - 1
        # The title names the target (a container, a file): an attribute; the span's name stays bounded.
        with self._tracer.span(f"step {self._kind}", {"opsbot.run_id": self._run_id, "opsbot.step.kind": self._kind,
                                                       "opsbot.step.title": title}) as span:
            await self._save(index, replace(self.steps[index], state=StepState.RUNNING, started_at=self._clock.now()))
            handle = Step(title)
            try:
                yield handle
            except BaseException as exc:
                # Only our own errors are worded for people (and free of secrets); anything else shows its type.
                detail = (str(exc) or type(exc).__name__) if isinstance(exc, OpsbotError) else type(exc).__name__
                effect = exc.effect if isinstance(exc, ExecutorError) else None
                span.set({"opsbot.step.outcome": StepState.FAILED.value}
                         | ({"opsbot.step.effect": effect.value} if effect is not None else {}))
                await self._save(index, replace(self.steps[index], state=StepState.FAILED, detail=detail[:500],
                                                effect=effect, finished_at=self._clock.now()))
                raise
            span.set({"opsbot.step.outcome": StepState.SUCCEEDED.value})
            await self._save(index, replace(self.steps[index], state=StepState.SUCCEEDED, detail=handle.detail[:500],
                                            finished_at=self._clock.now()))

    async def _save(self, index: int, step: ActionStep) -> None:
        self.steps[index] = step
        await self._store.save_step(self._run_id, step)  # the row first, then the message
        try:
            await self._refresh(list(self.steps))
        except Exception:
            # The store holds the truth; a message that lags must not stop a restart half-way.
            log.exception("could not update the Slack message of action run %s", self._run_id)
