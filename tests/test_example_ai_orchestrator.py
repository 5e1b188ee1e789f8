"""The ai-orchestrator team's runbook as a catalog (examples/ai-orchestrator.yml): it validates with the real CLI,
holds every item of the team's morning health check, and its runbooks plan the procedures (gates on the checks a
change can move, the smoke tests and manifests a person does, the bloat list a person reads); then, end to end, a
miniature of the stack — the Kubernetes API double with the three deployments, the pods postgres and redis run in,
two nodes, a real Prometheus scraping an exporter the test drives, PostgreSQL and Redis on 127.0.0.1 — is green, one
thing at a time breaks and turns its line red, and the fix runs through Slack."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import asyncpg
import pytest
import redis
import yaml
from aiohttp import web

from bot.catalog_loading import load_catalog, parse_catalog
from bot.incidents.postmortem import render_postmortem
from bot.runs.models import ActionState, BackupLabel
from playground.slack_api import FakeSlack
from tests.conftest import REDIS_URL, RunningBot, make_settings, start_bot
from tests.k8s_api import K8sApi
from tests.stacks import (
    Report,
    ShiftedClock,
    answering_done,
    check_config,
    example,
    health,
    health_until,
    kinds,
    plan_runbook,
    press,
    read_report,
)
from tests.stacks import all_green as green
from tests.test_approvals import ALICE, BOB, DAVE, button, click, ops, requested, text
from tests.test_cli import ROOT
from tests.test_postmortem import NOW, SERVICES, a_resolved_incident, an_entry
from tests.test_runbooks import request_runbook

if TYPE_CHECKING:
    from tests.prometheus import RunningPrometheus

pytest_plugins = ["tests.prometheus"]  # the session's Prometheus

EXAMPLE = ROOT / "examples" / "ai-orchestrator.yml"
NS = "ai-orchestrator"
TOKEN = "k8s-token-ai-orchestrator"
GOOD, BAD = "2.4.0", "2.5.0"  # the release the bad-release story ships answers half its requests with a 500
DEPLOYMENTS = ("api-gateway", "auth-service", "workflow-engine")
STATEFULSETS = {"postgres": "postgres:16", "redis": "redis:7"}  # postgres-0, redis-0: by their `app` label
NODES = ("node-1", "node-2")
QUEUE = "queue:workflows"
# The team's Redis: the queue's database. One the other tests here do not flush.
REDIS_DB_URL = REDIS_URL.rsplit("/", 1)[0] + "/11"


def image(deployment: str, tag: str) -> str:
    return f"registry.example/ai-orchestrator/{deployment}:{tag}"


# --- the catalog as the team would check it -------------------------------------------------------------------


def test_opsbot_check_config_accepts_the_example_without_warnings_about_its_runbooks(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    done = check_config(EXAMPLE, monkeypatch, capsys)
    assert done.returncode == 0, done.stdout + done.stderr
    assert ("OK — 6 services, 18 checks, 12 runbooks, 2 digests posted, 2 scheduled backups, 2 scheduled runbooks"
            in done.stdout), done.stdout
    # Only the secrets this machine does not have are warned about: no runbook step lacks an undo it needs.
    others = [line for line in done.stdout.splitlines() if line.startswith("warning") and "not set here" not in line]
    assert others == []


def test_the_catalog_holds_every_item_of_the_morning_health_check() -> None:
    catalog = load_catalog(EXAMPLE)
    checks = {(name, check.label): check for name, service in catalog.services.items() for check in service.checks}

    # 2. `kubectl get pods` and `kubectl top pods`: every deployment's pods, with usage against limits.
    for deployment in DEPLOYMENTS:
        pods = checks[(deployment, "pods")]
        assert pods.type == "kubernetes-pods" and pods.cpu_percent and pods.memory_percent
        assert catalog.services[deployment].target.deployment == deployment
        assert catalog.services[deployment].target.namespace == NS
    # ... and the StatefulSet pods postgres-0 and redis-0, by label, through the same API server and token.
    gateway = catalog.services["api-gateway"].target
    for name in STATEFULSETS:
        pods = checks[(name, "pods")]
        assert catalog.services[name].target is None
        assert (pods.type, pods.selector, pods.namespace) == ("kubernetes-pods", f"app={name}", NS)
        assert (pods.api_url, pods.token_env) == (gateway.api_url, gateway.token_env)
        assert pods.cpu_percent and pods.memory_percent
    # 2. `kubectl top nodes`: every node's usage of its allocatable, on api-gateway's pods line.
    nodes = checks[("api-gateway", "pods")].nodes
    assert nodes is not None and nodes.cpu_percent and nodes.memory_percent
    # 2. `kubectl exec -it postgres-0 -- pg_isready`.
    assert checks[("postgres", "pg_isready and connections")].type == "postgres"
    # 3. Performance: p95 < 1 s, error rate < 1 %, workflow success > 95 %, queue depth < 50.
    p95 = checks[("api-gateway", "p95 response time")]
    assert p95.type == "prometheus" and "histogram_quantile(0.95" in p95.query and p95.above.warning == 1
    errors = checks[("api-gateway", "error rate")]
    assert errors.type == "prometheus" and 'status=~"5.."' in errors.query and errors.above.warning == 1
    success = checks[("workflow-engine", "workflow success rate")]
    assert success.type == "prometheus" and success.below.warning == 95
    queue = checks[("workflow-engine", "workflow queue")]
    assert queue.type == "redis" and queue.lists[QUEUE].warning == 50
    # 4. Business metrics: active users, workflow executions, API usage (revenue stays with billing).
    assert checks[("postgres", "active users (24 h)")].type == "sql"
    assert checks[("postgres", "workflow executions (24 h)")].type == "sql"
    assert checks[("api-gateway", "API requests (24 h)")].type == "prometheus"
    # Daily security monitoring and weekly backup verification.
    assert checks[("auth-service", "failed logins (24 h)")].pattern == "authentication failed"
    assert checks[("api-gateway", "401/403/429 responses (24 h)")].type == "log-errors"
    assert checks[("postgres", "latest verified backup")].type == "backup-freshness"

    # Backups at the team's hours with 30 days kept; digests at the morning check and the Monday review.
    database, config = catalog.services["postgres"].backup, catalog.services["config"].backup
    assert (database.type, database.schedule.cron, database.retention_days) == ("postgres", "0 2 * * *", 30)
    assert (config.type, config.schedule.cron, [str(p) for p in config.paths]) == (
        "directory", "0 3 * * *", ["/app/config", "/app/certificates"])
    assert catalog.services["postgres"].channel == "C0ORCHOPS"
    digests = catalog.schedules.digests
    assert (digests["daily"].cron, digests["weekly"].cron) == ("0 9 * * *", "0 10 * * 1")
    # P0–P2, as the team uses them: acknowledge within 5 minutes, P2 within the hour.
    assert [(s.name, s.response_minutes) for s in catalog.incidents.severities] == [("P0", 5), ("P1", 5), ("P2", 60)]
    # Maintenance mode through the ConfigMap; the restore scales the app to 0 around it and back to 3.
    maintenance = catalog.services["api-gateway"].maintenance
    assert (maintenance.type, maintenance.configmap, maintenance.key) == ("configmap", "api-config", "maintenance_mode")
    restore = [(s.kind, getattr(s, "replicas", None)) for s in catalog.runbook("restore-database").steps]
    assert restore[:4] == [("scale", 0)] * 3 + [("restore", None)] and restore[-4:-1] == [("scale", 3)] * 3
    assert {"maintenance-window", "deploy-api-gateway", "rollback-api-gateway", "restore-config",
            "db-maintenance", "db-cleanup", "flush-cache"} <= set(catalog.runbooks)
    # Database maintenance runs on its own: weekly on Sunday, monthly on the first Saturday, both at 03:00 UTC,
    # after the 02:00 backup.
    schedules = {name: catalog.runbook(name).schedule for name in ("db-maintenance", "db-cleanup")}
    assert {name: (s.cron, s.timezone) for name, s in schedules.items()} == {
        "db-maintenance": ("0 3 * * 0", "UTC"), "db-cleanup": ("0 3 * * 6#1", "UTC")}


def test_the_post_mortem_has_the_alert_response_headings_and_their_targets() -> None:
    settings = load_catalog(EXAMPLE).incidents
    incident = a_resolved_incident(severity="P0", services=("api-gateway",))
    shown = render_postmortem(incident, [an_entry(5, "rolled back api-gateway")], [], settings,
                              services=SERVICES, now=NOW, names={"U2": "bob"})
    assert "the catalog's post-mortem template failed" not in shown
    for heading in ("## Immediate response (target: < 5 minutes)", "## Initial assessment (target: < 15 minutes)",
                    "### Impact and scope", "### Stakeholders notified", "## Investigation (target: < 30 minutes)",
                    "### Recent changes", "### Root cause", "## Resolution (target: < 2 hours)",
                    "### Monitoring for stability", "## Findings", "## Monitoring updates", "## Action items"):
        assert heading in shown, heading
    assert "Acknowledged after: 4 min" in shown and "rolled back api-gateway (@bob)" in shown


# --- the runbooks, planned in memory -----------------------------------------------------------------------------

GATES = {  # each deployment's gate after a change: what a new image or replica count can move within minutes
    "api-gateway": ["pods", "error rate", "p95 response time"], "auth-service": ["pods"], "workflow-engine": ["pods"]}


async def test_gates_wait_on_the_checks_a_change_can_move_and_the_smoke_tests_are_a_persons() -> None:
    catalog = parse_catalog(EXAMPLE.read_text())  # no K8S_TOKEN here: a plan's look at a deployment fails, and says so
    window = await plan_runbook(catalog, "maintenance-window", version="2.4.1")
    assert kinds(window) == ["http", "backup", "maintenance", "deploy", "check", "check", "check", "manual",
                             "maintenance", "http", "notify"]
    assert {step.service: step.args["checks"] for step in window.plan if step.kind == "check"} == GATES
    smoke, off = window.plan[7], window.plan[8]
    assert smoke.title == "Smoke tests" and "./scripts/smoke-tests.sh" in smoke.args["instructions"]
    assert (off.args["mode"], off.on_failure) == ("off", "stop"), "a release that passed its smoke tests is not undone"
    for deployment, gate in GATES.items():
        deployed = await plan_runbook(catalog, f"deploy-{deployment}", version="2.5.0")
        assert kinds(deployed) == ["deploy", "check", "notify"] and deployed.plan[1].args["checks"] == gate, deployment
    scaled = await plan_runbook(catalog, "scale-workflow-engine", replicas="6")
    assert scaled.plan[1].args["checks"] == ["pods", "workflow queue"]
    flushed = await plan_runbook(catalog, "flush-cache")
    assert kinds(flushed) == ["flush-cache", "check"] and flushed.plan[1].args["checks"] == GATES["api-gateway"]


async def test_recovery_and_maintenance_runbooks_plan_the_persons_part_and_the_bloat_list() -> None:
    catalog = parse_catalog(EXAMPLE.read_text())
    config = await plan_runbook(catalog, "restore-config", backup="latest")
    assert kinds(config) == ["restore", "manual", "restart", "restart", "restart", "check"]
    assert "kubectl apply -f k8s-resources.yaml" in config.plan[1].args["instructions"]
    maintenance = await plan_runbook(catalog, "db-maintenance")
    assert kinds(maintenance) == ["sql", "sql", "query", "check"]
    assert maintenance.plan[2].args["statement"] == catalog.queries["table-sizes"].statement
    restore = await plan_runbook(catalog, "restore-database", backup="latest")
    assert restore.plan[-1].args["checks"] == ["pods"], "no traffic yet right after scaling back: pods only"
    assert set(catalog.queries) == {"table-sizes", "slow-queries", "index-usage"}


# --- the miniature stack ----------------------------------------------------------------------------------------


@dataclass
class Stack:
    bot: RunningBot
    cluster: K8sApi
    prometheus: RunningPrometheus
    queue: redis.Redis
    clock: ShiftedClock
    database: str  # the orchestrator database's DSN
    status_page: list[dict[str, Any]]  # what the status page's webhook received


async def all_green(stack: Stack) -> Report:
    """The story's starting point. The PromQL checks read 5 s windows of a live Prometheus scraping every second: on a
    busy machine a scrape can come late and a window hold one sample (NaN), so the report is asked again until green."""
    report = await health_until(stack.bot, green, deadline=20)
    assert report.headline == "✅ All 6 services healthy", str(report)
    return report


def substituted(tmp: Path, cluster: K8sApi, prometheus: RunningPrometheus) -> str:
    """The example with the team's hosts, ports and paths pointed at the miniature. Its 5-minute, 1-hour and 24-hour
    PromQL windows become 5 s, so a change shows within seconds (Prometheus scrapes every second here); the
    scheduled backups, runbooks and digests are left out, so no scheduled run takes a service's lease during a story."""
    source = example("ai-orchestrator", {
        "https://k8s.ai-orchestrator.internal:6443": cluster.url, "http://prometheus:9090": prometheus.url,
        "[5m]": "[5s]", "[1h]": "[5s]", "[24h]": "[5s]", "/backups/": f"{tmp}/backups/", "/app/": f"{tmp}/app/"})
    catalog = yaml.safe_load(source)
    for service in catalog["services"].values():
        (service.get("backup") or {}).pop("schedule", None)
    for runbook in catalog["runbooks"].values():
        runbook.pop("schedule", None)
    catalog["schedules"]["digests"] = {"daily": "off", "weekly": "off"}
    return yaml.safe_dump(catalog, sort_keys=False, allow_unicode=True)


async def traffic(cluster: K8sApi, prometheus: RunningPrometheus) -> None:
    """The services' own counters, as their /metrics would show them: 100 API requests a second (half of them
    500s while api-gateway runs the bad release), 25 workflows a second, all succeeding."""
    exporter = prometheus.exporter
    buckets = {"0.1": 15, "0.25": 20, "0.5": 20, "1": 20, "2.5": 20, "+Inf": 20}  # p95 ≈ 0.22 s
    exporter.set("workflow_executions_total", 0, status="failed")
    while True:
        running = cluster.deployment("api-gateway", namespace=NS)["spec"]["template"]["spec"]["containers"][0]["image"]
        failed = 10 if running == image("api-gateway", BAD) else 0
        exporter.add("http_requests_total", 20 - failed, app="api-gateway", status="200")
        exporter.add("http_requests_total", failed, app="api-gateway", status="500")
        for le, count in buckets.items():
            exporter.add("http_request_duration_seconds_bucket", count, app="api-gateway", le=le)
        exporter.add("workflow_executions_total", 5, status="success")
        await asyncio.sleep(0.2)


async def orchestrator_database(dsn: str) -> None:
    """The tables the business-metric checks read, with a day's worth of rows."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("""
            CREATE TABLE audit_logs (id serial PRIMARY KEY, user_id int, action text, created_at timestamptz DEFAULT now());
            CREATE TABLE execution_logs (id serial PRIMARY KEY, workflow_id int, status text,
                                         created_at timestamptz DEFAULT now());
            CREATE TABLE workflow_versions (id serial PRIMARY KEY, workflow_id int, version int);
            INSERT INTO audit_logs (user_id, action) SELECT n % 7, 'login' FROM generate_series(1, 40) AS n;
            INSERT INTO execution_logs (workflow_id, status) SELECT n % 5, 'completed' FROM generate_series(1, 120) AS n;
        """)
    finally:
        await conn.close()


async def start_cluster() -> K8sApi:
    cluster = K8sApi(token=TOKEN)
    await cluster.start()
    for name in DEPLOYMENTS:
        cluster.add_deployment(name, image=image(name, GOOD), namespace=NS, replicas=3, container=name,
                               resources={"limits": {"cpu": "500m", "memory": "512Mi"}})
        for pod in cluster.pods(name, namespace=NS):
            cluster.set_pod_usage(pod["metadata"]["name"], cpu="120m", memory="200Mi", namespace=NS)
    # The double has no StatefulSets: a one-replica deployment with the StatefulSet's labels stands in for each
    # (its pod is named by its ReplicaSet, not postgres-0; the check reads pods by label either way).
    for name, release in STATEFULSETS.items():
        cluster.add_deployment(name, image=f"docker.io/library/{release}", namespace=NS, replicas=1, container=name,
                               labels={"app": name}, resources={"limits": {"cpu": "1", "memory": "2Gi"}})
        [pod] = cluster.pods(name, namespace=NS)
        cluster.set_pod_usage(pod["metadata"]["name"], cpu="300m", memory="900Mi", namespace=NS)
    for node in NODES:
        cluster.add_node(node, cpu="8", memory="32Gi")
        cluster.set_node_usage(node, cpu="2500m", memory="12Gi")
    cluster.add_configmap("api-config", {"maintenance_mode": "false", "log_level": "info"}, namespace=NS)
    recent = datetime.now(UTC) - timedelta(minutes=30)
    gateway = cluster.pods("api-gateway", namespace=NS)[0]["metadata"]["name"]
    cluster.set_pod_log(gateway, [(recent, 'GET /v1/workflows 200 12ms'), (recent, 'GET /v1/admin 403 2ms')],
                        namespace=NS)
    auth = cluster.pods("auth-service", namespace=NS)[0]["metadata"]["name"]
    cluster.set_pod_log(auth, [(recent, "authentication failed for user 42: bad password")], namespace=NS)
    return cluster


@pytest.fixture
async def status_page() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """The status page's webhook: its URL, and the JSON bodies it received."""
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/hooks/status", hook)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/hooks/status", received
    await runner.cleanup()


@pytest.fixture
async def stack(slack: FakeSlack, http: aiohttp.ClientSession, pg_database: str, tmp_path: Path,
                status_page: tuple[str, list[dict[str, Any]]], prometheus: RunningPrometheus) -> AsyncIterator[Stack]:
    cluster = await start_cluster()
    queue = redis.Redis.from_url(REDIS_DB_URL)
    queue.delete(QUEUE)
    await orchestrator_database(pg_database)
    for folder, name in (("config", "app.yaml"), ("certificates", "tls.crt")):
        (tmp_path / "app" / folder).mkdir(parents=True)
        (tmp_path / "app" / folder / name).write_text(f"{name}: 1\n")
    runner = None
    try:
        # The session's Prometheus: only its exporter's values are this test's.
        load = asyncio.create_task(traffic(cluster, prometheus))
        try:
            # Two scrapes of traffic: every rate() over the 5 s windows has a value.
            await prometheus.wait_for('sum(rate(http_requests_total{app="api-gateway"}[5s]))', lambda v: v > 0)
            await prometheus.wait_for('sum(rate(workflow_executions_total[5s]))', lambda v: v > 0)
            slack.groups = {"S0ORCHSRE": [BOB, DAVE]}
            clock = ShiftedClock()
            bot, runner = await start_bot(
                make_settings(slack, f"sqlite:///{tmp_path / 'opsbot.db'}"),
                substituted(tmp_path, cluster, prometheus), slack, http, clock=clock,
                environ={"K8S_TOKEN": TOKEN, "ORCHESTRATOR_DB_URL": pg_database, "REDIS_URL": REDIS_DB_URL,
                         "REDIS_CACHE_URL": REDIS_DB_URL, "STATUS_PAGE_WEBHOOK_URL": status_page[0]})
            # Last night's backups (the catalog's policy: a backup needs no approval).
            for service in ("postgres", "config"):
                plan = await ops(bot, f"backup {service}")
                await click(bot, "action.request", button(plan, "action.request")["value"], ALICE)
            yield Stack(bot, cluster, prometheus, queue, clock, pg_database, status_page[1])
        finally:
            load.cancel()
            with suppress(asyncio.CancelledError):
                await load
            if runner is not None:
                await runner.cleanup()
    finally:
        queue.delete(QUEUE)
        queue.close()
        await cluster.stop()


async def test_a_crash_looping_pod_turns_its_line_red_and_an_approved_restart_makes_it_green(stack: Stack) -> None:
    await all_green(stack)
    pod = stack.cluster.pods("api-gateway", namespace=NS)[0]["metadata"]["name"]
    stack.cluster.crash_loop(pod, restarts=5, namespace=NS)

    report = await health(stack.bot)
    assert report.headline.startswith("❌ 1 of 6 services failing"), str(report)
    pods = report.line("api-gateway", "pods")
    assert pods.red and f"{pod} running but not ready (api-gateway: CrashLoopBackOff)" in pods.reason, pods
    # Growth since the earlier (all green) run, over the seconds between the two runs.
    assert f"{pod}/api-gateway: 5 restarts in the last " in pods.reason, pods
    assert "2 of 3 pods ready (minimum 3)" in pods.reason, pods

    run_id, _ = await requested(stack.bot, "restart api-gateway", reason="api-gateway pod crash-looping")
    await click(stack.bot, "approval.approve", str(run_id), ALICE)  # the requester cannot approve their own
    assert (await stack.bot.ctx.store.get_action(run_id)).state is ActionState.PENDING
    await click(stack.bot, "approval.approve", str(run_id), BOB)
    run = await stack.bot.ctx.store.get_action(run_id)
    assert run is not None and run.state is ActionState.SUCCEEDED, run.outcome
    assert pod not in [p["metadata"]["name"] for p in stack.cluster.pods("api-gateway", namespace=NS)]
    await all_green(stack)


async def test_the_statefulset_pods_and_the_nodes_are_in_the_morning_check_and_a_crash_looping_postgres_turns_red(
        stack: Stack) -> None:
    report = await all_green(stack)
    for name in STATEFULSETS:
        assert report.line(name, "pods").reason == (
            "1 of 1 pod ready; CPU at most 30 % of limits; memory at most 44 % of limits"), report.line(name, "pods")
    # `kubectl top nodes`: 2.5 of 8 CPUs and 12 of 32 GiB on each node.
    gateway = report.line("api-gateway", "pods")
    assert gateway.reason.endswith("; nodes: CPU at most 31 %, memory at most 38 % of allocatable"), gateway

    pod = stack.cluster.pods("postgres", namespace=NS)[0]["metadata"]["name"]
    stack.cluster.crash_loop(pod, restarts=4, namespace=NS)
    report = await health(stack.bot)
    assert report.headline.startswith("❌ 1 of 6 services failing"), str(report)
    pods = report.line("postgres", "pods")
    assert pods.red and f"{pod} running but not ready (postgres: CrashLoopBackOff)" in pods.reason, pods
    assert f"{pod}/postgres: 4 restarts in the last " in pods.reason, pods
    assert "0 of 1 pod ready (minimum 1)" in pods.reason, pods
    assert not report.line("redis", "pods").red, "only the crash-looping pod's line is red"


async def test_a_queue_past_its_limit_turns_red_and_scaling_the_engine_drains_it(stack: Stack) -> None:
    await all_green(stack)
    stack.queue.rpush(QUEUE, *[f'{{"workflow": {n}}}' for n in range(250)])

    message = await ops(stack.bot, "health")
    queue = read_report(message).line("workflow-engine", "workflow queue")
    assert queue.red and f"{QUEUE}: 250 items (limit 200)" in queue.reason, queue
    assert "Run scale-workflow-engine" in text(message), "the failing line offers the runbook that fixes it"

    def workers(method: str, path: str) -> None:
        # The new replicas' work, played by the test: once the deployment is scaled, they take the backlog.
        if method == "PATCH" and path.endswith("/deployments/workflow-engine"):
            stack.queue.delete(QUEUE)

    stack.cluster.before_request = workers
    run_id = await request_runbook(stack.bot, "run scale-workflow-engine replicas=6")
    assert stack.cluster.deployment("workflow-engine", namespace=NS)["spec"]["replicas"] == 3, "nothing before approval"
    await click(stack.bot, "approval.approve", str(run_id), DAVE)
    run = await stack.bot.ctx.store.get_action(run_id)
    assert run is not None and run.state is ActionState.SUCCEEDED, (run.outcome, [(s.title, s.detail) for s in run.steps])
    assert stack.cluster.deployment("workflow-engine", namespace=NS)["spec"]["replicas"] == 6
    report = await all_green(stack)
    assert report.line("workflow-engine", "pods").reason.startswith("6 of 6 pods ready")


async def test_a_bad_release_raises_the_error_rate_and_the_rollback_runbook_brings_it_down(stack: Stack) -> None:
    await all_green(stack)
    stack.cluster.set_image("api-gateway", image("api-gateway", BAD), namespace=NS)  # CI shipped 2.5.0
    [query] = [c.query for c in stack.bot.ctx.catalog.services["api-gateway"].checks if c.label == "error rate"]
    await stack.prometheus.wait_for(query, lambda v: v > 20)  # half the requests fail once the window is past 2.4.0

    errors = (await health(stack.bot)).line("api-gateway", "error rate")
    assert errors.red and errors.reason.endswith("% errors (limit 5 % errors)"), errors
    assert float(errors.reason.split()[0]) > 20, errors

    run_id = await request_runbook(stack.bot, "run rollback-api-gateway")
    await click(stack.bot, "approval.approve", str(run_id), BOB)
    run = await stack.bot.ctx.store.get_action(run_id)
    assert run is not None and run.state is ActionState.SUCCEEDED, (run.outcome, [(s.title, s.detail) for s in run.steps])
    running = stack.cluster.deployment("api-gateway", namespace=NS)["spec"]["template"]["spec"]["containers"][0]
    assert running["image"] == image("api-gateway", GOOD)
    report = await all_green(stack)
    assert report.line("api-gateway", "error rate").reason == "0 % errors"


async def test_backups_that_age_turn_red_and_new_backups_make_them_green(stack: Stack) -> None:
    await all_green(stack)
    stack.clock.offset = timedelta(days=4)  # four nights without a backup

    report = await health(stack.bot)
    for service in ("postgres", "config"):
        backup = report.line(service, "latest verified backup")
        assert backup.red and backup.reason == "last verified backup 4.0 days ago (limit 3 days)", backup

    for service in ("postgres", "config"):
        plan = await ops(stack.bot, f"backup {service}")
        await click(stack.bot, "action.request", button(plan, "action.request")["value"], ALICE)
    report = await all_green(stack)
    assert report.line("postgres", "latest verified backup").reason == "last verified backup 0.0 hours ago"
    posted = [c.args for c in stack.bot.slack.of("chat.postMessage") if c.args.get("channel") == "C0ORCHOPS"]
    assert len([p for p in posted if "✅" in text(p) and "postgres" in text(p)]) >= 2, "each result in the team's channel"


def replica_changes(cluster: K8sApi) -> list[tuple[str, int]]:
    """(deployment, replicas) of every scale the API server was asked for, in order."""
    return [(r.path.rsplit("/", 1)[1], r.body["spec"]["replicas"]) for r in cluster.writes()
            if "/deployments/" in r.path and isinstance(r.body, dict) and "replicas" in r.body.get("spec", {})]


async def test_the_restore_runbook_scales_the_app_to_zero_restores_the_database_and_scales_back(stack: Stack) -> None:
    await all_green(stack)
    [backup] = await stack.bot.ctx.store.backups("postgres")
    conn = await asyncpg.connect(stack.database)
    try:
        await conn.execute("DELETE FROM execution_logs")  # a bad migration took the executions with it

        run_id = await request_runbook(stack.bot, f"run restore-database backup={backup.id}")
        await click(stack.bot, "approval.approve", str(run_id), BOB)
        assert (await stack.bot.ctx.store.get_action(run_id)).state is ActionState.PENDING, "a restore needs two"
        await click(stack.bot, "approval.approve", str(run_id), DAVE)
        run = await stack.bot.ctx.store.get_action(run_id)
        assert run is not None and run.state is ActionState.SUCCEEDED, (run.outcome, [(s.title, s.detail) for s in run.steps])
        assert await conn.fetchval("SELECT count(*) FROM execution_logs") == 120
    finally:
        await conn.close()
    assert replica_changes(stack.cluster) == [("api-gateway", 0), ("auth-service", 0), ("workflow-engine", 0),
                                              ("workflow-engine", 3), ("auth-service", 3), ("api-gateway", 3)]
    safety = [b for b in await stack.bot.ctx.store.backups("postgres") if b.label is BackupLabel.SAFETY]
    assert len(safety) == 1, "the database as it was before the restore is kept"
    await all_green(stack)


async def test_the_maintenance_window_sets_maintenance_mode_around_the_new_image(stack: Stack) -> None:
    await all_green(stack)
    backups = len(await stack.bot.ctx.store.backups("postgres"))
    seen: list[str] = []

    def deploying(method: str, path: str) -> None:
        # What the app reads from its ConfigMap at the moment its image changes.
        if method == "PATCH" and path.endswith("/deployments/api-gateway"):
            seen.append(stack.cluster.configmap("api-config", namespace=NS)["data"]["maintenance_mode"])

    stack.cluster.before_request = deploying
    run_id = await request_runbook(stack.bot, "run maintenance-window version=2.4.1")
    await press(stack.bot, "approval.approve", str(run_id), BOB)
    run, answered = await answering_done(stack.bot, run_id, DAVE)  # the smoke tests, run by a person
    assert run.state is ActionState.SUCCEEDED, (run.outcome, [(s.title, s.detail) for s in run.steps])
    assert answered == ["Smoke tests"]

    running = stack.cluster.deployment("api-gateway", namespace=NS)["spec"]["template"]["spec"]["containers"][0]
    assert running["image"] == image("api-gateway", "2.4.1")
    assert seen == ["true"], "maintenance mode was on while the image changed"
    assert stack.cluster.configmap("api-config", namespace=NS)["data"] == {"maintenance_mode": "false", "log_level": "info"}
    assert [hook["status"] for hook in stack.status_page] == ["in_progress", "completed"]
    assert len(await stack.bot.ctx.store.backups("postgres")) == backups + 1, "production-pre-maintenance"
    posted = [c.args["text"] for c in stack.bot.slack.of("chat.postMessage") if c.args.get("channel") == "C0ORCHOPS"]
    assert "Maintenance done: api-gateway 2.4.1 is live. Watch error rates for 2 hours." in posted
    await all_green(stack)
