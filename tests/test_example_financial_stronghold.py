"""Financial Stronghold's operations guide as a catalog (examples/financial-stronghold.yml): the real CLI accepts
it, it holds every item of the guide's morning health check, its checklists plan what opsbot does and what a
person does, and it works end to end on a miniature of the stack.

The miniature: web and nginx are busybox containers (podman) serving the guide's health paths and JSON body,
PostgreSQL and RabbitMQ are the real servers on 127.0.0.1, Memcached runs on a free port. Each test breaks one
thing, reads the red line a person would read, fixes it (through a second person's approval where opsbot holds
the fix: restart, kill-long-queries, backup-all) and sees green again.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import aio_pika
import aiohttp
import asyncpg
import pymemcache
import pytest

from bot.catalog import Catalog
from bot.catalog_loading import load_catalog, parse_catalog
from bot.incidents.postmortem import render_postmortem
from bot.runbooks.params import ParametersInvalid
from bot.runs.models import ActionState
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings, start_bot
from tests.stacks import (
    EXAMPLES,
    MISSING_DOCKER,
    Report,
    ShiftedClock,
    all_green,
    check_config,
    example,
    health,
    health_until,
    kinds,
    plan_runbook,
    run_app,
    wait_serving,
)
from tests.test_approvals import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    button,
    click,
    ops,
    requested,
    text,
)
from tests.test_postmortem import a_resolved_incident, an_entry, an_item
from tests.test_runbooks import message_of, request_runbook, until

if TYPE_CHECKING:
    from tests.podman import Containers, Images, Podman

pytest_plugins = ["tests.podman"]  # podman, images, containers

EXAMPLE = EXAMPLES / "financial-stronghold.yml"
BROKER = "amqp://guest:guest@127.0.0.1:5672/"
HEALTHY = {"status": "healthy", "database": "connected", "cache": "connected", "queue": "connected",
           "timestamp": "2024-01-01T12:00:00Z"}  # the guide's "Expected response"


# --- the catalog ------------------------------------------------------------------------------------------------


def test_opsbot_check_config_accepts_the_example(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    done = check_config(EXAMPLE, monkeypatch, capsys, FS_DB_URL="postgresql://django_user:x@db:5432/django_app_prod",
                        FS_RABBITMQ_URL="amqp://fs:x@rabbitmq:5672/")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK — 8 services" in done.stdout and "3 scheduled backups" in done.stdout
    assert "is not set" not in done.stdout + done.stderr
    assert [line for line in done.stdout.splitlines() if line.startswith("warning")] == [], "no step lacks an undo it needs"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(EXAMPLE)


def checks_of(catalog: Catalog, service: str) -> dict[str, object]:
    return {check.label: check for check in catalog.services[service].checks}


def test_every_item_of_the_morning_health_check_is_a_check(catalog: Catalog) -> None:
    stack, web, nginx, db = (checks_of(catalog, name) for name in ("stack", "web", "nginx", "db"))
    # 1. docker compose ps
    assert stack["compose ps"].project == "financial_stronghold" and stack["compose ps"].expect == 5
    # 2. curl -f https://yourdomain.com/health/, and the JSON body the guide expects
    assert str(nginx["https://…/health/"].url) == "https://yourdomain.com/health/"
    fields = {path: expectation.equals for path, expectation in web["/health/"].fields.items()}
    assert fields == {"status": "healthy", "database": "connected", "cache": "connected", "queue": "connected"}
    assert {"/health/db/", "/health/cache/", "/health/queue/"} <= set(web)
    # 3. docker stats / free / df, with the Key Metrics table's limits
    assert (stack["memory and CPU"].memory_percent.warning, stack["memory and CPU"].memory_percent.critical) == (85, 95)
    assert (stack["disk"].usage_percent.warning, stack["disk"].usage_percent.critical) == (85, 95)
    # 4. logs --since=24h | grep -i error
    assert (stack["errors in logs (24 h)"].pattern, stack["errors in logs (24 h)"].window_hours) == ("error", 24)
    # 5. pg_stat_activity, with Database Connections 80 % / 95 %, and the Database Health section's blocking queries
    assert (db["connections"].connections_percent.warning, db["connections"].connections_percent.critical) == (80, 95)
    assert "pg_blocking_pids" in db["blocked queries"].query
    assert "interval '5 minutes'" in db["long-running queries"].query
    # Cache and queue health; response times 200 / 500 ms
    memcached = checks_of(catalog, "memcached")["stats"]
    assert memcached.hit_ratio_percent.warning == 80
    assert [q.name for q in checks_of(catalog, "rabbitmq")["queues"].queues] == ["celery"]
    assert all(check.latency_ms.warning == 200 and check.latency_ms.critical == 500
               for label, check in nginx.items() if label.startswith("https://"))


def test_backups_severities_digests_and_approvals_follow_the_guide(catalog: Catalog) -> None:
    for name in ("db", "media", "config"):
        backup = catalog.services[name].backup
        assert backup.retention_days == 30 and backup.schedule.cron.split()[1] == "2", name
        assert catalog.services[name].channel == "C0FSOPS"
        assert "last backup" in checks_of(catalog, name)
    severities = [(s.name, s.response_minutes) for s in catalog.incidents.severities]
    assert severities == [("P1", 15), ("P2", 60), ("P3", 240), ("P4", 1440)]
    assert catalog.schedules.digests["daily"].cron == "0 8 * * *"
    production = catalog.approvals.environments["production"]
    assert production.restore.approvals == 2 and production.default.approvals == 1
    assert catalog.services["db"].approvals.restart.approvers == ["S0FSSENIOR"]
    assert all(catalog.runbooks[name].approvals.approvals == 2 for name in ("restore-db", "restore-media"))
    assert {"deploy-web", "rollback-web", "restore-db", "pre-maintenance", "post-maintenance"} <= set(catalog.runbooks)


def test_the_post_mortem_has_the_teams_headings(catalog: Catalog) -> None:
    incident = a_resolved_incident(services=("web", "db"))
    document = render_postmortem(incident, [an_entry(4, "restarted web")], [an_item("add a pool limit", owner="U2")],
                                 catalog.incidents, services={"web": "production", "db": "production"},
                                 now=incident.resolved_at + timedelta(hours=1), names={"U1": "alice", "U2": "bob"})
    assert "failed" not in document.split("\n", 1)[0], document[:300]
    assert document.startswith("# Incident Post-Mortem: 2026-11-23 - API is down")
    headings = [line for line in document.splitlines() if line.startswith("## ")]
    assert headings == ["## Summary", "## Timeline", "## Root Cause", "## Action Items", "## Lessons Learned"]
    assert "- Duration: 1 h 12 min" in document and "restarted web (@bob)" in document
    assert "1. add a pool limit - Assigned to @bob - Due _no date_" in document


# --- the checklists, planned in memory ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def in_memory() -> Catalog:
    """The example, its Docker socket one that is not there: nothing a plan looks at is reachable."""
    return parse_catalog(example("financial-stronghold", {"unix:///var/run/docker.sock": MISSING_DOCKER}))


async def test_the_maintenance_checklists_mix_opsbots_steps_with_a_persons(in_memory: Catalog) -> None:
    before = await plan_runbook(in_memory, "pre-maintenance")
    assert kinds(before) == ["backup", "backup", "backup", "check", "manual", "query", "check", "notify"]
    status, listed, gate = before.plan[4], before.plan[5], before.plan[6]
    assert status.title == "Status page" and status.on_failure == "stop"
    # 5 "Check for long-running processes": the list a person reads, then the gate on that one check.
    assert (listed.title, listed.service, listed.on_failure) == ("Long-running processes", "db", "continue")
    assert listed.args["statement"] == in_memory.queries["long-running-queries"].statement
    assert (gate.service, gate.args["checks"], gate.on_failure) == ("db", ["long-running queries"], "stop")

    after = await plan_runbook(in_memory, "post-maintenance")
    assert kinds(after) == ["check"] * 6 + ["manual", "collect-logs", "manual", "notify"]
    assert [step.title for step in after.plan if step.kind == "manual"] == ["Test key functionality", "Status page"]

    kill = await plan_runbook(in_memory, "kill-long-queries")
    assert kinds(kill) == ["terminate-queries", "check"]
    assert kill.plan[1].args["checks"] == ["long-running queries", "blocked queries"], "not the backup's age"


async def test_auto_scale_is_a_scale_web_runbook_planned_for_the_compose_service(in_memory: Catalog) -> None:
    # auto_scale.sh's `up -d --scale web=3`, offered where the stack's `memory and CPU` line fails
    assert "scale-web" in in_memory.services["stack"].runbooks
    run = await plan_runbook(in_memory, "scale-web")
    assert kinds(run) == ["scale", "check", "check", "check", "notify"]
    scale, web, nginx, stack = run.plan[:4]
    assert (scale.service, scale.args["replicas"], scale.undo) == ("web", 3, "scale back to the replicas it had")
    assert scale.title.startswith("Scale web to 3 (") and "com.docker.compose.service=web" in scale.title
    assert [(s.service, s.args["checks"]) for s in (web, nginx, stack)] == [
        ("web", ["/health/"]), ("nginx", ["https://…/health/"]), ("stack", ["compose ps"])]
    assert (await plan_runbook(in_memory, "scale-web", replicas="1")).plan[0].args["replicas"] == 1  # scaling down
    with pytest.raises(ParametersInvalid) as refused:
        await plan_runbook(in_memory, "scale-web", replicas="0")
    assert "*replicas*: '0' is not a whole number from 1 to 6" in str(refused.value)


async def test_queue_details_and_the_dependency_audit_run_read_only_commands_in_their_containers(in_memory: Catalog) -> None:
    queues = await plan_runbook(in_memory, "queue-details")
    assert [(s.kind, s.service, s.args["command"][:2], s.args["read_only"]) for s in queues.plan] == [
        ("exec", "rabbitmq", ["rabbitmqctl", "list_queues"], True), ("exec", "rabbitmq", ["rabbitmqctl", "list_exchanges"], True)]
    assert queues.approvals_needed == 0, "it only reads"
    assert [(step.title, step.undo) for step in queues.plan] == [("Queues", None), ("Exchanges", None)]
    audit = await plan_runbook(in_memory, "dependency-audit")
    assert [(s.kind, s.service, s.args["command"]) for s in audit.plan] == [("exec", "web", ["pip-audit"])]
    schedule = in_memory.runbook("dependency-audit").schedule
    assert schedule is not None and (schedule.cron, schedule.timezone) == ("0 4 * * 0", "UTC")  # vuln_scan.sh's crontab


def test_the_guides_sql_a_person_reads_is_named_queries(catalog: Catalog) -> None:
    assert set(catalog.queries) == {
        "connections-by-state", "database-size", "blocking-queries", "long-running-queries", "slow-queries",
        "frequent-queries", "many-rows-queries", "column-statistics", "index-usage", "unused-indexes",
        "new-users", "active-users"}
    assert {(q.service, q.engine, q.dsn_env) for q in catalog.queries.values()} == {("db", "postgres", "FS_DB_URL")}
    assert "pg_blocking_pids" not in catalog.queries["blocking-queries"].statement  # the guide's own join, completed
    assert "NOT blocked_locks.granted" in catalog.queries["blocking-queries"].statement


# --- the miniature ----------------------------------------------------------------------------------------------


@dataclass
class Stack:
    bot: RunningBot
    clock: ShiftedClock
    dsn: str
    queue: aio_pika.abc.AbstractQueue  # Celery's queue, on a channel of the test's own
    memcached: tuple[str, int]
    web: str  # the web container's name
    web_health: Path  # the file web serves as /health/
    worker: str | None = None  # the consumer tag of the stand-in Celery worker, while it runs

    async def start_worker(self) -> None:
        self.worker = await self.queue.consume(_ack)

    async def stop_worker(self) -> None:
        assert self.worker is not None
        await self.queue.cancel(self.worker)
        self.worker = None


@pytest.fixture
async def stack(podman: Podman, images: Images, containers: Containers, slack: FakeSlack,
                http: aiohttp.ClientSession, pg_database: str, memcached: tuple[str, int],
                tmp_path: Path) -> AsyncIterator[Stack]:
    project, queue = f"fs{containers.run_id}", f"fs-{uuid.uuid4().hex[:8]}"
    labels = {"com.docker.compose.project": project}
    public = {"/index.html": "<h1>Financial Stronghold</h1>", "/health/index.html": json.dumps(HEALTHY),
              "/admin/index.html": "login", "/api/index.html": "{}"}
    app = {"/health/index.html": json.dumps(HEALTHY), "/health/db/index.html": "ok", "/health/cache/index.html": "ok",
           "/health/queue/index.html": "ok"}
    web, web_port = run_app(containers, images.v1, "web", app, tmp_path, labels={**labels, "com.docker.compose.service": "web"})
    _, nginx_port = run_app(containers, images.v1, "nginx", public, tmp_path,
                            labels={**labels, "com.docker.compose.service": "nginx"})
    await wait_serving(f"http://127.0.0.1:{web_port}/health/")
    await wait_serving(f"http://127.0.0.1:{nginx_port}/health/")
    srv = tmp_path / "srv"
    for folder in ("media", "environments", "nginx"):
        (srv / folder).mkdir(parents=True)
        (srv / folder / "keep.txt").write_text(folder)
    (srv / "docker-compose.production.yml").write_text("services: {}\n")
    (srv / ".env.production").write_text("DEBUG=0\n")
    (tmp_path / "docker").mkdir()
    conn = await asyncpg.connect(pg_database)
    await conn.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance numeric NOT NULL)")
    await conn.execute("INSERT INTO accounts VALUES (1, 100), (2, 250)")
    await conn.close()
    catalog = example("financial-stronghold", {
        "http://web:8000": f"http://127.0.0.1:{web_port}",
        "https://yourdomain.com": f"http://127.0.0.1:{nginx_port}",
        "memcached:11211": f"{memcached[0]}:{memcached[1]}",
        "unix:///var/run/docker.sock": podman.base_url,
        "/srv/financial_stronghold": str(srv),
        "/var/backups/financial-stronghold": str(tmp_path / "backups"),
        "/var/lib/docker": str(tmp_path / "docker"),
        "financial_stronghold": project,
        # web and nginx are containers here; PostgreSQL, Memcached and RabbitMQ are the host's own servers.
        "expect: 5": "expect: 2",
        "name: celery": f"name: {queue}",
        # The test machine's load is not the stack's; the limits stay what the guide says for memory and disk.
        "load_per_cpu: {warning: 0.8, critical: 0.9}": "load_per_cpu: {warning: 50, critical: 100}",
        # "Older than 5 minutes" in seconds, so a test need not wait five minutes for a query to be long; and
        # the miniature's database only, so other tests' sessions on the shared server never count.
        "WHERE state = 'active' AND query_start < now() - interval '5 minutes'":
            "WHERE datname = current_database() AND state = 'active' AND query_start < now() - interval '1 second'",
        "WHERE cardinality(pg_blocking_pids(pid)) > 0": "WHERE datname = current_database() AND "
                                                        "cardinality(pg_blocking_pids(pid)) > 0",
        "older_than_minutes: 5": "older_than_minutes: 0.015",
    })
    slack.groups = {"S0FSOPS": [BOB, DAVE], "S0FSSENIOR": [CAROL, DAVE]}
    clock = ShiftedClock()
    broker = await aio_pika.connect(BROKER)
    try:
        channel = await broker.channel()
        await channel.set_qos(prefetch_count=50)
        declared = await channel.declare_queue(queue)
        bot, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'opsbot.db'}"), catalog, slack, http,
                                      environ={"FS_DB_URL": pg_database, "FS_RABBITMQ_URL": BROKER}, clock=clock)
        try:
            # Last night's backups, as the 02:00 job leaves them: the morning check expects fresh ones.
            await approved_runbook(bot, "run backup-all")
            made = Stack(bot, clock, pg_database, declared, memcached, web.name,
                         tmp_path / "www-web" / "health" / "index.html")  # where run_app put web's files
            await made.start_worker()
            yield made
        finally:
            await runner.cleanup()
            await declared.delete(if_unused=False, if_empty=False)
    finally:
        await broker.close()


async def _ack(message: aio_pika.abc.AbstractIncomingMessage) -> None:
    await message.ack()


async def approved_runbook(bot: RunningBot, command: str) -> int:
    """ALICE asks, BOB (ops team) approves; the run has finished when this returns."""
    run_id = await request_runbook(bot, command)
    assert "Approve" in json.dumps(message_of(bot, run_id)), "a production runbook waits for a second person"
    await click(bot, "approval.approve", str(run_id), BOB)
    run = await until(bot, run_id, lambda r: r.state in (ActionState.SUCCEEDED, ActionState.FAILED))
    assert run.state is ActionState.SUCCEEDED, (run.outcome, [(s.title, s.detail) for s in run.steps])
    return run_id


async def green(bot: RunningBot) -> Report:
    report = await health_until(bot, all_green)
    assert report.headline.startswith("✅ All 8 services healthy"), str(report)
    return report


# --- breaks and fixes -------------------------------------------------------------------------------------------


async def test_a_stopped_web_container_turns_red_and_an_approved_restart_brings_it_back(
        stack: Stack, containers: Containers) -> None:
    started = time.monotonic()
    report = await green(stack.bot)
    assert report.line("web", "/health/").reason == "HTTP 200, 4 fields as expected"
    assert report.line("stack", "compose ps").reason == "2 containers running"

    containers.get(stack.web).stop(timeout=0)
    report = await health(stack.bot)
    web = report.line("web", "/health/")
    assert web.red and web.reason.startswith("cannot connect to 127.0.0.1:"), web
    compose = report.line("stack", "compose ps")
    assert compose.red and f"{stack.web} exited" in compose.reason and "1 of 2 running" in compose.reason, compose

    run_id, _ = await requested(stack.bot, "restart web", reason="web is down")
    await click(stack.bot, "approval.approve", str(run_id), ALICE)  # the requester cannot approve their own
    assert (await stack.bot.ctx.store.get_action(run_id)).state is ActionState.PENDING
    await click(stack.bot, "approval.approve", str(run_id), BOB)
    run = await until(stack.bot, run_id, lambda r: r.state in (ActionState.SUCCEEDED, ActionState.FAILED))
    assert run.state is ActionState.SUCCEEDED, run.outcome
    await green(stack.bot)
    assert time.monotonic() - started < 90


async def test_a_blocked_long_query_turns_db_red_and_kill_long_queries_ends_it(stack: Stack) -> None:
    started = time.monotonic()
    await green(stack.bot)
    holder, waiter = await asyncpg.connect(stack.dsn), await asyncpg.connect(stack.dsn)
    try:
        # A transfer left open holds its row lock; the next one on that account waits behind it.
        holding = holder.transaction()
        await holding.start()
        await holder.execute("UPDATE accounts SET balance = balance - 10 WHERE id = 1")
        blocked = asyncio.create_task(waiter.execute("UPDATE accounts SET balance = balance + 10 WHERE id = 1"))
        report = await health_until(stack.bot, lambda r: r.line("db", "long-running queries").red, scope="db")
        assert report.line("db", "long-running queries").reason == "1 active longer than 5 min (limit 1)"
        assert report.line("db", "blocked queries").reason == "1 waiting on a lock (limit 1)"
        assert report.line("db", "blocked queries").emoji == "⚠️"

        plan = text(await ops(stack.bot, "run kill-long-queries"))
        assert "2 running that long now" in plan, plan[:1500]
        assert "balance - 10" in plan and "balance + 10" in plan, "the plan names the queries it would end"
        assert not blocked.done(), "a plan only looks"
        run_id = await approved_runbook(stack.bot, "run kill-long-queries")
        run = await stack.bot.ctx.store.get_action(run_id)
        assert run is not None and run.steps[0].detail.startswith("ended "), run.steps[0].detail
        # The open transaction is ended (rolled back); the waiting one is ended too, or went through once the
        # lock was gone, whichever PostgreSQL got to first.
        await asyncio.wait_for(asyncio.gather(blocked, return_exceptions=True), 10)
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)):
            await holder.fetchval("SELECT 1")
        await green(stack.bot)
    finally:
        await holder.close(timeout=2)
        await waiter.close(timeout=2)
    assert time.monotonic() - started < 90


async def test_backups_left_to_age_turn_red_and_an_approved_backup_all_makes_them_fresh(stack: Stack) -> None:
    started = time.monotonic()
    await green(stack.bot)
    stack.clock.jump(timedelta(days=3, hours=12))  # three nights and more without the 02:00 job
    report = await health(stack.bot)
    for service in ("db", "media", "config"):
        line = report.line(service, "last backup")
        assert line.red and line.reason.endswith(" days ago (limit 3 days)"), line
    assert not report.line("db", "connections").red, "only the backups aged"

    await approved_runbook(stack.bot, "run backup-all")
    report = await green(stack.bot)
    assert report.line("db", "last backup").reason.endswith(" hours ago"), report.line("db", "last backup")

    # An asked backup needs nobody's approval (it changes nothing) and its result lands in the team's channel.
    plan = await ops(stack.bot, "backup db before the release")
    await click(stack.bot, "action.request", button(plan, "action.request")["value"], ALICE)
    posted = [str(c.args.get("text", "")) for c in stack.bot.slack.of("chat.postMessage") if c.args.get("channel") == "C0FSOPS"]
    assert any(post.startswith("✅ Backup of `db`: ") for post in posted), posted
    assert time.monotonic() - started < 90


async def test_a_stalled_worker_and_a_cold_cache_read_red_in_words_and_green_once_they_recover(stack: Stack) -> None:
    started = time.monotonic()
    await green(stack.bot)
    await stack.stop_worker()  # the Celery worker dies; tasks pile up
    async with await aio_pika.connect(BROKER) as producer:
        channel = await producer.channel()
        for ticket in range(1200):
            await channel.default_exchange.publish(aio_pika.Message(str(ticket).encode()), routing_key=stack.queue.name)
    report = await health_until(stack.bot, lambda r: r.line("rabbitmq", "queues").red, scope="rabbitmq")
    reason = report.line("rabbitmq", "queues").reason
    assert reason == f"queue {stack.queue.name}: 1200 ready (limit 1000), no consumers", reason
    # Django's /health/ says so too, and its line names each field that is not what the guide expects.
    stack.web_health.write_text(json.dumps({**HEALTHY, "status": "degraded", "queue": "disconnected"}))
    line = (await health(stack.bot, "web")).line("web", "/health/")
    assert line.red and 'status is "degraded", expected "healthy"' in line.reason, line
    assert 'queue is "disconnected", expected "connected"' in line.reason, line

    cache = pymemcache.Client(stack.memcached)
    await asyncio.to_thread(cache.get_many, [f"account:{key}" for key in range(150)])  # a cold cache: every get misses
    line = (await health(stack.bot, "memcached")).line("memcached", "stats")
    # Judged over the gets since the earlier (green) run: all 150 of them missed.
    assert line.red and line.reason.startswith("hit ratio 0 % in the last "), line
    assert "(0 of 150 gets) (minimum 50 %)" in line.reason, line

    # The worker is back and drains the queue; the cache warms up until hits outnumber misses four to one.
    await stack.start_worker()
    stack.web_health.write_text(json.dumps(HEALTHY))
    await asyncio.to_thread(cache.set_many, {f"account:{key}": b"1" for key in range(10)})
    for _ in range(100):
        await asyncio.to_thread(cache.get_many, [f"account:{key}" for key in range(10)])
    await green(stack.bot)
    assert time.monotonic() - started < 90
