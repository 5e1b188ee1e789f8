"""Named read-only queries (the catalog's `queries:`) and reading one: the statement judged at load by the sql
check's guard, run in its READ ONLY transaction with a statement timeout and rolled back, at most `max_rows` read.

Not responsible for the database clients (`bot.checks.postgres_probe`, `bot.checks.mysql_probe`, imported on first
use), nor for showing rows (`bot.views.queries`), nor for who may run one (no approval: they only read).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from bot import adapters
from bot.checks import _sql_guard
from bot.checks._limits import SERVER_MARGIN
from bot.checks._sql_read import SqlRows
from bot.checks._sql_urls import engine_scheme, url_engine, valid_url
from bot.checks.base import Probe
from bot.env_names import ENV_NAME
from bot.executors.mysql_dsn import parse_mysql_dsn

Engine = Literal["postgres", "mysql"]
QUERY_NAME = r"^[a-z0-9][a-z0-9_-]*$"
MAX_ROWS = 10_000


def guarded(statement: str, info: ValidationInfo) -> str:
    """The sql check's refusals, word for word, for the engine declared before the statement."""
    engine = info.data.get("engine")
    _sql_guard.check(statement, (engine,) if engine else _sql_guard.DIALECTS)
    return statement


class NamedQuery(BaseModel):
    """One query people run with `/ops query <name>` (and read, as a table)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    service: str = Field(min_length=1, description="the service whose database it reads (shown with the rows)")
    engine: Engine = Field(default="postgres", description="the database's engine")
    dsn_env: str = Field(pattern=ENV_NAME, description="environment variable holding the DSN (a read-only role)")
    statement: str = Field(min_length=1, max_length=4000, examples=[
        ("SELECT pid, now() - query_start AS running, left(query, 60) AS query FROM pg_stat_activity "
         "WHERE state = 'active' ORDER BY 2 DESC")],
        description="one read-only SELECT, WITH, VALUES, TABLE or SHOW statement (the sql check's rules), used "
                    "verbatim; it runs in a READ ONLY transaction that is rolled back")
    max_rows: int = Field(default=200, ge=1, le=MAX_ROWS, description="rows read at most; the rest are not read")
    timeout: float = Field(default=15, gt=0, le=300, description="seconds it may take, connecting included")
    description: str = Field(default="", max_length=300, description="what it shows, in the list")

    @field_validator("statement")
    @classmethod
    def _read_only(cls, statement: str, info: ValidationInfo) -> str:
        return guarded(statement, info)


def _query_name(value: str) -> str:
    if not re.match(QUERY_NAME, value):
        raise ValueError(f"{value!r} is not a query name (lowercase letters, digits, - and _)")
    return value


QueryName = Annotated[str, AfterValidator(_query_name)]


@dataclass(frozen=True)
class QueryRows:
    """What a query read: at most `max_rows` rows; `more` when the statement had further rows."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    more: bool
    seconds: float


@dataclass(frozen=True)
class QueryFailed:
    """Why a query gave no rows, in plain words (refused, no DSN, cannot connect, statement timeout, server error)."""

    reason: str


async def read(engine: Engine, url: str, statement: str, *, max_rows: int, timeout: float,
               where: str) -> QueryRows | QueryFailed:
    """Run `statement` read-only on `url`; `where` names the database in messages (an env var, never the URL)."""
    found = url_engine(url)
    if found is None or not valid_url(url):
        return QueryFailed(f"{where} does not hold a {engine_scheme(engine)} URL")
    if found != engine:
        return QueryFailed(f"{where} holds a {engine_scheme(found)} URL, but the query is written for {engine}")
    try:
        checked = _sql_guard.check(statement, (engine,))
    except ValueError as exc:
        return QueryFailed(f"the query is refused: {exc}")
    loop = asyncio.get_running_loop()
    started = loop.time()
    # The server gives up a little before the whole timeout, so what is said is "statement timeout".
    budget = max(0.001, timeout * (1 - SERVER_MARGIN))
    if engine == "postgres":
        got: SqlRows | Probe = await adapters.module("bot.checks.postgres_probe").rows(
            url, checked, timeout, lambda: max(0.001, started + budget - loop.time()), where, None, limit=max_rows)
    else:
        try:
            target = parse_mysql_dsn(url, require_database=False)
        except ValueError:
            return QueryFailed(f"{where} does not hold a valid mysql:// URL")
        got = await adapters.module("bot.checks.mysql_probe").rows(
            target, checked, timeout, budget, where, None, engine_scheme("mysql"), limit=max_rows)
    if isinstance(got, Probe):
        return QueryFailed(got.reason)
    return QueryRows(columns=got.columns, rows=got.rows, more=got.more, seconds=loop.time() - started)


async def run_named(query: NamedQuery, environ: Mapping[str, str]) -> QueryRows | QueryFailed:
    url = environ.get(query.dsn_env, "")
    if not url:
        return QueryFailed(f"environment variable {query.dsn_env} is not set (the database to read)")
    try:
        return await asyncio.wait_for(read(query.engine, url, query.statement, max_rows=query.max_rows,
                                           timeout=query.timeout, where=f"${query.dsn_env}"), query.timeout)
    except TimeoutError:
        return QueryFailed(f"no answer from ${query.dsn_env} within {query.timeout:g} s")
