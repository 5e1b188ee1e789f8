"""The `query` kind: one read-only SQL statement on the service's database whose rows a person reads; its first
rows are the step's detail and the whole result is uploaded as CSV to the run's channel when it holds more.

Not responsible for the read-only guard, the READ ONLY transaction or the clients (`bot.queries`, the sql check's),
nor for the table's text (`bot.views.queries`). It changes nothing, so it has no undo and needs no approval of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from bot.env_names import ENV_NAME
from bot.executors.base import Effect, ExecutorError
from bot.queries import MAX_ROWS, QueryFailed, guarded, read
from bot.runs.models import ActionRun
from bot.runs.steps._dsn import dsn, needs_dsn
from bot.runs.steps.base import Note, PlannedStep, StepDeps, StepKind, Traits, UndoBook, _ServiceStep, register
from bot.views.queries import DETAIL_ROWS, csv_text, detail

if TYPE_CHECKING:
    from bot.catalog import Service
    from bot.runbooks.definitions import Runbook

ONLY_READS = "unchanged: the query only reads"
MARGIN = 0.1  # of the step's timeout kept back from the query, to upload its rows before the engine cuts the step


class QueryStep(_ServiceStep):
    kind: Literal["query"]
    engine: Literal["postgres", "mysql"] = "postgres"
    statement: str = Field(min_length=1, max_length=4000, examples=[
                               "SELECT relname, n_dead_tup FROM pg_stat_user_tables ORDER BY n_dead_tup DESC"],
                           description="one read-only SELECT, WITH, VALUES, TABLE or SHOW statement (the sql check's "
                                       "rules), used verbatim (parameters never reach SQL); run in a READ ONLY "
                                       "transaction that is rolled back; the first rows are shown, all as CSV")
    dsn_env: str | None = Field(default=None, pattern=ENV_NAME, description="None: the service's postgres backup DSN")
    max_rows: int = Field(default=200, ge=1, le=MAX_ROWS, description="rows read at most; the rest are not read")

    @field_validator("statement")
    @classmethod
    def _no_parameters(cls, value: str) -> str:
        if "{{" in value or "{%" in value:
            raise ValueError("parameters never reach SQL: write the statement out in full")
        return value

    @field_validator("statement")
    @classmethod
    def _read_only(cls, statement: str, info: ValidationInfo) -> str:
        return guarded(statement, info)


async def _describe(deps: StepDeps, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    return f"Read on {service} ({args['engine']}, read-only): {args['statement']}", ""


def _env(deps: StepDeps, service: str, args: dict[str, Any]) -> str:
    return str(args.get("dsn_env") or getattr(deps.catalog.services[service].backup, "dsn_env", ""))


async def _perform(deps: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note) -> str:
    service = step.service or ""
    url = dsn(deps, service, step.args)  # not set: refused, nothing touched
    result = await read(step.args["engine"], url, step.args["statement"], max_rows=int(step.args["max_rows"]),
                        timeout=step.timeout * (1 - MARGIN), where=f"${_env(deps, service, step.args)}")
    if isinstance(result, QueryFailed):
        raise ExecutorError(result.reason, state=ONLY_READS, effect=Effect.UNTOUCHED)
    if len(result.rows) <= DETAIL_ROWS:
        return detail(result)
    if not run.channel_id:
        return detail(result, note="the rows were not uploaded (the run has no channel)")
    stamp = deps.clock.now().strftime("%Y%m%d-%H%M%S")
    await deps.chat.upload(run.channel_id, filename=f"{service}-query-{stamp}.csv", title=f"Rows of {step.title}",
                           content=csv_text(result.columns, result.rows),
                           comment=f"All {len(result.rows)} rows of `{step.title}`, runbook run #{run.id}.")
    return detail(result, note=f"all {len(result.rows)} uploaded as CSV")


def _validate(runbook: Runbook, service: Service, step: Any) -> list[tuple[str, str]]:
    return needs_dsn(service, step)


KIND = register(StepKind("query", QueryStep, Traits(changes=False, undo=None, cut_short=Effect.UNTOUCHED,
                                                     on_failure="continue"),
                         _describe, _perform, validate=_validate))
