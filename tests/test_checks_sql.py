"""The `sql` check against the real PostgreSQL and MariaDB: grading, empty results, read-only, timeouts, loading."""

from __future__ import annotations

import json

import aiohttp
import pymysql
import pytest

from bot.catalog_loading import CatalogInvalid, catalog_warnings, parse_catalog
from bot.checks import CheckDeps, Status
from tests.checks import CHECK, run
from tests.conftest import free_port, pg_states


def sql(dsn: str, query: str, **extra: object) -> dict:
    return {"type": "sql", "dsn": dsn, "query": query, "unit": "active connections",
            "above": {"warning": 10, "critical": 20}, **extra}


def problems(check: str) -> list[str]:
    with pytest.raises(CatalogInvalid) as caught:
        parse_catalog(f"services:\n  db:\n    environment: prod\n    checks:\n      - {check}\n", "opsbot.yml")
    return str(caught.value).splitlines()


# --- PostgreSQL -----------------------------------------------------------------------------------------


STUCK = "SELECT count(*) FROM jobs WHERE state = 'running'"


async def test_postgres_number_under_the_limits_is_ok(pg_jobs: str, deps: CheckDeps) -> None:
    spec = sql(pg_jobs, STUCK, above={"warning": 50, "critical": 100})
    assert await run(spec, deps) == (Status.OK, "12 active connections")


async def test_postgres_number_at_warning_names_the_limit(pg_jobs: str, deps: CheckDeps) -> None:
    assert await run(sql(pg_jobs, STUCK), deps) == (Status.WARNING, "12 active connections (limit 10)")


async def test_postgres_number_past_critical(pg_jobs: str, deps: CheckDeps) -> None:
    spec = sql(pg_jobs, "SELECT count(*) FROM jobs;", unit="jobs")
    assert await run(spec, deps) == (Status.CRITICAL, "42 jobs (limit 20)")


async def test_postgres_below_grades_low_values_and_fractions(pg_jobs: str, deps: CheckDeps) -> None:
    spec = {"type": "sql", "dsn": pg_jobs, "query": "SELECT 100.0 * 12 / 42", "unit": "% running",
            "below": {"warning": 50, "critical": 20}}
    assert await run(spec, deps) == (Status.WARNING, "28.57 % running (minimum 50)")


async def test_postgres_no_row_and_null_take_the_empty_outcome(pg_jobs: str, deps: CheckDeps) -> None:
    no_row = sql(pg_jobs, "SELECT id FROM jobs WHERE state = 'lost'")
    assert await run(no_row, deps) == (Status.CRITICAL, "the query returned no number (no row, or NULL)")
    null = sql(pg_jobs, "SELECT max(id) FROM jobs WHERE state = 'lost'", empty="ok")
    assert (await run(null, deps))[0] is Status.OK


async def test_postgres_text_is_an_error_naming_its_type(pg_jobs: str, deps: CheckDeps) -> None:
    status, reason = await run(sql(pg_jobs, "SELECT state FROM jobs LIMIT 1"), deps)
    assert status is Status.ERROR and reason == "the query's first column is text (str), not a number"


async def test_postgres_nan_is_an_error(pg_database: str, deps: CheckDeps) -> None:
    status, reason = await run(sql(pg_database, "SELECT 'NaN'::float8"), deps)
    assert (status, reason) == (Status.ERROR, "the query returned nan, not a number a threshold can judge")


@pytest.mark.parametrize("query", [
    "WITH d AS (DELETE FROM jobs WHERE state = 'running' RETURNING 1) SELECT count(*) FROM d",
    "WITH u AS (UPDATE jobs SET state = 'done' RETURNING 1) SELECT count(*) FROM u",
    "SELECT finish_all()",
    "SELECT nextval('jobs_id_seq')",
])
async def test_postgres_query_cannot_write(pg_jobs: str, deps: CheckDeps, query: str) -> None:
    status, reason = await run(sql(pg_jobs, query), deps)
    assert status is Status.ERROR and "read-only transaction" in reason, reason
    assert await pg_states(pg_jobs) == {"running": 12, "done": 30}


async def test_postgres_slow_query_is_stopped_by_the_statement_timeout(pg_jobs: str, deps: CheckDeps) -> None:
    status, reason = await run(sql(pg_jobs, "SELECT count(*) FROM jobs, pg_sleep(10)", timeout=2), deps)
    assert status is Status.ERROR and "statement timeout" in reason, reason


async def test_postgres_bad_query_is_an_error(pg_jobs: str, deps: CheckDeps) -> None:
    status, reason = await run(sql(pg_jobs, "SELECT count(*) FROM no_such_table"), deps)
    assert status is Status.ERROR and 'relation "no_such_table" does not exist' in reason


async def test_postgres_unreachable_is_critical(deps: CheckDeps) -> None:
    status, reason = await run(sql(f"postgresql://postgres@127.0.0.1:{free_port()}/x", "SELECT 1", timeout=2), deps)
    assert status is Status.CRITICAL and reason.startswith("cannot connect to 127.0.0.1:")


async def test_postgres_server_that_never_answers_times_out(silent_port: int, deps: CheckDeps) -> None:
    spec = sql(f"postgresql://postgres@127.0.0.1:{silent_port}/x", "SELECT 1", timeout=0.5)
    assert await run(spec, deps) == (Status.ERROR, "timed out after 0.5 s")


async def test_dsn_from_the_environment(pg_jobs: str, http: aiohttp.ClientSession) -> None:
    spec = {"type": "sql", "dsn_env": "APP_DB_URL", "query": STUCK, "above": {"warning": 50, "critical": 100}}
    assert (await run(spec, CheckDeps(http=http, environ={"APP_DB_URL": pg_jobs})))[0] is Status.OK
    assert await run(spec, CheckDeps(http=http, environ={})) == (Status.ERROR,
                                                                 "cannot run: environment variable APP_DB_URL is not set")


# --- MySQL / MariaDB ------------------------------------------------------------------------------------


def mysql_run(dsn: str, *statements: str) -> list[tuple]:
    from urllib.parse import urlsplit

    parts = urlsplit(dsn)
    conn = pymysql.connect(host=parts.hostname, port=parts.port or 3306, user=parts.username or "root",
                           database=parts.path.lstrip("/"), autocommit=True)
    try:
        with conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
            return list(cursor.fetchall())
    finally:
        conn.close()


@pytest.fixture
def mysql_jobs(mysql_database: str) -> str:
    mysql_run(
        mysql_database,
        "CREATE TABLE jobs (id INT AUTO_INCREMENT PRIMARY KEY, state VARCHAR(20) NOT NULL) ENGINE=InnoDB",
        "INSERT INTO jobs (state) VALUES " + ", ".join(["('running')"] * 12 + ["('done')"] * 30),
    )
    return mysql_database


def mysql_states(dsn: str) -> dict[str, int]:
    return dict(mysql_run(dsn, "SELECT state, count(*) FROM jobs GROUP BY state"))


async def test_mysql_ok_warning_critical(mysql_jobs: str, deps: CheckDeps) -> None:
    assert await run(sql(mysql_jobs, STUCK, above={"warning": 50, "critical": 100}), deps) == (Status.OK, "12 active connections")
    assert await run(sql(mysql_jobs, STUCK), deps) == (Status.WARNING, "12 active connections (limit 10)")
    assert await run(sql(mysql_jobs, "SELECT count(*) FROM jobs", unit="jobs"), deps) == (Status.CRITICAL, "42 jobs (limit 20)")


async def test_mariadb_scheme_and_decimal_results(mysql_jobs: str, deps: CheckDeps) -> None:
    spec = {"type": "sql", "dsn": mysql_jobs.replace("mysql://", "mariadb://"), "query": "SELECT 100 * 12 / 42",
            "unit": "% running", "below": {"warning": 50, "critical": 20}}
    assert await run(spec, deps) == (Status.WARNING, "28.57 % running (minimum 50)")


async def test_mysql_empty_and_text(mysql_jobs: str, deps: CheckDeps) -> None:
    no_row = sql(mysql_jobs, "SELECT id FROM jobs WHERE state = 'lost'", empty="warning")
    assert await run(no_row, deps) == (Status.WARNING, "the query returned no number (no row, or NULL)")
    assert (await run(sql(mysql_jobs, "SELECT NULL"), deps))[0] is Status.CRITICAL
    status, reason = await run(sql(mysql_jobs, "SELECT state FROM jobs LIMIT 1"), deps)
    assert status is Status.ERROR and reason == "the query's first column is var_string (str), not a number"


@pytest.fixture
def mysql_writer(mysql_jobs: str) -> str:
    """A stored function that writes when a SELECT calls it: what the load-time guard cannot see."""
    mysql_run(mysql_jobs, "CREATE FUNCTION finish_all() RETURNS INT MODIFIES SQL DATA "
                          "BEGIN UPDATE jobs SET state = 'done'; RETURN ROW_COUNT(); END")
    return mysql_jobs


async def test_mysql_query_cannot_write(mysql_writer: str, deps: CheckDeps) -> None:
    status, reason = await run(sql(mysql_writer, "SELECT finish_all()"), deps)
    assert status is Status.ERROR and "READ ONLY transaction" in reason, reason
    assert mysql_states(mysql_writer) == {"running": 12, "done": 30}


async def test_mysql_slow_query_is_stopped_by_the_statement_timeout(mysql_jobs: str, deps: CheckDeps) -> None:
    status, reason = await run(sql(mysql_jobs, "SELECT count(*) FROM jobs WHERE SLEEP(0.5) = 0", timeout=2), deps)
    assert status is Status.ERROR and "statement timeout" in reason, reason


async def test_mysql_unreachable_is_critical(deps: CheckDeps) -> None:
    status, reason = await run(sql(f"mysql://root@127.0.0.1:{free_port()}/x", "SELECT 1", timeout=2), deps)
    assert status is Status.CRITICAL and reason.startswith("cannot connect to 127.0.0.1:"), reason


async def test_mysql_server_that_never_answers_times_out(silent_port: int, deps: CheckDeps) -> None:
    spec = sql(f"mysql://root@127.0.0.1:{silent_port}/x", "SELECT 1", timeout=0.5)
    assert await run(spec, deps) == (Status.ERROR, "timed out after 0.5 s")


# --- loading --------------------------------------------------------------------------------------------


def test_a_second_statement_is_refused_at_load() -> None:
    [problem] = problems("{type: sql, dsn: 'postgresql://app@db/app', query: 'SELECT 1; DROP TABLE jobs', above: {warning: 1, "
                         "critical: 2}}")
    assert problem.endswith("services.db.checks[0].query: the query must be one statement: a `;` outside quotes may only end it")


def test_a_trailing_semicolon_is_fine() -> None:
    parse_catalog("services:\n  db:\n    environment: prod\n    checks:\n"
                  "      - {type: sql, dsn: 'mysql://app@db/app', query: 'SELECT 1;', below: {warning: 2, critical: 1}}\n")


@pytest.mark.parametrize("limits", ["", ", above: {warning: 1, critical: 2}, below: {warning: 2, critical: 1}"])
def test_exactly_one_of_above_and_below(limits: str) -> None:
    [problem] = problems("{type: sql, dsn: 'postgresql://app@db/app', query: 'SELECT 1'" + limits + "}")
    assert "give exactly one of `above` (high is bad) and `below` (low is bad)" in problem


@pytest.mark.parametrize(("check", "message"), [
    ("{type: sql, dsn: 'sqlite:///x.db', query: 'SELECT 1', above: {warning: 1, critical: 2}}",
     "must be a postgresql://, mysql:// or mariadb:// URL"),
    ("{type: sql, dsn: 'mysql://app:hunter2@db/app', query: 'SELECT 1', above: {warning: 1, critical: 2}}",
     "must not contain a password"),
    ("{type: sql, dsn_env: APP_DB_URL, query: ' ', above: {warning: 1, critical: 2}}", "the query has no statement"),
    ("{type: sql, dsn_env: APP_DB_URL, query: 'SELECT 1', above: {warning: 1, critical: 2}, empty: maybe}", "empty"),
    ("{type: sql, dsn_env: APP_DB_URL, query: 'SELECT 1', below: {warning: 1, critical: 2}}", "low values are the bad ones"),
])
def test_bad_sql_checks_are_refused(check: str, message: str) -> None:
    [problem] = problems(check)
    assert message in problem and "hunter2" not in problem


# --- read-only at load: what a READ ONLY transaction would not stop -----------------------------------------

ALLOWED = "a check's query is one read-only SELECT, WITH, VALUES, TABLE or SHOW statement returning a number"
PG, MY = "postgresql://monitor@db/app", "mysql://monitor@db/app"


def load_problem(dsn: str, query: str) -> str:
    """The one problem a check with this query has at load, inline `dsn` or (dsn None) `dsn_env`."""
    source = f"dsn: {json.dumps(dsn)}" if dsn else "dsn_env: APP_DB_URL"
    [problem] = problems(f"{{type: sql, {source}, query: {json.dumps(query)}, above: {{warning: 1, critical: 2}}}}")
    return problem


@pytest.mark.parametrize(("dsn", "query", "message"), [
    # Statements other than a read, first keyword after comments.
    (PG, "COPY (SELECT 1) TO PROGRAM 'touch /tmp/x'", f"the query starts with `COPY`; {ALLOWED}"),
    (MY, "KILL 42", f"the query starts with `KILL`; {ALLOWED}"),
    (MY, "SET GLOBAL max_connections = 1", f"the query starts with `SET`; {ALLOWED}"),
    (None, "/* tidy */ -- up\nDELETE FROM jobs", f"the query starts with `DELETE`; {ALLOWED}"),
    (PG, "UPDATE jobs SET state = 'done'", f"the query starts with `UPDATE`; {ALLOWED}"),
    (MY, "DROP TABLE jobs", f"the query starts with `DROP`; {ALLOWED}"),
    # Files and programs on the database host, wherever they hide.
    (PG, "SELECT 1 FROM (SELECT 1) AS t WHERE EXISTS (SELECT 1) UNION SELECT 2 TO PROGRAM", "`TO PROGRAM` is not allowed"),
    (MY, "SELECT 1 INTO OUTFILE '/tmp/x'", "`INTO` is not allowed: SELECT … INTO writes a file (INTO OUTFILE, INTO DUMPFILE)"),
    (MY, "select 1 into dumpfile '/tmp/x'", "`INTO` is not allowed"),
    (MY, "SELECT 1 /*! INTO OUTFILE '/tmp/x' */", "MySQL executable comments (/*! … */, /*M! … */, /*+ … */) are not allowed"),
    (None, "WITH t AS (SELECT 1) SELECT * FROM t UNION ALL SELECT 2 COPY", "`COPY` is not allowed"),
    # Functions with effects beyond reading.
    (PG, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity",
     "`pg_terminate_backend` is not allowed: it ends or signals other sessions"),
    (PG, "SELECT pg_cancel_backend(1)", "`pg_cancel_backend` is not allowed: it ends or signals other sessions"),
    (PG, 'SELECT "pg_terminate_backend"(1)', "`pg_terminate_backend` is not allowed"),
    (PG, "SELECT pg_catalog.set_config('statement_timeout', '0', false)",
     "`set_config` is not allowed: it changes settings or server state"),
    (PG, "SELECT lo_export(1, '/tmp/x')", "`lo_export` is not allowed: it reads or writes files on the database host"),
    (PG, "SELECT lo_import('/etc/passwd')", "`lo_import` is not allowed: it reads or writes files on the database host"),
    (PG, "SELECT length(pg_read_file('/etc/passwd'))", "`pg_read_file` is not allowed: it reads or writes files"),
    (PG, "SELECT count(*) FROM dblink('host=x', 'SELECT 1') AS t(n int)",
     "`dblink` is not allowed: it runs commands or other queries"),
    (PG, "SELECT pg_advisory_lock(1)", "`pg_advisory_lock` is not allowed: it takes locks that outlive the query"),
    (MY, "SELECT GET_LOCK('deploy', 10)", "`get_lock` is not allowed: it takes locks that outlive the query"),
    (MY, "SELECT RELEASE_LOCK('deploy')", "`release_lock` is not allowed"),
    (MY, "SELECT LENGTH(LOAD_FILE('/etc/passwd'))", "`load_file` is not allowed"),
    (PG, "SELECT count(*) FROM jobs FOR UPDATE", "locking reads (FOR UPDATE, FOR SHARE, LOCK IN SHARE MODE) are not allowed"),
    # Text the two engines split differently: refused rather than guessed.
    (PG, "SELECT 'a\\' , 1", "a backslash is not allowed"),
    (PG, "SELECT 1 /* /* */ ' */ , pg_terminate_backend(1), ''", "`pg_terminate_backend` is not allowed"),
    (PG, "SELECT $$'$$, pg_terminate_backend(1), ''", "`pg_terminate_backend` is not allowed"),
    (MY, "SELECT 1 # '\n, GET_LOCK('a', 1)", "`get_lock` is not allowed"),
    (None, "SELECT 1 /* /* */ ' */", "the query has an unterminated '…' string (read as MySQL)"),
    (PG, "SELECT 1; SELECT pg_sleep(1)", "the query must be one statement: a `;` outside quotes may only end it"),
])
def test_queries_with_side_effects_are_refused_at_load(dsn: str | None, query: str, message: str) -> None:
    problem = load_problem(dsn, query)
    assert problem.startswith("opsbot.yml:") and "services.db.checks[0].query: " in problem, problem
    assert message in problem, problem


@pytest.mark.parametrize(("dsn", "query"), [
    (None, "SELECT count(*) FROM jobs WHERE state <> 'a;b' AND label IS DISTINCT FROM 'it''s; fine';"),
    (None, "-- how many\n/* stuck */ (SELECT count(*) FROM jobs); -- done"),
    (PG, "SELECT data #>> '{a,b}' FROM t"),  # jsonb, not a MySQL comment, when the engine is known
    (MY, "SELECT count(*) FROM `order` WHERE note = \"x;y\""),
    (None, "VALUES (1)"),
    (None, "SHOW max_connections"),
    (PG, "TABLE jobs"),
])
def test_reads_pass_load(dsn: str | None, query: str) -> None:
    source = {"dsn": dsn} if dsn else {"dsn_env": "APP_DB_URL"}
    CHECK.validate_python({"type": "sql", **source, "query": query, "above": {"warning": 1, "critical": 2}})


async def test_a_semicolon_inside_quotes_runs_on_both_engines(pg_jobs: str, mysql_jobs: str, deps: CheckDeps) -> None:
    query = "SELECT count(*) FROM jobs WHERE state <> 'a;b'; -- all of them"
    assert await run(sql(pg_jobs, query, unit="jobs"), deps) == (Status.CRITICAL, "42 jobs (limit 20)")
    assert await run(sql(mysql_jobs, query, unit="jobs"), deps) == (Status.CRITICAL, "42 jobs (limit 20)")


# --- the DSN's port, and connect timeouts ---------------------------------------------------------------------


@pytest.mark.parametrize("dsn", ["postgresql://postgres@127.0.0.1:99999/postgres", "mysql://root@127.0.0.1:99999/x",
                                 "postgresql://postgres@127.0.0.1:0/postgres"])
def test_a_port_out_of_range_is_refused_at_load(dsn: str) -> None:
    [problem] = problems(f"{{type: sql, dsn: '{dsn}', query: 'SELECT 1', above: {{warning: 1, critical: 2}}}}")
    assert "services.db.checks[0].dsn: " in problem and "is not a valid" in problem and "99999" not in problem, problem


@pytest.mark.parametrize(("url", "scheme"), [("postgresql://postgres:s3cret@127.0.0.1:99999/postgres", "postgresql://"),
                                        ("mysql://root:s3cret@127.0.0.1:99999/x", "mysql://")])
async def test_a_port_out_of_range_from_the_environment_is_an_error_naming_the_variable(
    http: aiohttp.ClientSession, url: str, scheme: str,
) -> None:
    spec = {"type": "sql", "dsn_env": "APP_DB_URL", "query": "SELECT 1", "above": {"warning": 1, "critical": 2}}
    assert await run(spec, CheckDeps(http=http, environ={"APP_DB_URL": url})) == (
        Status.ERROR, f"$APP_DB_URL is not a valid {scheme} URL")


async def test_postgres_connect_timeout_firing_first_is_no_answer(silent_port: int, deps: CheckDeps) -> None:
    # probe() alone, without the runner's own timeout: asyncpg's connect timeout is what fires.
    check = CHECK.validate_python(sql(f"postgresql://postgres@127.0.0.1:{silent_port}/x", "SELECT 1", timeout=0.5))
    probe = await check.probe(deps)
    assert (probe.status, probe.reason) == (Status.ERROR, f"no answer within 0.5 s from 127.0.0.1:{silent_port}")


async def test_mysql_connect_timeout_firing_first_is_no_answer(full_backlog: int, deps: CheckDeps) -> None:
    check = CHECK.validate_python(sql(f"mysql://root@127.0.0.1:{full_backlog}/x", "SELECT 1", timeout=0.5))
    probe = await check.probe(deps)
    assert (probe.status, probe.reason) == (Status.ERROR, f"no answer within 0.5 s from 127.0.0.1:{full_backlog}")


# --- check-config: a superuser DSN ----------------------------------------------------------------------------


def test_check_config_warns_about_a_superuser_dsn() -> None:
    catalog = parse_catalog(
        "services:\n  db:\n    environment: prod\n    checks:\n"
        "      - {type: sql, name: a, dsn: 'postgresql://postgres@db/app', query: 'SELECT 1', above: {warning: 1, critical: 2}}\n"
        "      - {type: sql, name: b, dsn: 'mysql://monitor@db/app', query: 'SELECT 1', above: {warning: 1, critical: 2}}\n"
        "      - {type: sql, name: c, dsn_env: APP_DB_URL, query: 'SELECT 1', above: {warning: 1, critical: 2}}\n"
        "      - {type: mysql, name: d, dsn: 'mysql://root@db/'}\n"
        "      - {type: mysql, name: e, dsn: 'mariadb://db/'}\n")
    advice = ("a superuser; give checks a monitoring role instead "
              "(PostgreSQL: pg_monitor with default_transaction_read_only = on; MySQL: SELECT and PROCESS only)")
    assert catalog_warnings(catalog) == [
        f"services.db.checks[0]: `dsn` logs in as postgres, {advice}",
        f"services.db.checks[3]: `dsn` logs in as root, {advice}",
        f"services.db.checks[4]: `dsn` logs in as root (no user given), {advice}",
    ]
