"""The `sql` kind: one statement, written out in the catalog, run on the service's database; no undo.

Not responsible for the database clients (`bot.executors.databases`, imported only for a catalog with a sql step).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from bot import adapters
from bot.env_names import ENV_NAME
from bot.executors.base import Effect
from bot.runs.models import ActionRun
from bot.runs.steps._dsn import dsn, needs_dsn
from bot.runs.steps.base import Note, PlannedStep, StepDeps, StepKind, Traits, UndoBook, _ServiceStep, register

if TYPE_CHECKING:
    from bot.catalog import Service
    from bot.runbooks.definitions import Runbook


class SqlStep(_ServiceStep):
    kind: Literal["sql"]
    statement: str = Field(min_length=1, max_length=2000, examples=["VACUUM ANALYZE orders"],
                           description="one statement, used verbatim (parameters never reach SQL), run on its own "
                                       "outside a transaction (so VACUUM works); the run shows only its command tag "
                                       "(`UPDATE 12`), never rows; no undo")
    engine: Literal["postgres", "mysql"] = "postgres"
    dsn_env: str | None = Field(default=None, pattern=ENV_NAME, description="None: the service's postgres backup DSN")

    @field_validator("statement")
    @classmethod
    def _no_parameters(cls, value: str) -> str:
        if "{{" in value or "{%" in value:
            raise ValueError("parameters never reach SQL: write the statement out in full")
        return value


async def _describe(deps: StepDeps, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    return f"Run on {service} ({args['engine']}): {args['statement']}", ""


async def _perform(deps: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note) -> str:
    # The database clients are imported only for a catalog with a sql step (`bot.adapters`).
    ran: str = await adapters.module("bot.executors.databases").run_statement(
        step.args["engine"], dsn(deps, step.service or "", step.args), step.args["statement"], step.timeout)
    return ran


def _validate(runbook: Runbook, service: Service, step: Any) -> list[tuple[str, str]]:
    return needs_dsn(service, step)


KIND = register(StepKind("sql", SqlStep, Traits(changes=True, undo=None, cut_short=Effect.UNKNOWN),
                         _describe, _perform, validate=_validate))
