"""The `mysql` check against the real MariaDB: connections in use against max_connections, failures, loading."""

from __future__ import annotations

import re

import aiohttp
import pymysql
import pytest

from bot.catalog_loading import CatalogInvalid, parse_catalog
from bot.checks import CheckDeps, Status
from tests.checks import CHECK, run
from tests.conftest import free_port

REASON = re.compile(r"^(\d+) of (\d+) connections in use \((\d+) %\)( \(limit [\d.]+ %\))?$")


@pytest.fixture
def one_connection_percent() -> float:
    """What one connection is of the shared server's max_connections, so thresholds fit whatever it is set to."""
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root")
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT @@max_connections")
            (limit,) = cursor.fetchone()
    finally:
        conn.close()
    return 100.0 / int(limit)


async def test_mysql_with_room_is_ok(mysql_database: str, deps: CheckDeps) -> None:
    status, reason = await run({"type": "mysql", "dsn": mysql_database}, deps)
    assert status is Status.OK, reason
    in_use, limit, _, note = REASON.match(reason).groups()
    assert 1 <= int(in_use) < int(limit) and note is None


async def test_mysql_warning_names_the_limit(mysql_database: str, deps: CheckDeps, one_connection_percent: float) -> None:
    limits = {"warning": one_connection_percent, "critical": 100}
    status, reason = await run({"type": "mysql", "dsn": mysql_database, "connections_percent": limits}, deps)
    assert status is Status.WARNING and reason.endswith(f" %) (limit {one_connection_percent:g} %)"), reason


async def test_mysql_critical(mysql_database: str, deps: CheckDeps, one_connection_percent: float) -> None:
    limits = {"warning": one_connection_percent, "critical": one_connection_percent}
    status, reason = await run({"type": "mysql", "dsn": mysql_database, "connections_percent": limits}, deps)
    assert status is Status.CRITICAL and REASON.match(reason), reason


async def test_mysql_counts_the_connections_others_hold(mysql_database: str, deps: CheckDeps) -> None:
    spec = {"type": "mysql", "dsn_env": "SHOP_DB_URL"}
    env_deps = CheckDeps(http=deps.http, environ={"SHOP_DB_URL": mysql_database})
    before = int(REASON.match((await run(spec, env_deps))[1]).group(1))
    held = [pymysql.connect(host="127.0.0.1", port=3306, user="root") for _ in range(5)]
    try:
        after = int(REASON.match((await run(spec, env_deps))[1]).group(1))
    finally:
        for conn in held:
            conn.close()
    # Other tests may connect and leave meanwhile; five held connections still show.
    assert after >= before + 3


async def test_mysql_server_without_a_database_in_the_dsn(deps: CheckDeps) -> None:
    status, _ = await run({"type": "mysql", "dsn": "mariadb://root@127.0.0.1:3306/"}, deps)
    assert status is Status.OK


async def test_mysql_wrong_user_is_critical(deps: CheckDeps) -> None:
    status, reason = await run({"type": "mysql", "dsn": "mysql://nobody_here@127.0.0.1:3306/"}, deps)
    assert status is Status.CRITICAL and "Access denied for user 'nobody_here'" in reason, reason


async def test_mysql_unreachable_is_critical(deps: CheckDeps) -> None:
    port = free_port()
    status, reason = await run({"type": "mysql", "dsn": f"mysql://root@127.0.0.1:{port}/", "timeout": 2}, deps)
    assert status is Status.CRITICAL and reason.startswith(f"cannot connect to 127.0.0.1:{port}: "), reason


async def test_mysql_server_that_never_answers_times_out(silent_port: int, deps: CheckDeps) -> None:
    spec = {"type": "mysql", "dsn": f"mysql://root@127.0.0.1:{silent_port}/", "timeout": 0.5}
    assert await run(spec, deps) == (Status.ERROR, "timed out after 0.5 s")


@pytest.mark.parametrize(("check", "message"), [
    ("{type: mysql}", "give exactly one of `dsn` and `dsn_env`"),
    ("{type: mysql, dsn: 'postgresql://app@db/app'}", "not a mysql:// or mariadb:// URL"),
    ("{type: mysql, dsn: 'mysql://root:hunter2@db/app'}", "must not contain a password"),
    ("{type: mysql, dsn_env: DB, connections_percent: {warning: 95, critical: 80}}", "must not be above critical"),
    ("{type: mysql, dsn_env: DB, connections_percent: {warning: 80, critical: 120}}",
     "services.db.checks[0].connections_percent: critical (120) is a percentage: it must not be above 100"),
    ("{type: mysql, dsn: 'mysql://root:hunter2@db:99999/'}", "services.db.checks[0].dsn: the MySQL DSN is not a mysql:// URL"),
])
def test_bad_mysql_checks_are_refused(check: str, message: str) -> None:
    with pytest.raises(CatalogInvalid) as caught:
        parse_catalog(f"services:\n  db:\n    environment: prod\n    checks:\n      - {check}\n", "opsbot.yml")
    [problem] = str(caught.value).splitlines()
    assert message in problem and "hunter2" not in problem


async def test_mysql_port_out_of_range_from_the_environment_names_the_variable(http: aiohttp.ClientSession) -> None:
    spec = {"type": "mysql", "dsn_env": "SHOP_DB_URL"}
    env = {"SHOP_DB_URL": "mysql://root:s3cret@127.0.0.1:99999/"}
    assert await run(spec, CheckDeps(http=http, environ=env)) == (Status.ERROR, "$SHOP_DB_URL is not a valid mysql:// URL")


async def test_mysql_connect_timeout_firing_first_is_no_answer(full_backlog: int, deps: CheckDeps) -> None:
    # probe() alone, without the runner's own timeout: aiomysql's connect_timeout is what fires.
    check = CHECK.validate_python({"type": "mysql", "dsn": f"mysql://root@127.0.0.1:{full_backlog}/", "timeout": 0.5})
    probe = await check.probe(deps)
    assert (probe.status, probe.reason) == (Status.ERROR, f"no answer within 0.5 s from 127.0.0.1:{full_backlog}")
