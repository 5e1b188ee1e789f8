"""The `terminate-queries` kind: end the queries running longer than a limit on the service's PostgreSQL; no undo.

Not responsible for the database client (`bot.executors.databases`, imported only for a catalog that uses it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from bot import adapters
from bot.env_names import ENV_NAME
from bot.executors.base import Effect
from bot.runs.models import ActionRun
from bot.runs.steps._dsn import dsn, needs_dsn
from bot.runs.steps.base import Note, PlannedStep, StepDeps, StepKind, Traits, UndoBook, _ServiceStep, probe, register

if TYPE_CHECKING:
    from bot.catalog import Service
    from bot.runbooks.definitions import Runbook


class TerminateQueriesStep(_ServiceStep):
    kind: Literal["terminate-queries"]
    older_than_minutes: float = Field(default=5, gt=0, le=24 * 60)
    dsn_env: str | None = Field(default=None, pattern=ENV_NAME, description="None: the service's postgres backup DSN")


def _queries(found: list[Any]) -> str:
    return "; ".join(f"pid {q.pid} ({q.seconds / 60:.0f} min, {q.user}): {q.query[:80]}" for q in found[:10])


async def _long_queries_now(deps: StepDeps, service: str, args: dict[str, Any]) -> str:
    found: list[Any] = await adapters.module("bot.executors.databases").long_queries(
        dsn(deps, service, args), float(args["older_than_minutes"]))
    return f"{len(found)} running that long now" + (": " + _queries(found) if found else "")


async def _describe(deps: StepDeps, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    looked = await probe(lambda: _long_queries_now(deps, service or "", args), "{}")
    return f"End the queries on {service} running longer than {args['older_than_minutes']:g} min", looked


async def _perform(deps: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note) -> str:
    ended: list[Any] = await adapters.module("bot.executors.databases").terminate_queries(
        dsn(deps, step.service or "", step.args), float(step.args["older_than_minutes"]))
    return f"ended {len(ended)}: " + _queries(ended) if ended else "none was running that long"


def _validate(runbook: Runbook, service: Service, step: Any) -> list[tuple[str, str]]:
    return needs_dsn(service, step)


KIND = register(StepKind("terminate-queries", TerminateQueriesStep,
                         Traits(changes=True, undo=None, cut_short=Effect.UNKNOWN), _describe, _perform,
                         validate=_validate))
