"""Client libraries load only for the kinds a catalog (and the settings) use (`bot/adapters.py`, loaded by the
composition root): a fresh interpreter builds the Context for a catalog on SQLite and reports which heavy libraries
it holds."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.test_cli import ROOT, base_env

# redis-py also imports the OpenTelemetry SDK when installed (and the SDK psutil): neither may load without Redis.
HEAVY = ("kubernetes", "docker", "aio_pika", "aiomcache", "aiomysql", "pymysql", "redis", "pymemcache", "psutil",
         "opentelemetry.sdk")
PROBE = """
import json, sys
HEAVY = sys.argv[1].split(",")
import handlers
from bot.app import build_bolt_app, build_context
from bot.catalog_loading import parse_catalog
from bot.settings import Settings
ctx = build_context(Settings(slack_bot_token="xoxb-test-0000000000", slack_signing_secret="s" * 32,
                             database_url="sqlite:///:memory:"), parse_catalog(sys.stdin.read()))
build_bolt_app(ctx, [handlers.register])
print(json.dumps(sorted(name for name in HEAVY if name in sys.modules)))
"""


def loaded(catalog: str, names: tuple[str, ...] = HEAVY, **env: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROBE, ",".join(names)], input=catalog, capture_output=True, text=True, cwd=ROOT,
                          env=base_env(**env), timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


HTTP_ONLY = "services:\n  api:\n    environment: production\n    checks: [{type: http, url: 'http://127.0.0.1:9/'}]\n"


def test_a_catalog_of_http_checks_loads_no_client_library() -> None:
    assert loaded(HTTP_ONLY) == []



def test_an_http_mode_replica_loads_no_socket_mode_client() -> None:
    # Socket Mode's client (slack_sdk's and Bolt's, ~0.3 MB) is imported by bot/app.py only when SLACK_APP_TOKEN is set.
    assert loaded(HTTP_ONLY, ("slack_sdk.socket_mode", "slack_bolt.adapter.socket_mode")) == []

# Loaded on first use, only when the catalog asks (croniter with dateutil for a schedule it sets, Jinja2 for a template
# it sets; bot/scheduling/cron.py, bot/incidents/templates.py), or no longer used at all (sqlite-utils and the numpy
# it pulled in, pydantic-settings).
ON_DEMAND = ("croniter", "dateutil", "jinja2", "sqlite_utils", "numpy", "pydantic_settings")
# Still imported at module level by bot/alerts/routing.py (jinja2) and bot/executors/postgres_backup.py (asyncpg).
NOT_YET_ON_DEMAND = ("jinja2", "asyncpg")


def test_a_sqlite_catalog_without_schedules_or_templates_loads_no_scheduling_library() -> None:
    assert loaded(HTTP_ONLY, tuple(name for name in ON_DEMAND if name not in NOT_YET_ON_DEMAND)) == []


def test_a_sqlite_catalog_without_templates_loads_no_jinja2_and_no_postgresql_client() -> None:
    assert loaded(HTTP_ONLY, NOT_YET_ON_DEMAND) == []


def test_a_schedule_or_a_template_the_catalog_sets_loads_its_library() -> None:
    schedule = HTTP_ONLY + "schedules:\n  digests:\n    nightly: {cron: '0 2 * * *', kind: daily}\n"
    assert {"croniter", "dateutil"} <= set(loaded(schedule, ON_DEMAND))
    template = HTTP_ONLY + "incidents:\n  channel_name: 'inc-{{ id }}-{{ slug }}'\n"
    assert "jinja2" in loaded(template, ON_DEMAND)


def test_a_postgres_or_sql_check_loads_the_postgresql_probe() -> None:
    probe = ("bot.checks.postgres_probe",)
    assert loaded(HTTP_ONLY, probe) == []
    postgres = "services:\n  db:\n    environment: production\n    checks: [{type: postgres, dsn: 'postgresql://u@127.0.0.1:5432/d'}]\n"
    assert loaded(postgres, probe) == list(probe)
    sql = ("services:\n  db:\n    environment: production\n"
           "    checks: [{type: sql, dsn_env: DB_DSN, query: 'SELECT 1', above: {warning: 5, critical: 9}}]\n")
    assert loaded(sql, probe) == list(probe)


def test_redis_url_loads_redis_py_for_the_leases() -> None:
    assert "redis" in loaded(HTTP_ONLY, REDIS_URL="redis://127.0.0.1:6379/0")


def test_redis_mysql_and_sql_checks_load_their_clients() -> None:
    catalog = """
services:
  cache:
    environment: production
    checks: [{type: redis, url: "redis://127.0.0.1:6379/0"}]
  db:
    environment: production
    checks: [{type: mysql, dsn: "mysql://root@127.0.0.1:3306/"}]
"""
    assert {"redis", "pymysql", "aiomysql"} <= set(loaded(catalog))
    # The DSN may come from the environment when the check runs, so a sql check's MySQL client is ready either way.
    sql = ("services:\n  db:\n    environment: production\n"
           "    checks: [{type: sql, dsn_env: DB_DSN, query: 'SELECT 1', above: {warning: 5, critical: 9}}]\n")
    assert {"pymysql", "aiomysql"} <= set(loaded(sql))


def test_runbook_steps_load_the_clients_they_run() -> None:
    catalog = HTTP_ONLY + """runbooks:
  tidy:
    description: tidy
    services: [api]
    steps:
      - {kind: sql, service: api, dsn_env: RUNBOOK_DSN, statement: VACUUM ANALYZE}
      - {kind: flush-cache, service: api, engine: redis, url_env: CACHE_URL, db: 12}
"""
    assert {"pymysql", "redis", "pymemcache"} <= set(loaded(catalog))


def test_the_kinds_a_catalog_names_load_their_clients_at_start_up() -> None:
    catalog = """
services:
  api:
    environment: production
    target: {type: kubernetes, deployment: api}
    checks:
      - {type: rabbitmq, url: "amqp://guest@127.0.0.1:5672/", queues: [{name: jobs}]}
      - {type: memcached, address: "127.0.0.1:11211"}
  web:
    environment: production
    target: {type: docker, container: web}
"""
    assert loaded(catalog) == ["aio_pika", "aiomcache", "docker", "kubernetes"]
