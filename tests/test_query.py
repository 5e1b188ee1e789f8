"""Named read-only queries and the `query` step kind against the real PostgreSQL and MariaDB: rows read, bounded and
shown as a table (the rest as CSV), writes refused by the READ ONLY transaction, statement timeouts, the refusals at
load (the sql check's, word for word), the step's traits, and `/ops query` through signed Slack requests.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from bot import cli
from bot.catalog_loading import CatalogInvalid, parse_catalog
from bot.clock import SystemClock
from bot.executors.base import Effect, ExecutorError
from bot.queries import NamedQuery, QueryFailed, QueryRows, run_named
from bot.runs import steps
from bot.runs.models import ActionKind, ActionRun
from bot.runs.steps.base import PlannedStep, UndoBook
from bot.runs.steps.query import QueryStep
from bot.views.queries import detail, table
from playground.payloads import slash_command
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings, pg_states, start_bot
from tests.test_checks_sql import mysql_run

# --- fixtures: a `jobs` table with 12 running and 30 done, and a function that writes when a SELECT calls it --------


@pytest.fixture
def mysql_jobs(mysql_database: str) -> str:
    mysql_run(mysql_database,
              "CREATE TABLE jobs (id INT AUTO_INCREMENT PRIMARY KEY, state VARCHAR(20) NOT NULL) ENGINE=InnoDB",
              "INSERT INTO jobs (state) VALUES " + ", ".join(["('running')"] * 12 + ["('done')"] * 30),
              "CREATE FUNCTION finish_all() RETURNS INT MODIFIES SQL DATA "
              "BEGIN UPDATE jobs SET state = 'done'; RETURN ROW_COUNT(); END")
    return mysql_database


def mysql_states(dsn: str) -> dict[str, int]:
    return dict(mysql_run(dsn, "SELECT state, count(*) FROM jobs GROUP BY state"))


def named(statement: str, engine: str = "postgres", **extra: Any) -> NamedQuery:
    return NamedQuery.model_validate({"service": "db", "engine": engine, "dsn_env": "DB_URL", "statement": statement,
                                      **extra})


RUNNING = "SELECT id, state, label FROM jobs WHERE state = 'running' ORDER BY id"

# --- PostgreSQL ------------------------------------------------------------------------------------------------


async def test_postgres_rows_are_read_with_their_columns(pg_jobs: str) -> None:
    result = await run_named(named(RUNNING), {"DB_URL": pg_jobs})
    assert isinstance(result, QueryRows), result
    assert result.columns == ("id", "state", "label") and not result.more
    assert result.rows[:2] == ((1, "running", "job 1"), (2, "running", "job 2")) and len(result.rows) == 12


async def test_postgres_reads_at_most_max_rows_and_says_there_were_more(pg_jobs: str) -> None:
    result = await run_named(named("SELECT id FROM jobs ORDER BY id", max_rows=5), {"DB_URL": pg_jobs})
    assert isinstance(result, QueryRows) and result.rows == ((1,), (2,), (3,), (4,), (5,)) and result.more


async def test_postgres_show_and_no_rows(pg_jobs: str) -> None:
    shown = await run_named(named("SHOW transaction_read_only"), {"DB_URL": pg_jobs})
    assert isinstance(shown, QueryRows) and shown.rows == (("on",),)  # the READ ONLY transaction, seen from inside
    empty = await run_named(named("SELECT id FROM jobs WHERE state = 'lost'"), {"DB_URL": pg_jobs})
    assert isinstance(empty, QueryRows) and empty.columns == ("id",) and empty.rows == ()


async def test_postgres_query_cannot_write(pg_jobs: str) -> None:
    result = await run_named(named("SELECT finish_all()"), {"DB_URL": pg_jobs})
    assert isinstance(result, QueryFailed) and "read-only transaction" in result.reason, result
    assert await pg_states(pg_jobs) == {"running": 12, "done": 30}


async def test_postgres_slow_query_is_stopped_by_the_statement_timeout(pg_jobs: str) -> None:
    result = await run_named(named("SELECT count(*) FROM jobs, pg_sleep(10)", timeout=1.5), {"DB_URL": pg_jobs})
    assert isinstance(result, QueryFailed) and "ran past its statement timeout" in result.reason, result


async def test_a_missing_dsn_and_the_wrong_engine_are_said_in_words(pg_jobs: str, mysql_database: str) -> None:
    assert await run_named(named("SELECT 1"), {}) == QueryFailed(
        "environment variable DB_URL is not set (the database to read)")
    wrong = await run_named(named("SELECT 1"), {"DB_URL": mysql_database})
    assert wrong == QueryFailed("$DB_URL holds a mysql:// URL, but the query is written for postgres")


# --- MariaDB ---------------------------------------------------------------------------------------------------


async def test_mysql_rows_limit_and_read_only(mysql_jobs: str) -> None:
    result = await run_named(named("SELECT id, state FROM jobs ORDER BY id", "mysql", max_rows=3),
                             {"DB_URL": mysql_jobs})
    assert isinstance(result, QueryRows), result
    assert result.columns == ("id", "state") and result.rows == ((1, "running"), (2, "running"), (3, "running"))
    assert result.more
    refused = await run_named(named("SELECT finish_all()", "mysql"), {"DB_URL": mysql_jobs})
    assert isinstance(refused, QueryFailed) and "READ ONLY transaction" in refused.reason, refused
    assert mysql_states(mysql_jobs) == {"running": 12, "done": 30}


async def test_mysql_slow_query_is_stopped_by_the_statement_timeout(mysql_jobs: str) -> None:
    result = await run_named(named("SELECT count(*) FROM jobs WHERE SLEEP(0.5) = 0", "mysql", timeout=2),
                             {"DB_URL": mysql_jobs.replace("mysql://", "mariadb://")})
    assert isinstance(result, QueryFailed) and "ran past its statement timeout" in result.reason, result


# --- refusals at load: the sql check's messages ------------------------------------------------------------------


def catalog_problems(text: str) -> str:
    with pytest.raises(CatalogInvalid) as caught:
        parse_catalog(text, "opsbot.yml")
    return str(caught.value)


def check_problems(statement: str, engine: str) -> str:
    scheme = "postgresql" if engine == "postgres" else "mysql"
    return catalog_problems(f"services:\n  db:\n    environment: prod\n    checks:\n      - {{type: sql, dsn: "
                            f"'{scheme}://u@h/db', query: {json.dumps(statement)}}}\n")


REFUSED = [
    ("postgres", "UPDATE jobs SET state = 'done'", "the query starts with `UPDATE`"),
    ("postgres", "COPY (SELECT 1) TO PROGRAM 'touch /tmp/x'", "the query starts with `COPY`"),
    ("postgres", "WITH t AS (SELECT 1) SELECT * FROM t UNION ALL SELECT 2 COPY", "`COPY` is not allowed"),
    ("mysql", "SELECT 1 INTO OUTFILE '/tmp/x'", "`INTO` is not allowed"),
    ("postgres", "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity", "`pg_terminate_backend` is not allowed"),
    ("postgres", "SELECT 1; DROP TABLE jobs", "one statement"),
]


@pytest.mark.parametrize(("engine", "statement", "words"), REFUSED)
def test_named_queries_are_refused_at_load_as_the_sql_check_refuses(engine: str, statement: str, words: str) -> None:
    said = catalog_problems(f"services:\n  db: {{environment: prod}}\nqueries:\n  bad:\n    service: db\n"
                            f"    engine: {engine}\n    dsn_env: DB_URL\n    statement: {json.dumps(statement)}\n")
    check_said = check_problems(statement, engine)
    message = next(line for line in check_said.splitlines() if words in line).split(".query: ", 1)[1].strip()
    assert words in message and f"queries.bad.statement: {message}" in said, (said, check_said)


@pytest.mark.parametrize(("engine", "statement", "words"), REFUSED)
def test_query_steps_are_refused_at_load_as_the_sql_check_refuses(engine: str, statement: str, words: str) -> None:
    said = catalog_problems(f"services:\n  db: {{environment: prod}}\nrunbooks:\n  look:\n    services: [db]\n"
                            f"    steps:\n      - kind: query\n        service: db\n        engine: {engine}\n"
                            f"        dsn_env: DB_URL\n        statement: {json.dumps(statement)}\n")
    assert words in said, said


QUERIES = """
services:
  db: {environment: prod, checks: [{type: postgres, dsn_env: DB_URL}]}
  api: {environment: prod}
queries:
  running-jobs: {service: db, dsn_env: JOBS_RO_URL, statement: SELECT 1}
  sizes: {service: db, dsn_env: SIZES_RO_URL, statement: SELECT 2}
"""


def test_check_config_names_a_named_querys_unset_dsn_variable(tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    catalog = parse_catalog(QUERIES)
    assert catalog.secret_envs() == [("services.db.checks[0]", "DB_URL"), ("queries.running-jobs", "JOBS_RO_URL"),
                                     ("queries.sizes", "SIZES_RO_URL")]
    (tmp_path / "opsbot.yml").write_text(QUERIES)
    for name in ("DB_URL", "JOBS_RO_URL", "SIZES_RO_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DB_URL", "postgresql://db/app")

    assert cli.main(["check-config", str(tmp_path / "opsbot.yml")]) == 0
    said = capsys.readouterr().out
    assert "2 environment variables are not set here: JOBS_RO_URL, SIZES_RO_URL — used by 2 named queries" in said

    monkeypatch.setenv("SIZES_RO_URL", "postgresql://db/app")
    assert cli.main(["check-config", str(tmp_path / "opsbot.yml")]) == 0
    assert "queries.running-jobs: environment variable JOBS_RO_URL is not set here" in capsys.readouterr().out


def test_a_named_query_of_a_service_the_catalog_lacks_is_refused_with_the_valid_names() -> None:
    said = catalog_problems(QUERIES.replace("running-jobs: {service: db", "running-jobs: {service: dbb")
                            .replace("sizes: {service: db", "sizes: {service: warehouse"))
    assert said.splitlines() == [
        "opsbot.yml:6: queries.running-jobs.service: unknown service 'dbb'; did you mean `db`? (services: api, db)",
        "opsbot.yml:7: queries.sizes.service: unknown service 'warehouse' (services: api, db)",
    ]


# --- the table ---------------------------------------------------------------------------------------------------


def test_the_table_aligns_columns_and_says_null() -> None:
    assert table(("id", "label"), [(1, "job one"), (12, None)]) == [
        "id  label", "--  -------", "1   job one", "12  NULL"]


# --- the step kind -----------------------------------------------------------------------------------------------


@dataclass
class Chat:
    uploads: list[dict[str, str]] = field(default_factory=list)

    async def upload(self, channel: str, *, filename: str, title: str, content: str, comment: str) -> None:
        self.uploads.append({"channel": channel, "filename": filename, "content": content, "comment": comment})


@dataclass
class Deps:
    catalog: Any
    environ: dict[str, str]
    chat: Chat = field(default_factory=Chat)
    clock: SystemClock = field(default_factory=SystemClock)
    demo_workloads: Any = None
    store: Any = None
    http: Any = None

    async def check(self, service: str, only: Any = ()) -> Any:
        raise AssertionError("no health checks here")


def a_run() -> ActionRun:
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    return ActionRun(service="db", kind=ActionKind.RUNBOOK, environment="production", target="db",
                     requested_by="U1", created_at=at, expires_at=at, id=7, channel_id="C1")


async def plan_step(deps: Deps, **fields: Any) -> PlannedStep:
    return await steps.plan(deps, QueryStep.model_validate({"kind": "query", "service": "db", "dsn_env": "DB_URL",
                                                            **fields}), {})


async def perform(deps: Deps, step: PlannedStep) -> str:
    async def save(_: dict[str, Any]) -> None:
        return None

    return await steps.perform(deps, a_run(), step, UndoBook({}, save))


def step_deps(dsn: str) -> Deps:
    return Deps(catalog=parse_catalog("services:\n  db: {environment: production}\n"), environ={"DB_URL": dsn})


async def test_the_step_reads_nothing_changes_and_needs_no_undo(pg_jobs: str) -> None:
    deps = step_deps(pg_jobs)
    step = await plan_step(deps, statement="SELECT state, count(*) AS n FROM jobs GROUP BY state ORDER BY state")
    traits = steps.traits_of(step)
    assert not traits.changes and traits.cut_short is Effect.UNTOUCHED and step.undo is None
    assert await perform(deps, step) == "2 rows\nstate    n\n-------  --\ndone     30\nrunning  12"
    assert deps.chat.uploads == []  # a result the detail shows whole is not uploaded


async def test_the_step_shows_its_first_rows_and_uploads_all_of_them_as_csv(pg_jobs: str) -> None:
    deps = step_deps(pg_jobs)
    step = await plan_step(deps, statement=RUNNING)
    detail = await perform(deps, step)
    head, *table = detail.splitlines()
    assert head == "12 rows; all 12 uploaded as CSV"
    assert table[:3] == ["id  state    label", "--  -------  -----", "1   running  job 1"]
    assert table[-2:] == ["5   running  job 5", "… 7 more"] and "job 6" not in detail
    [upload] = deps.chat.uploads
    rows = list(csv.reader(io.StringIO(upload["content"])))
    assert upload["channel"] == "C1" and rows[0] == ["id", "state", "label"] and rows[12] == ["12", "running", "job 12"]
    assert len(rows) == 13


async def test_a_failed_step_left_the_database_untouched(pg_jobs: str) -> None:
    deps = step_deps(pg_jobs)
    step = await plan_step(deps, statement="SELECT finish_all()")
    with pytest.raises(ExecutorError) as caught:
        await perform(deps, step)
    assert caught.value.effect is Effect.UNTOUCHED and "read-only transaction" in str(caught.value)
    assert await pg_states(pg_jobs) == {"running": 12, "done": 30}


async def test_the_step_on_mariadb(mysql_jobs: str) -> None:
    deps = step_deps(mysql_jobs)
    step = await plan_step(deps, engine="mysql", statement="SELECT count(*) AS n FROM jobs WHERE state = 'running'")
    assert await perform(deps, step) == "1 row\nn\n--\n12"


# --- /ops query through signed Slack requests -------------------------------------------------------------------


@pytest.fixture
async def bot(pg_jobs: str, slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Any) -> AsyncIterator[RunningBot]:
    catalog = f"""
services:
  db: {{environment: production}}
queries:
  running-jobs:
    service: db
    dsn_env: DB_URL
    description: Jobs still running
    statement: "{RUNNING}"
  all-jobs:
    service: db
    dsn_env: DB_URL
    statement: SELECT id, state FROM jobs ORDER BY id
  slow:
    service: db
    dsn_env: DB_URL
    timeout: 1
    statement: SELECT pg_sleep(5)
"""
    running, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'opsbot.db'}"), catalog, slack, http,
                                      environ={"DB_URL": pg_jobs})
    try:
        yield running
    finally:
        await runner.cleanup()


async def ops_query(bot: RunningBot, text: str) -> list[dict[str, Any]]:
    url = bot.slack.response_url()
    response = await bot.post(*slash_command("/ops", f"query {text}".strip(), user="U0ALICE", channel="C0OPS",
                                             response_url=url))
    assert response.status == 200
    acked = [await response.json()] if response.content_type == "application/json" else []
    await bot.settle()
    return acked + [c.args for c in bot.slack.of("response_url") if url.endswith(c.path)]


async def test_ops_query_lists_the_named_queries(bot: RunningBot) -> None:
    said = json.dumps(await ops_query(bot, ""))
    assert "running-jobs" in said and "Jobs still running" in said and "slow" in said


async def test_ops_query_posts_the_table_in_the_channel_and_the_rest_as_csv(bot: RunningBot) -> None:
    answers = await ops_query(bot, "running-jobs")
    [table_answer] = [a for a in answers if a.get("response_type") == "in_channel"]
    text = json.dumps(table_answer["blocks"], ensure_ascii=False)
    assert "12 rows" in text and "id  state    label" in text and "12  running  job 12" in text
    assert "CSV" not in text  # 12 rows fit the table: nothing uploaded
    with pytest.raises(AssertionError):
        bot.slack.file_text(channel="C0OPS")


async def test_ops_query_uploads_a_result_longer_than_the_table_as_csv(bot: RunningBot) -> None:
    answers = await ops_query(bot, "all-jobs")
    [table_answer] = [a for a in answers if a.get("response_type") == "in_channel"]
    text = json.dumps(table_answer["blocks"], ensure_ascii=False)
    assert "42 rows" in text and "12  running" in text and "20  done" in text and "21  done" not in text
    assert "Showing 20 of 42 rows; all of them are in the CSV file above." in text
    rows = list(csv.reader(io.StringIO(bot.slack.file_text(channel="C0OPS"))))
    assert rows[0] == ["id", "state"] and rows[42] == ["42", "done"] and len(rows) == 43


async def test_ops_query_unknown_names_and_timeouts_are_said_in_words(bot: RunningBot) -> None:
    unknown = json.dumps(await ops_query(bot, "running-job"))
    assert "No query named `running-job`" in unknown and "Did you mean `running-jobs`?" in unknown
    slow = json.dumps(await ops_query(bot, "slow"))
    assert "gave no rows" in slow and "statement timeout" in slow, slow


def test_a_query_step_without_a_dsn_is_refused_at_load() -> None:
    said = catalog_problems("services:\n  db: {environment: prod}\nrunbooks:\n  look:\n    services: [db]\n"
                            "    steps:\n      - kind: query\n        service: db\n        statement: SELECT 1\n")
    assert "dsn_env: is required: services.db has no postgres `backup:` whose DSN it could use" in said, said


async def test_the_plan_line_says_it_only_reads(pg_jobs: str) -> None:
    step = await plan_step(step_deps(pg_jobs), statement="SELECT 1")
    assert step.title == "Read on db (postgres, read-only): SELECT 1" and step.on_failure == "continue"


def test_a_step_detail_on_several_lines_shows_its_first_line_beside_the_step_and_the_rest_as_a_code_block() -> None:
    from bot.runs.models import ActionStep, StepState
    from bot.views.runs import _step_line

    rows = QueryRows(("who", "note"), (("a<b", "x ``` y"),), more=False, seconds=0.01)
    line = _step_line(ActionStep(1, "Read on db", StepState.SUCCEEDED, detail=detail(rows)))
    assert line == "✅ Read on db — 1 row\n```who  note\n---  -------\na&lt;b  x `\u200b`\u200b` y```"
