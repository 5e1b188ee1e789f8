"""The actions issue's end-to-end stories through the bot: a production restart of a real container approved
by a second person, and a PostgreSQL backup/restore round trip — all through signed Slack requests."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import asyncpg
import pytest

from bot.runs.models import ActionState
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings, start_bot
from tests.test_approvals import ALICE, BOB, DAVE, button, click, current, ops, requested, text

if TYPE_CHECKING:
    from tests.podman import Containers, Images, Podman

pytest_plugins = ["tests.podman"]  # podman, images, containers


def wait_http(url: str, timeout: float = 15) -> None:
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
async def api(podman: Podman, images: Images, containers: Containers, slack: FakeSlack, http: aiohttp.ClientSession,
              tmp_path: Path) -> AsyncIterator[tuple[RunningBot, object, int]]:
    name, port = containers.name("api"), containers.port()
    container = containers.run(name, images.v1, port=port)
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
      - {{type: http, url: "http://127.0.0.1:{port}/version", timeout: 2}}
"""
    bot, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'o.db'}"), catalog, slack, http)
    yield bot, container, port
    await runner.cleanup()


async def test_a_production_restart_waits_for_a_second_person_then_restarts_the_container_once(api) -> None:
    bot, container, _port = api
    container.reload()
    started_before = container.attrs["State"]["StartedAt"]

    plan = await ops(bot, "restart api it leaks memory")
    assert "Docker container" in text(plan) and "Check the health of api" in text(plan)
    container.reload()
    assert container.attrs["State"]["StartedAt"] == started_before, "a plan touches nothing"

    run_id, posted = await requested(bot, "restart api")
    assert "Approval needed: restart api" in text(posted)
    replies = await asyncio.gather(click(bot, "approval.approve", str(run_id), BOB),
                                   click(bot, "approval.approve", str(run_id), DAVE))
    await bot.settle()
    assert sum("runs now" in reply for reply in replies) == 1

    container.reload()
    assert container.attrs["State"]["StartedAt"] != started_before and container.status == "running"
    run = await bot.ctx.store.get_action(run_id)
    assert run is not None and run.state is ActionState.SUCCEEDED
    final = text(current(bot, run_id))
    assert "✅ Done: restart api" in final and final.count("✅ Restart") == 1 and "✅ Check the health of api" in final
    running = [e for e in await bot.ctx.store.audit_entries(limit=100) if e.kind == "action" and e.args.endswith(" running")]
    assert len(running) == 1


async def test_a_failing_service_in_a_health_report_offers_restart(api) -> None:
    bot, container, _port = api
    await asyncio.to_thread(container.stop, timeout=1)
    report = await ops(bot, "health api")
    [restart] = [b["accessory"] for b in report["blocks"] if b.get("accessory", {}).get("action_id") == "health.restart"]
    assert restart["value"] == "api" and "❌ *api*" in text(report)
    answer = await click(bot, "health.restart", "api", ALICE)
    assert "Plan: restart api" in answer


async def test_history_and_pending_approvals(api) -> None:
    bot, _, _ = api
    run_id, _ = await requested(bot, "restart api")
    pending = await ops(bot, "approvals")
    assert f"|#{run_id}> *restart api* · _production_" in text(pending)  # linked to its message in the channel
    assert button(pending, "approval.approve")["value"] == str(run_id)
    history = await ops(bot, "history api")
    assert f"#{run_id}" in text(history) and "Deploy revisions" in text(history)


async def test_postgres_backup_and_restore_round_trip_through_slack(slack: FakeSlack, http: aiohttp.ClientSession,
                                                                  pg_database: str, tmp_path: Path) -> None:
    conn = await asyncpg.connect(pg_database)
    await conn.execute("CREATE TABLE orders (id int primary key, total numeric)")
    await conn.execute("INSERT INTO orders VALUES (1, 10.5), (2, 99)")
    catalog = f"""
approvals:
  environments:
    staging: {{default: {{approvals: 0}}}}
services:
  orders-db:
    environment: staging
    backup: {{type: postgres, dsn_env: ORDERS_DSN, directory: "{tmp_path / 'dumps'}"}}
"""
    bot, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'o.db'}"), catalog, slack, http,
                                  environ={"ORDERS_DSN": pg_database})
    try:
        plan = await ops(bot, "backup orders-db")
        await click(bot, "action.request", button(plan, "action.request")["value"], ALICE)
        [backup] = await bot.ctx.store.backups("orders-db")
        assert backup.path.exists() and backup.size > 0

        await conn.execute("DELETE FROM orders WHERE id = 2")
        await conn.execute("UPDATE orders SET total = 0 WHERE id = 1")
        plan = await ops(bot, f"restore orders-db {backup.id}")
        assert "Safety backup" in text(plan)
        run_id = button(plan, "action.request")["value"]
        await click(bot, "action.request", run_id, ALICE)
        run = await bot.ctx.store.get_action(int(run_id))
        assert run is not None and run.state is ActionState.SUCCEEDED, run.outcome
        rows = await conn.fetch("SELECT id, total FROM orders ORDER BY id")
        assert [(r["id"], float(r["total"])) for r in rows] == [(1, 10.5), (2, 99.0)]
        assert sorted(b.label.value for b in await bot.ctx.store.backups("orders-db")) == ["manual", "safety"]
    finally:
        await conn.close()
        await runner.cleanup()


async def test_a_kubernetes_rollback_through_slack_restores_the_previous_template(slack: FakeSlack, http: aiohttp.ClientSession,
                                                                                  tmp_path: Path) -> None:
    from tests.k8s_api import K8sApi

    api = K8sApi(token="k8s-secret-token")
    await api.start()
    api.add_deployment("web", image="registry.example/web:1.0", namespace="shop")
    api.set_image("web", "registry.example/web:2.0", namespace="shop")
    catalog = f"""
approvals:
  environments:
    staging: {{default: {{approvals: 0}}}}
services:
  web:
    environment: staging
    target: {{type: kubernetes, namespace: shop, deployment: web, api_url: "{api.url}", token_env: K8S_TOKEN,
              poll_interval: 0.05, rollout_timeout: 10}}
"""
    bot, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'o.db'}"), catalog, slack, http,
                                  environ={"K8S_TOKEN": "k8s-secret-token"})
    try:
        history = await ops(bot, "history web")
        assert "registry.example/web:2.0" in text(history) and "registry.example/web:1.0" in text(history)
        [older] = [b["accessory"] for b in history["blocks"] if b.get("accessory", {}).get("action_id") == "rollback.to"]
        assert older["value"] == "web 1"
        assert "Plan: rollback web to 1" in await click(bot, "rollback.to", older["value"], ALICE)
        plan = await ops(bot, "rollback web")
        run_id = button(plan, "action.request")["value"]
        await click(bot, "action.request", run_id, ALICE)
        run = await bot.ctx.store.get_action(int(run_id))
        assert run is not None and run.state is ActionState.SUCCEEDED, run.outcome
        containers = api.deployment("web", namespace="shop")["spec"]["template"]["spec"]["containers"]
        assert containers[0]["image"] == "registry.example/web:1.0"
        assert "k8s-secret-token" not in text(current(bot, int(run_id)))
    finally:
        await runner.cleanup()
        await api.stop()
