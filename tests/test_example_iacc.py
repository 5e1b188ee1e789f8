"""examples/iacc.yml, the iacc team's operations guide as a catalog: it validates through the real CLI, holds every
item of the team's morning health check, plans the guide's Artisan and Composer commands as commands in the app's
container, and runs end to end against a miniature of the stack.

The miniature: the app as a podman container (busybox httpd serving /api/health as JSON and /version, and a `php`
that only writes down the Artisan command it was given), MariaDB, Redis, a real Prometheus scraping an exporter that
counts the app's requests (5xx while the app is down or runs the bad release 2), and a small server standing in for
Grafana. Each test breaks one thing, sees its line turn red, fixes it through Slack with a second person's
approval, and sees green again.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import tarfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp
import pymysql
import pytest
from aiohttp import web

from bot.catalog import Catalog
from bot.catalog_loading import load_catalog, parse_catalog
from bot.clock import SystemClock
from bot.incidents.models import EntryKind, Incident, IncidentStatus, TimelineEntry
from bot.incidents.postmortem import render_postmortem
from bot.runbooks.params import ParametersInvalid
from bot.runs.models import ActionState
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings, start_bot
from tests.stacks import MISSING_DOCKER, check_config, example, kinds, plan_runbook
from tests.test_actions_e2e import wait_http
from tests.test_approvals import ALICE, BOB, DAVE, button, click, ops, text
from tests.test_cli import ROOT
from tests.test_runbooks import message_of, request_runbook, until

if TYPE_CHECKING:
    from tests.podman import Containers, Podman
    from tests.prometheus import RunningPrometheus

pytest_plugins = ["tests.podman", "tests.prometheus"]  # podman, containers; the session's Prometheus

EXAMPLE = ROOT / "examples" / "iacc.yml"
REPOSITORY = "localhost/opsbot-iacc"
CACHE_DB = 14  # stands in for Laravel's cache database 1 on the shared Redis
ALERTS, OPS = "C0IACCALERTS", "C0IACCOPS"
ARTISAN_LOG = "/calls/artisan.log"  # where the image's stand-in `php` writes down each command, on a host folder


# --- check-config and what the catalog holds ------------------------------------------------------------------


def test_check_config_passes_on_the_example(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    result = check_config(EXAMPLE, monkeypatch, capsys)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].endswith(
        "iacc.yml: OK — 5 services, 13 checks, 12 runbooks, 3 digests posted, 1 scheduled backups, 3 scheduled runbooks")
    [unset] = [line for line in result.stdout.splitlines() if "not set here" in line]  # said once, with the count
    places = len(load_catalog(EXAMPLE).secret_envs())
    assert "IACC_DB_URL" in unset and f"used by {places} places" in unset  # secrets only by name
    # A failing gate puts the image back, not the schema: said, as the deploy's comment says.
    assert "runbooks.deploy-app.steps: 4 steps have no undo: 6 (`exec`), 7 (`exec`)" in result.stdout, result.stdout


def test_the_catalog_holds_every_item_of_the_morning_and_end_of_day_checks() -> None:
    catalog = load_catalog(EXAMPLE)
    kinds = {(name, check.type) for name, service in catalog.services.items() for check in service.checks}
    morning = {("app", "http-json"),  # 1 API health
               ("db", "sql"),  # 2 database status (table count)
               ("redis", "redis"),  # 3 Redis status
               ("host", "disk"),  # 4 disk space
               ("app", "containers"),  # 5 docker-compose ps
               ("app", "log-errors")}  # 6 recent errors
    end_of_day = {("monitoring", "prometheus"), ("db", "backup-freshness"), ("host", "memory")}
    assert morning | end_of_day <= kinds
    [api] = [c for c in catalog.services["app"].checks if c.type == "http-json"]
    assert api.fields["status"].equals == "healthy"
    backup = catalog.services["db"].backup
    assert backup is not None and backup.type == "mysql" and backup.retention_days == 30
    assert backup.schedule is not None and backup.schedule.cron == "0 2 * * *"
    assert catalog.services["db"].channel == ALERTS
    severities = [(s.name, s.response_minutes) for s in catalog.incidents.severities]
    assert severities == [("P1", 5), ("P2", 30), ("P3", 120), ("P4", 1440)]
    digests = {name: (d.kind, d.cron, str(d.timezone)) for name, d in catalog.schedules.digests.items()}
    assert digests == {"daily": ("daily", "0 8 * * *", "UTC"), "end-of-day": ("daily", "0 17 * * *", "UTC"),
                       "weekly": ("weekly", "0 8 * * 1", "UTC")}
    assert {"p1-app-down", "deploy-app", "rollback-app", "restore-db", "monthly-maintenance"} <= set(catalog.runbooks)


def test_the_postmortem_has_the_teams_headings_and_metrics() -> None:
    settings = load_catalog(EXAMPLE).incidents
    t0 = datetime(2026, 1, 10, 14, 32, tzinfo=UTC)
    incident = Incident(id=7, title="API down", severity="P1", declared_by="U0JOHN", declared_at=t0, services=("app",),
                        status=IncidentStatus.RESOLVED, acknowledged_at=t0 + timedelta(minutes=5),
                        mitigated_at=t0 + timedelta(minutes=13), resolved_at=t0 + timedelta(minutes=23),
                        summary="Restarted Redis, reset connections.", roles={"commander": "U0JANE"})
    entries = [TimelineEntry(7, t0 + timedelta(minutes=10), EntryKind.STATUS,
                             "Status investigating → identified: Redis connection pool exhausted", "U0JANE")]
    document = render_postmortem(incident, entries, [], settings, services={"app": "production"},
                                 now=t0 + timedelta(hours=1), names={"U0JANE": "jane"})
    headings = re.findall(r"^##? (.+)$", document, re.MULTILINE)
    assert headings == ["Post-Incident Review", "Timeline", "Root Cause", "Impact", "Resolution", "Prevention",
                        "Action Items", "Metrics"]
    assert "**Severity**: P1 (Critical)" in document and "**Duration**: 23 min" in document
    assert "Detection time (declared → acknowledged): 5 min" in document
    assert "MTTR (declared → resolved): 23 min" in document
    assert "Root cause identification: status Identified at 2026-01-10 14:42 UTC" in document
    assert "Note:" not in document, "the catalog's template rendered (no fallback to the default)"


# --- the guide's commands, planned in memory ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def in_memory() -> Catalog:
    """The example, its Docker socket one that is not there: a plan's look at the running image fails at once."""
    target = "      start_timeout: 60"
    return parse_catalog(example("iacc", {target: f'{target}\n      docker_host: "{MISSING_DOCKER}"'}))


def commands(run: object) -> list[list[str]]:
    return [step.args["command"] for step in run.plan if step.kind == "exec"]  # type: ignore[attr-defined]


async def test_the_deployment_runs_the_guides_artisan_commands_in_the_app_around_the_new_image(in_memory: Catalog) -> None:
    run = await plan_runbook(in_memory, "deploy-app", version="2.3.0")
    assert kinds(run) == ["notify", "exec", "exec", "backup", "deploy", "exec", "exec", "exec", "exec", "check", "notify"]
    assert commands(run) == [
        ["php", "artisan", "horizon:pause"],                                                      # 2
        ["php", "artisan", "down", "--message=Maintenance in progress, back in 30 minutes"],       # 3
        ["php", "artisan", "migrate", "--force"],                                                 # 4
        ["sh", "-c", "php artisan cache:clear && php artisan view:clear && php artisan route:clear"],  # 5
        ["php", "artisan", "up"],                                                                 # 6
        ["php", "artisan", "horizon:continue"],                                                   # 7
    ]
    pause, down = run.plan[1], run.plan[2]
    assert (pause.args["undo"], down.args["undo"]) == (["php", "artisan", "horizon:continue"], ["php", "artisan", "up"])
    assert pause.undo == down.undo == "run the undo command", "a failed deploy resumes Horizon and leaves maintenance"
    assert run.plan[5].undo is None, "the migration stays: the backup before it is the way back"
    assert run.plan[9].args["checks"] == ["API health"], "curl /api/health, not the last hour's error lines"


async def test_restore_maintenance_and_cache_runbooks_run_the_guides_commands_too(in_memory: Catalog) -> None:
    restore = await plan_runbook(in_memory, "restore-db", backup="latest")
    assert kinds(restore) == ["notify", "restore", "check", "exec", "restart", "check"]
    assert commands(restore) == [["php", "artisan", "db:seed", "--class=VerificationSeeder", "--force"]]
    assert restore.plan[3].on_failure == "stop", "a failed verification leaves the restored data for a person"

    monthly = await plan_runbook(in_memory, "monthly-maintenance")
    assert kinds(monthly) == ["backup", "sql", "sql", "exec", "sql", "exec", "exec", "check", "check", "notify"]
    assert commands(monthly) == [["php", "artisan", "log:cleanup", "--days=30"], ["php", "artisan", "cache:warmup"],
                                 ["composer", "audit"]]
    audit = monthly.plan[6]
    assert (audit.args["read_only"], audit.on_failure) == (True, "continue"), "advisories are read, not a failure"

    clear = await plan_runbook(in_memory, "clear-cache")
    assert kinds(clear) == ["flush-cache", "exec", "check"] and commands(clear) == [["php", "artisan", "cache:warmup"]]
    review = await plan_runbook(in_memory, "weekly-review")
    assert commands(review) == [["php", "artisan", "report:weekly", "--send-email=devops@example.com"],
                                ["composer", "outdated", "--strict"]]
    assert review.approvals_needed == 0 and all(step.args["read_only"] for step in review.plan)


async def test_scaling_horizontally_plans_the_compose_service_to_a_count_and_gates_on_its_health(in_memory: Catalog) -> None:
    # P2 "Scale horizontally" / Quick Reference `up -d --scale app=3`, offered on app's failing lines
    assert "scale-app" in in_memory.services["app"].runbooks
    run = await plan_runbook(in_memory, "scale-app")
    assert kinds(run) == ["scale", "check", "notify"]
    scale, gate = run.plan[0], run.plan[1]
    assert (scale.service, scale.args["replicas"], scale.undo) == ("app", 3, "scale back to the replicas it had")
    assert "com.docker.compose.project=app, com.docker.compose.service=app" in scale.title
    assert (gate.args["checks"], gate.args["attempts"], gate.on_failure) == (["API health"], 12, "rollback")
    with pytest.raises(ParametersInvalid) as refused:
        await plan_runbook(in_memory, "scale-app", replicas="7")
    assert "*replicas*: '7' is not a whole number from 1 to 6" in str(refused.value)


async def test_a_cache_tag_reaches_artisan_as_one_argument_and_shell_text_is_refused(in_memory: Catalog) -> None:
    run = await plan_runbook(in_memory, "clear-cache-tag", tag="products")
    assert commands(run) == [["php", "artisan", "cache:tags", "products", "--clear"]]
    with pytest.raises(ParametersInvalid) as refused:
        await plan_runbook(in_memory, "clear-cache-tag", tag="products; rm -rf /")
    assert "tag" in str(refused.value), str(refused.value)


def test_the_guides_sql_a_person_reads_is_named_queries() -> None:
    catalog = load_catalog(EXAMPLE)
    assert set(catalog.queries) == {"table-sizes", "index-columns", "slow-statements", "replication-status",
                                    "database-size", "user-count"}
    assert {(q.service, q.engine, q.dsn_env) for q in catalog.queries.values()} == {("db", "mysql", "IACC_DB_URL")}
    assert catalog.queries["replication-status"].statement == "SHOW SLAVE STATUS"


# --- the miniature stack ---------------------------------------------------------------------------------------


def import_app_image(podman: Podman, tag: str) -> str:
    """A busybox image of the app: /api/health answers {"status": "healthy"}, /version the tag, and `php` writes
    down the command it was given (`php artisan migrate --force`) in ARTISAN_LOG, a line each."""
    tree = podman.tmp / f"iacc-{tag}"
    if tree.exists():
        shutil.rmtree(tree)
    for folder in ("bin", "www/api", "tmp", "calls"):
        (tree / folder).mkdir(parents=True)
    shutil.copy2(shutil.which("busybox") or "busybox", tree / "bin" / "busybox")
    for applet in ("sh", "httpd", "sleep", "echo", "cat"):
        (tree / "bin" / applet).symlink_to("busybox")
    php = tree / "bin" / "php"
    php.write_text(f'#!/bin/sh\necho "php $*" >> {ARTISAN_LOG}\n')
    php.chmod(0o755)
    (tree / "www" / "api" / "health").write_text(json.dumps({"status": "healthy", "database": "connected"}))
    (tree / "www" / "version").write_text(f"{tag}\n")
    archive = podman.tmp / f"iacc-{tag}.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(tree, arcname=".")
    reference = f"{REPOSITORY}:{tag}"
    podman.run("import", "--change", 'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]', str(archive), reference)
    return reference


@pytest.fixture(scope="session")
def app_images(podman: Podman) -> dict[str, str]:
    return {tag: import_app_image(podman, tag) for tag in ("1", "2")}


@dataclass
class ShiftedClock(SystemClock):
    """The system clock, moved forward on demand: lets a backup age by days while everything else runs for real."""

    offset: timedelta = field(default_factory=timedelta)

    def now(self) -> datetime:
        return super().now() + self.offset


@dataclass
class Sidecar:
    """Stands in for Grafana (/api/health)."""

    port: int = 0
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def grafana(_: web.Request) -> web.Response:
            return web.json_response({"commit": "abc123", "database": "ok", "version": "10.4.2"})

        app = web.Application()
        app.router.add_get("/api/health", grafana)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def traffic(prom: RunningPrometheus, app_port: int, http: aiohttp.ClientSession) -> None:
    """The app's request counters as its exporter would show them: 100 requests every half second, 20 of them
    5xx while release 2 runs, all of them 5xx (the proxy's 502s) while the app does not answer."""
    exporter = prom.exporter
    exporter.set("http_requests_total", 0, status="500")  # the series exists, so no errors reads 0 %, not "no data"
    while True:
        try:
            async with http.get(f"http://127.0.0.1:{app_port}/version", timeout=aiohttp.ClientTimeout(total=0.4)) as answer:
                release = (await answer.text()).strip() if answer.status == 200 else None
        except (TimeoutError, aiohttp.ClientError):
            release = None
        errors = 100 if release is None else 20 if release == "2" else 0
        exporter.add("http_requests_total", 100 - errors, status="200")
        exporter.add("http_requests_total", errors, status="500")
        for bucket, count in (("0.05", 99), ("0.1", 100), ("0.25", 100), ("+Inf", 100)):
            exporter.add("http_request_duration_seconds_bucket", count, le=bucket)
        await asyncio.sleep(0.5)


@dataclass
class Stack:
    bot: RunningBot
    app: str  # the app container's name
    app_port: int
    db: str  # mysql:// DSN of the database standing in for iacc_production
    clock: ShiftedClock
    sidecar: Sidecar
    calls: Path  # the host folder the app's containers write ARTISAN_LOG into

    def artisan(self) -> list[str]:
        """The commands the app's `php` was given, oldest first, in whichever of its containers."""
        log = self.calls / Path(ARTISAN_LOG).name
        return log.read_text().splitlines() if log.exists() else []

    def sql(self, *statements: str) -> list[tuple]:
        parts = urlsplit(self.db)
        conn = pymysql.connect(host=parts.hostname, port=parts.port, user=parts.username,
                               database=parts.path.lstrip("/"), autocommit=True)
        try:
            with conn.cursor() as cursor:
                rows: list[tuple] = []
                for statement in statements:
                    cursor.execute(statement)
                    rows = list(cursor.fetchall())
                return rows
        finally:
            conn.close()


def substituted(example: str, *, app_port: int, prom_url: str, sidecar: int, project: str, podman: Podman,
                database: str, backups: Path) -> str:
    """The example with the miniature's hosts and ports: each of the team's host:port (and the few names that
    differ here) replaced by the one running on 127.0.0.1."""
    prom = urlsplit(prom_url).netloc
    replacements = [
        ("app:80", f"127.0.0.1:{app_port}"),
        ("prometheus:9090", prom),
        ("grafana:3000", f"127.0.0.1:{sidecar}"),
        ("project: app", f"project: {project}"),  # the compose project label, unique per test
        ("expect: 5", "expect: 1"),  # the miniature runs only the app in a container
        ("      start_timeout: 60",
         f'      start_timeout: 20\n      poll_interval: 0.2\n      docker_host: "{podman.base_url}"'),
        ("'iacc_production'", f"'{database}'"),
        ("directory: /srv/backups", f'directory: "{backups}"'),
        ("db: 1}", f"db: {CACHE_DB}}}"),
        ("[5m]", "[4s]"),  # Prometheus scrapes every second here: a short window, so recovery shows in seconds
        ("attempts: 12, interval: 10", "attempts: 12, interval: 1"),
        ("attempts: 6, interval: 5", "attempts: 6, interval: 1"),
        ("attempts: 3, interval: 5", "attempts: 3, interval: 1"),
    ]
    for old, new in replacements:
        assert old in example, f"the example no longer has {old!r}"
        example = example.replace(old, new)
    return example


@pytest.fixture
async def stack(podman: Podman, app_images: dict[str, str], containers: Containers, slack: FakeSlack,
                http: aiohttp.ClientSession, mysql_database: str, tmp_path: Path,
                prometheus: RunningPrometheus) -> AsyncIterator[Stack]:
    app, port = containers.name("app"), containers.port()
    project = containers.name("compose")
    calls = tmp_path / "calls"  # the app's storage volume, as it were: kept by a deploy's new container
    calls.mkdir()
    containers.run(app, app_images["1"], port=port,
                   labels={"com.docker.compose.project": project, "com.docker.compose.service": "app"},
                   volumes={str(calls): {"bind": str(Path(ARTISAN_LOG).parent), "mode": "rw"}})
    await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/version")
    database = urlsplit(mysql_database).path.lstrip("/")
    sidecar = Sidecar()
    await sidecar.start()
    clock = ShiftedClock()
    prom = prometheus  # shared by the session: only its exporter's values are this test's
    feeding = asyncio.create_task(traffic(prom, port, http))
    catalog = substituted(EXAMPLE.read_text(), app_port=port, prom_url=prom.url, sidecar=sidecar.port,
                          project=project, podman=podman, database=database, backups=tmp_path / "backups")
    slack.groups = {"S0IACCDEVOPS": [BOB, "U0JANE"], "S0IACCDBA": [DAVE], "S0IACCONCALL": [BOB]}
    environ = {"IACC_DB_URL": mysql_database, "IACC_DB_ROOT_URL": mysql_database,
               "IACC_REDIS_URL": "redis://127.0.0.1:6379/0", "IACC_CACHE_URL": f"redis://127.0.0.1:6379/{CACHE_DB}"}
    bot, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'opsbot.db'}"), catalog, slack, http,
                                  environ=environ, clock=clock)
    running = Stack(bot, app, port, mysql_database, clock, sidecar, calls)
    try:
        running.sql(*(f"CREATE TABLE {table} (id int primary key, created_at datetime) ENGINE=InnoDB"
                      for table in ("purchase_orders", "invoices", "users", "audit_log")),
                    "INSERT INTO invoices VALUES (1, NOW()), (2, NOW())")
        await backup_now(bot)
        await prom.wait_for('sum(rate(http_requests_total[4s]))', lambda v: v > 0)
        await health_until(bot, all_green, "the morning health check is all green on the healthy stack")
        yield running
    finally:
        feeding.cancel()
        with suppress(asyncio.CancelledError):
            await feeding
        await runner.cleanup()
        await sidecar.stop()


# --- reading the health report ---------------------------------------------------------------------------------

Lines = dict[str, str]  # check label → its line, "❌ `API health` cannot connect …"
_LINE = re.compile(r"^(✅|⚠️|❌) `([^`]+)` (.*?)(?:  ·  [\d.]+ m?s)?$")


def health_lines(message: dict) -> Lines:
    lines: Lines = {}
    for block in message.get("blocks", []):
        body = block.get("text", {}).get("text", "") if block.get("type") == "section" else ""
        for line in body.splitlines():
            match = _LINE.match(line)
            if match:
                lines[match.group(2)] = f"{match.group(1)} {match.group(3)}"
    return lines


def all_green(lines: Lines) -> bool:
    return len(lines) == 13 and all(line.startswith("✅") for line in lines.values())


def red(label: str, *words: str) -> Callable[[Lines], bool]:
    return lambda lines: lines.get(label, "").startswith("❌") and all(w in lines[label] for w in words)


async def health_until(bot: RunningBot, accept: Callable[[Lines], bool], what: str, timeout: float = 30) -> Lines:
    """`/ops health` through Slack until the report is what `accept` wants (checks are polled, never slept on)."""
    deadline = time.monotonic() + timeout
    lines: Lines = {}
    while time.monotonic() < deadline:
        lines = health_lines(await ops(bot, "health"))
        if accept(lines):
            return lines
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what}: never, last report:\n" + "\n".join(f"{k}: {v}" for k, v in lines.items()))


async def backup_now(bot: RunningBot) -> None:
    """`/ops backup db`: production backups need no approval (the team's cron asks nobody), so Run now runs it."""
    before = len(await bot.ctx.store.backups("db"))
    plan = await ops(bot, "backup db nightly backup")
    await click(bot, "action.request", button(plan, "action.request")["value"], ALICE)
    backups = await bot.ctx.store.backups("db")
    assert len(backups) == before + 1 and backups[0].verified_at is not None
    posted = [c.args["text"] for c in bot.slack.of("chat.postMessage") if c.args.get("channel") == ALERTS]
    assert posted and posted[-1].startswith("✅"), posted


async def approved_run(bot: RunningBot, command: str, *approvers: str) -> int:
    """`/ops run …` by Alice, approved by each of `approvers`; waits until the run has finished."""
    run_id = await request_runbook(bot, command, ALICE)
    for approver in approvers:
        await click(bot, "approval.approve", str(run_id), approver)
    run = await until(bot, run_id, lambda r: r.state not in (ActionState.PENDING, ActionState.APPROVED, ActionState.RUNNING))
    assert run.state is ActionState.SUCCEEDED, (run.outcome,
                                                [(s.title, s.state, s.detail) for s in run.steps])  # type: ignore[attr-defined]
    return run_id


# --- break, see red, fix through Slack, see green -------------------------------------------------------------


async def test_the_app_down_turns_api_health_red_and_the_p1_runbook_brings_it_back(stack: Stack, containers: Containers) -> None:
    await asyncio.to_thread(containers.get(stack.app).stop, timeout=0)
    lines = await health_until(stack.bot, red("API health", "cannot connect", str(stack.app_port)), "the API line red")
    assert lines["compose containers"].startswith("❌") and stack.app in lines["compose containers"]
    assert "exited" in lines["compose containers"] or "0 of 1 running" in lines["compose containers"]

    run_id = await request_runbook(stack.bot, "run p1-app-down")
    await click(stack.bot, "approval.approve", str(run_id), ALICE)  # the requester cannot approve their own
    assert (await stack.bot.ctx.store.get_action(run_id)).state is ActionState.PENDING  # type: ignore[union-attr]
    await click(stack.bot, "approval.approve", str(run_id), BOB)
    run = await until(stack.bot, run_id, lambda r: r.state in (ActionState.SUCCEEDED, ActionState.FAILED))
    assert run.state is ActionState.SUCCEEDED, (run.outcome,
                                                [(s.title, s.detail) for s in run.steps])  # type: ignore[attr-defined]
    assert "✅" in text(message_of(stack.bot, run_id))
    pages = [c.args["text"] for c in stack.bot.slack.of("chat.postMessage") if "P1: app is down" in c.args.get("text", "")]
    assert pages and pages[0].startswith("<!subteam^S0IACCONCALL>")
    await health_until(stack.bot, all_green, "green again after the P1 runbook restarted the app")


async def test_a_dropped_schema_turns_the_table_count_red_and_the_restore_runbook_puts_it_back(stack: Stack) -> None:
    stack.sql("DROP TABLE purchase_orders, invoices, users, audit_log")
    lines = await health_until(stack.bot, red("iacc_production tables", "0 tables"), "the table count red")
    assert lines["iacc_production tables"] == "❌ 0 tables (minimum 1)"

    # A restore needs two people besides the requester: DevOps (Bob) and the DBA (Dave).
    run_id = await request_runbook(stack.bot, "run restore-db backup=latest")
    await click(stack.bot, "approval.approve", str(run_id), BOB)
    assert (await stack.bot.ctx.store.get_action(run_id)).state is ActionState.PENDING  # type: ignore[union-attr]
    await click(stack.bot, "approval.approve", str(run_id), DAVE)
    run = await until(stack.bot, run_id, lambda r: r.state in (ActionState.SUCCEEDED, ActionState.FAILED))
    assert run.state is ActionState.SUCCEEDED, (run.outcome,
                                                [(s.title, s.detail) for s in run.steps])  # type: ignore[attr-defined]
    assert stack.sql("SELECT COUNT(*) FROM invoices") == [(2,)]
    assert stack.artisan() == ["php artisan db:seed --class=VerificationSeeder --force"], "verified in the app"
    await health_until(stack.bot, all_green, "green again after the restore")


async def test_a_bad_release_raises_the_error_rate_and_the_rollback_runbook_fixes_it(stack: Stack,
                                                                                     containers: Containers) -> None:
    await approved_run(stack.bot, "run deploy-app version=2", BOB)
    # The guide's Deployment Maintenance, in order: 2 and 3 in the container of release 1, the rest in release 2's.
    assert stack.artisan() == [
        "php artisan horizon:pause", "php artisan down --message=Maintenance in progress, back in 30 minutes",
        "php artisan migrate --force", "php artisan cache:clear", "php artisan view:clear", "php artisan route:clear",
        "php artisan up", "php artisan horizon:continue"]
    assert containers.get(stack.app).attrs["Config"]["Image"] == f"{REPOSITORY}:2"
    lines = await health_until(stack.bot, red("HTTP 5xx error rate", "% errors", "limit 1"), "the error rate red")
    assert lines["API health"].startswith("✅"), "the app answers; only its error rate tells"

    await approved_run(stack.bot, "run rollback-app", BOB)
    assert containers.get(stack.app).attrs["Config"]["Image"] == f"{REPOSITORY}:1"
    await health_until(stack.bot, all_green, "green again once release 1 serves again")


async def test_a_backup_left_to_age_turns_red_and_a_backup_makes_it_green(stack: Stack) -> None:
    stack.clock.offset = timedelta(days=8)  # the nightly backup stopped running a week ago
    lines = await health_until(stack.bot, red("latest verified backup", "8"), "the backup line red")
    assert "limit 7" in lines["latest verified backup"], lines["latest verified backup"]
    await backup_now(stack.bot)
    await health_until(stack.bot, all_green, "green again after a fresh backup")
