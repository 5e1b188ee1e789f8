"""The runbooks issue's stories with real parts, through signed Slack requests: a deploy whose new image fails its
health gate rolls back on its own (podman), a good deploy stays, and the restore runbook round-trips PostgreSQL
data with the app container stopped around it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import pymemcache
import pymysql
import pytest
import redis.asyncio as aioredis

from bot.runs.models import ActionState, StepState
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings, start_bot
from tests.test_actions_e2e import wait_http
from tests.test_approvals import ALICE, BOB, CHANNEL, DAVE, button, click, ops, text
from tests.test_runbooks import message_of, request_runbook

if TYPE_CHECKING:
    from tests.podman import Containers, Images, Podman

pytest_plugins = ["tests.podman"]  # podman, images, containers


def version(port: int) -> str:
    import urllib.request

    return urllib.request.urlopen(f"http://127.0.0.1:{port}/version", timeout=2).read().decode().strip()


@pytest.fixture
async def deploy(podman: Podman, images: Images, containers: Containers, slack: FakeSlack, http: aiohttp.ClientSession,
                 tmp_path: Path) -> AsyncIterator[tuple[RunningBot, str, int]]:
    name, port = containers.name("api"), containers.port()
    containers.run(name, images.v1, port=port, labels={"app": name})
    await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/version")
    slack.groups = {"S0LEADS": [BOB, DAVE]}
    catalog = f"""
approvals:
  environments:
    production: {{default: {{approvals: 1, approvers: [S0LEADS]}}}}
services:
  api:
    environment: production
    target: {{type: docker, container: {name}, docker_host: "{podman.base_url}", start_timeout: 20, poll_interval: 0.2}}
    checks:
      - {{type: http, url: "http://127.0.0.1:{port}/health", timeout: 2}}
    runbooks: [deploy-api]
runbooks:
  deploy-api:
    description: Set a new image; roll back on its own unless it is healthy within a few tries.
    services: [api]
    parameters:
      version: {{type: image_tag, description: the image tag to deploy}}
    steps:
      - {{kind: deploy, service: api, image: "{{{{ params.version }}}}"}}
      - {{kind: check, service: api, attempts: 4, interval: 0.5}}
      - {{kind: notify, text: "api {{{{ params.version }}}} is live"}}
"""
    bot, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'o.db'}"), catalog, slack, http)
    yield bot, name, port
    await runner.cleanup()


async def test_a_deploy_that_fails_its_health_gate_is_approved_then_rolls_back_on_its_own(deploy, containers: Containers) -> None:
    bot, name, port = deploy
    plan = await ops(bot, "run deploy-api version=sick")
    shown = text(plan)
    assert "Deploy sick to api (Docker container " in shown and "read-only look: runs localhost/opsbot-test:1 now" in shown
    assert "undo: deploy the image it ran before" in shown
    assert version(port) == "1", "a plan touches nothing"

    run_id = await request_runbook(bot, "run deploy-api version=sick")
    assert "Approve" in text(message_of(bot, run_id))
    await click(bot, "approval.approve", str(run_id), ALICE)  # the requester cannot approve their own
    assert (await bot.ctx.store.get_action(run_id)).state is ActionState.PENDING
    await click(bot, "approval.approve", str(run_id), BOB)
    run = await bot.ctx.store.get_action(run_id)
    assert run is not None and run.state is ActionState.FAILED, run.outcome
    assert [s.state for s in run.steps] == [StepState.UNDONE, StepState.FAILED, StepState.SKIPPED, StepState.SUCCEEDED]
    assert run.steps[3].title == "Undo “Deploy sick to api (Docker container " + name + ")”: deploy localhost/opsbot-test:1 again"
    assert version(port) == "1" and containers.get(name).attrs["Config"]["Image"] == "localhost/opsbot-test:1"
    story = text(message_of(bot, run_id))
    assert "❌ Failed: runbook deploy-api (version=sick)" in story
    assert "Step 2 failed: api is not healthy after 4 tries" in story and "Rolled back" in story
    assert "↩ Deploy sick to api" in story and "⏭ Post to this channel" in story
    assert "put back as before the run (step 1 undone)" in story
    health = await ops(bot, "health api")
    assert "✅" in text(health) and "❌ *api*" not in text(health), "the service is healthy again"


async def test_a_good_deploy_stays(deploy, containers: Containers) -> None:
    bot, _name, port = deploy
    run_id = await request_runbook(bot, "run deploy-api version=2")
    await click(bot, "approval.approve", str(run_id), DAVE)
    run = await bot.ctx.store.get_action(run_id)
    assert run is not None and run.state is ActionState.SUCCEEDED, run.outcome
    assert [s.state for s in run.steps] == [StepState.SUCCEEDED] * 3
    assert version(port) == "2"
    assert any("api 2 is live" in text(c.args) for c in bot.slack.of("chat.postMessage"))


async def test_the_restore_runbook_stops_the_app_restores_postgres_and_starts_it_again(
        podman: Podman, images: Images, containers: Containers, slack: FakeSlack, http: aiohttp.ClientSession,
        pg_database: str, tmp_path: Path) -> None:
    name, port = containers.name("web"), containers.port()
    containers.run(name, images.v1, port=port)
    await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/version")
    conn = await asyncpg.connect(pg_database)
    await conn.execute("CREATE TABLE orders (id int primary key, total numeric)")
    await conn.execute("INSERT INTO orders VALUES (1, 10.5), (2, 99)")
    catalog = f"""
approvals:
  environments:
    staging: {{default: {{approvals: 0}}}}
services:
  web:
    environment: staging
    target: {{type: docker, container: {name}, docker_host: "{podman.base_url}", start_timeout: 20, poll_interval: 0.2}}
    checks: [{{type: http, url: "http://127.0.0.1:{port}/health", timeout: 2}}]
  orders-db:
    environment: staging
    backup: {{type: postgres, dsn_env: ORDERS_DSN, directory: "{tmp_path / 'dumps'}"}}
    checks: [{{type: postgres, dsn_env: ORDERS_DSN}}]
runbooks:
  restore-orders:
    description: Stop the app, restore the database (safety backup first), start the app, verify.
    services: [web, orders-db]
    parameters:
      backup: {{type: backup, service: orders-db}}
    steps:
      - {{kind: stop, service: web}}
      - {{kind: restore, service: orders-db, backup: "{{{{ params.backup }}}}"}}
      - {{kind: start, service: web}}
      - {{kind: check, service: web, attempts: 5, interval: 0.5}}
      - {{kind: check, service: orders-db}}
"""
    bot, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'o.db'}"), catalog, slack, http,
                                  environ={"ORDERS_DSN": pg_database})
    try:
        plan = await ops(bot, "backup orders-db")
        await click(bot, "action.request", button(plan, "action.request")["value"], ALICE)
        [backup] = await bot.ctx.store.backups("orders-db")
        await conn.execute("DELETE FROM orders WHERE id = 2")
        await conn.execute("UPDATE orders SET total = 0 WHERE id = 1")

        plan = await ops(bot, "run restore-orders backup=latest")
        assert f"Restore orders-db from backup {backup.id} of" in text(plan) and "Stop web" in text(plan)
        run_id = int(button(plan, "action.request")["value"])
        await click(bot, "action.request", str(run_id), ALICE)
        run = await bot.ctx.store.get_action(run_id)
        assert run is not None and run.state is ActionState.SUCCEEDED, run.outcome
        assert [s.state for s in run.steps] == [StepState.SUCCEEDED] * 5
        rows = await conn.fetch("SELECT id, total FROM orders ORDER BY id")
        assert [(r["id"], float(r["total"])) for r in rows] == [(1, 10.5), (2, 99.0)]
        safety = [b for b in await bot.ctx.store.backups("orders-db") if b.label.value == "safety"]
        assert len(safety) == 1 and run.steps[1].undo == {"safety_backup": safety[0].id}
        assert containers.get(name).status == "running" and version(port) == "1"
    finally:
        await conn.close()
        await runner.cleanup()


async def test_a_maintenance_window_runs_sql_ends_long_queries_flushes_caches_and_collects_logs(
        podman: Podman, images: Images, containers: Containers, slack: FakeSlack, http: aiohttp.ClientSession,
        pg_database: str, mysql_database: str, memcached: tuple[str, int], tmp_path: Path) -> None:
    name, port = containers.name("web"), containers.port()
    containers.run(name, images.v1, port=port)
    await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/version")
    # Redis database 12 is this test's alone (test_executor_caches flushes 13): the runbook flushes it whole.
    cache = aioredis.from_url("redis://127.0.0.1:6379/12")
    await cache.flushdb()
    await cache.set("page:1", "cached")
    await asyncio.to_thread(pymemcache.Client(memcached).set, "session", "x")
    parts = urlsplit(mysql_database)
    shop = await asyncio.to_thread(pymysql.connect, host=parts.hostname, port=parts.port, user=parts.username,
                                   database=parts.path.lstrip("/"), autocommit=True)
    with shop.cursor() as cursor:
        cursor.execute("CREATE TABLE items (id int primary key) ENGINE=InnoDB")
    stuck = await asyncpg.connect(pg_database)
    sleeping = asyncio.create_task(stuck.fetchval("SELECT pg_sleep(60)"))
    await asyncio.sleep(1.2)  # older than the runbook's 0.01 minutes
    catalog = f"""
services:
  web:
    environment: staging
    target: {{type: docker, container: {name}, docker_host: "{podman.base_url}", start_timeout: 20, poll_interval: 0.2}}
  orders-db:
    environment: staging
    backup: {{type: postgres, dsn_env: ORDERS_DSN, directory: "{tmp_path / 'dumps'}"}}
  shop-db:
    environment: staging
runbooks:
  nightly:
    description: The weekly maintenance window, from the runbooks.
    services: [web, orders-db, shop-db]
    approvals: {{approvals: 0}}
    steps:
      - {{kind: terminate-queries, service: orders-db, older_than_minutes: 0.01}}
      - {{kind: sql, service: orders-db, statement: VACUUM ANALYZE}}
      - {{kind: sql, service: shop-db, engine: mysql, dsn_env: SHOP_DSN, statement: OPTIMIZE TABLE items}}
      - {{kind: flush-cache, service: web, engine: redis, url_env: CACHE_URL, db: 12}}
      - {{kind: flush-cache, service: web, engine: memcached, address: "{memcached[0]}:{memcached[1]}"}}
      - {{kind: collect-logs, service: web, minutes: 5}}
      - {{kind: notify, text: "maintenance window done", mention: [S0ONCALL]}}
"""
    bot, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'o.db'}"), catalog, slack, http,
                                  environ={"ORDERS_DSN": pg_database, "SHOP_DSN": mysql_database,
                                           "CACHE_URL": "redis://127.0.0.1:6379/0"})
    try:
        plan = await ops(bot, "run nightly")
        assert "read-only look: 1 running that long now: pid" in text(plan) and "pg_sleep" in text(plan)
        assert not sleeping.done(), "the plan only looked"
        await click(bot, "action.request", button(plan, "action.request")["value"], ALICE)
        [run] = await bot.ctx.store.actions(limit=1)
        assert run.state is ActionState.SUCCEEDED, (run.outcome, [(s.title, s.detail) for s in run.steps])
        with pytest.raises(asyncpg.PostgresError):
            await sleeping
        details = [s.detail for s in run.steps]
        assert details[0].startswith("ended 1: pid") and details[3] == "1 key removed"
        assert "OPTIMIZE TABLE" in details[2] and details[4] == "1 item removed"
        assert await cache.dbsize() == 0
        logs = slack.file_text(title="Logs of web, last 5 min", channel=CHANNEL)
        assert logs.startswith(f"==> {name} <==")
        posted = [c.args["text"] for c in slack.of("chat.postMessage") if c.args["text"].endswith("window done")]
        assert posted == ["<!subteam^S0ONCALL> maintenance window done"]
    finally:
        sleeping.cancel()
        await stuck.close(timeout=2)
        shop.close()
        await cache.aclose()
        await runner.cleanup()
