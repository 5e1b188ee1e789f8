"""examples/gitte.yml, the GITTE team's runbook as a catalog: `opsbot check-config` accepts it, it holds every
item of the runbook's morning health check, and its runbooks plan the runbook's procedures step by step (commands
in the app's container, queries a person reads, checklist items a person answers, gates on chosen checks); then a
miniature GITTE (its app, Ollama and MinIO as busybox containers answering their health paths, the real PostgreSQL
with an audit_logs table) is checked through Slack, broken one thing at a time, and put right by the restart
action or a runbook a second person approves."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import asyncpg
import docker.errors
import pytest

from bot.catalog import Catalog
from bot.catalog_loading import load_catalog, parse_catalog
from bot.executors.base import Effect
from bot.incidents.postmortem import render_postmortem
from bot.runs.models import ActionRun, ActionState, Answer, StepState
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings, start_bot
from tests.stacks import (
    EXAMPLES,
    MISSING_DOCKER,
    Report,
    ShiftedClock,
    all_green,
    answering_done,
    check_config,
    example,
    health,
    health_until,
    kinds,
    plan_runbook,
    press,
    run_app,
    wait_serving,
)
from tests.test_approvals import (
    ALICE,
    BOB,
    CHANNEL,
    DAVE,
    button,
    click,
    ops,
    requested,
    text,
)
from tests.test_postmortem import NAMES, NOW, a_resolved_incident, an_entry, an_item
from tests.test_query import ops_query
from tests.test_runbooks import message_of, request_runbook, until

if TYPE_CHECKING:
    from docker.models.containers import Container

    from tests.podman import Containers, Images, Podman

pytest_plugins = ["tests.podman"]  # podman, images, containers

EXAMPLE = EXAMPLES / "gitte.yml"
PROJECT = "gitte-federated-learning-system"  # the compose project, as the runbook's volume names show it
OPS_TEAM = "S0GITTEOPS"

# The runbook's morning health check, item by item, and the catalog line that replaces each.
MORNING_CHECK = {
    "1. docker-compose ps": ("stack", "containers", "service status"),
    "2. curl /_stcore/health": ("gitte-app", "http", "app health"),
    "3. pg_isready -U gitte -d kiro_test": ("postgres", "postgres", "database"),
    "4. curl ollama /api/tags": ("ollama", "http", "LLM"),
    "5. curl minio /minio/health/live": ("minio", "http", "storage"),
    "6. df / (80 %)": ("host", "disk", "disk"),
    "7. free (80 %)": ("host", "memory", "memory"),
    "8. docker-compose logs --since=24h | grep -i error (10)": ("stack", "log-errors", "errors in logs"),
}


# --- the catalog ----------------------------------------------------------------------------------------------


def test_check_config_accepts_the_gitte_example(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    result = check_config(EXAMPLE, monkeypatch, capsys, GITTE_DB_URL="postgresql://gitte@postgres:5432/kiro_test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK — 9 services" in result.stdout and "4 scheduled backups" in result.stdout, result.stdout
    assert "not set here" not in result.stdout + result.stderr  # GITTE_DB_URL is its only secret
    # The migration's change stays when the deploy's gate rolls the image back, as the example's comment says.
    assert "runbooks.deploy-app.steps[3]: `exec` has no undo: if step 4" in result.stdout, result.stdout


def test_the_catalog_has_every_item_of_the_morning_health_check() -> None:
    catalog = load_catalog(EXAMPLE)
    for item, (service, kind, label) in MORNING_CHECK.items():
        checks = {check.label: check for check in catalog.service(service).checks}
        assert label in checks and checks[label].type == kind, f"runbook item {item!r}: no {kind} check {label!r} on {service}"
    stack = {c.label: c for c in catalog.service("stack").checks}
    assert stack["service status"].project == PROJECT and stack["service status"].expect == 4
    assert stack["errors in logs"].window_hours == 24 and stack["errors in logs"].lines.warning == 10
    host = {c.label: c for c in catalog.service("host").checks}
    assert host["disk"].paths[0] == "/" and host["disk"].usage_percent.warning == 80
    assert host["memory"].memory_percent.warning == 80
    app = {c.label: c for c in catalog.service("gitte-app").checks}
    assert str(app["app health"].url) == "http://gitte-app:8501/_stcore/health"
    assert (app["error rate"].above.warning, app["error rate"].above.critical) == (1, 5)


def test_the_catalog_keeps_the_teams_severities_backups_digests_and_report() -> None:
    catalog = load_catalog(EXAMPLE)
    severities = [(s.name, s.label, s.response_minutes) for s in catalog.incidents.severities]
    assert severities == [("P0", "Critical", 15), ("P1", "High", 60), ("P2", "Medium", 240), ("P3", "Low", 1440)]
    for service in ("postgres", "minio", "generated-images", "config"):  # the nightly script's four parts
        backup = catalog.service(service).backup
        assert backup is not None and backup.schedule is not None and backup.schedule.cron == "0 2 * * *"
        assert backup.retention_days == 30 and catalog.service(service).channel == "C0GITTEOPS"
        assert "backup-freshness" in [c.type for c in catalog.service(service).checks]
    digests = {name: (d.cron, d.timezone) for name, d in catalog.schedules.digests.items()}
    assert digests["daily"] == ("0 9 * * *", "UTC") and digests["evening"] == ("0 18 * * *", "UTC")
    template = catalog.incidents.postmortem_template or ""
    for heading in ("# Incident Report:", "**Incident Commander:**", "## Summary", "## Timeline", "## Root Cause",
                    "## Resolution", "## Impact", "## Action Items", "## Lessons Learned"):
        assert heading in template
    assert {"deploy-app", "rollback-app", "restore-db", "full-recovery", "maintenance-window"} <= set(catalog.runbooks)
    production = catalog.approvals.environments["production"]
    assert production.default is not None and production.default.approvers == [OPS_TEAM]
    for name in ("restore-db", "full-recovery"):  # a runbook that restores needs the two people `/ops restore` does
        policy = catalog.runbook(name).approvals
        assert policy is not None and policy.approvals == 2 and policy.approvers == [OPS_TEAM]


def test_the_post_mortem_comes_out_in_the_teams_incident_report_form() -> None:
    catalog = load_catalog(EXAMPLE)
    incident = a_resolved_incident(severity="P1", services=("gitte-app", "ollama"))
    report = render_postmortem(incident, [an_entry(10, "Ollama restarted")],
                               [an_item("Alert on LLM latency", "U3", date(2026, 12, 1))],
                               catalog.incidents, services={"gitte-app": "production", "ollama": "production"}, now=NOW,
                               names=NAMES)
    assert "template failed" not in report, report[:400]
    assert report.startswith("# Incident Report: API is down\n")
    assert "**Severity:** P1 (High)" in report and "**Incident Commander:** @bob" in report
    assert "- 2026-11-23 09:10 UTC: Ollama restarted (@bob)" in report
    assert "- Services affected: gitte-app, ollama" in report and "Rolled back to v41." in report
    assert "- [ ] Alert on LLM latency - Owner: @carol - Due: 2026-12-01" in report


# --- the runbooks, planned in memory -----------------------------------------------------------------------------

def in_memory() -> Catalog:
    """The example, its Docker socket one that is not there: a plan's look at the running image fails at once."""
    return parse_catalog(example("gitte", {"unix:///var/run/docker.sock": MISSING_DOCKER}))


async def test_the_deployment_runs_the_migration_in_the_app_and_leaves_the_smoke_tests_to_a_person() -> None:
    catalog = in_memory()
    run = await plan_runbook(catalog, "deploy-app", version="2.1")
    assert kinds(run) == ["backup", "deploy", "exec", "check", "manual", "manual", "check", "notify"]
    migrate, gate, smoke, others = run.plan[2], run.plan[3], run.plan[4], run.plan[5]
    assert (migrate.service, migrate.args["command"]) == ("gitte-app", ["python", "-m", "alembic", "upgrade", "head"])
    assert migrate.title == "Database migrations" and migrate.undo is None
    assert (gate.args["checks"], gate.args["attempts"]) == (["app health"], 15), "the script's curl, not the audit numbers"
    assert "./scripts/smoke-tests.sh" in smoke.args["instructions"] and smoke.on_failure == "stop"
    assert "up -d" in others.args["instructions"] and "*Skip*" in others.args["instructions"]


async def test_recovery_and_alert_runbooks_plan_the_runbooks_steps() -> None:
    catalog = in_memory()
    expected = {
        "restore-db": ["stop", "restore", "start", "exec", "check", "check"],
        "maintenance-window": ["notify", "manual", "backup", "stop", "sql", "sql", "manual", "prune", "recreate",
                               "recreate", "recreate", "start", "check", "check", "check", "check", "check", "manual",
                               "notify"],
        "high-error-rate": ["collect-logs", "query", "restart", "check"],
        "slow-app": ["query", "collect-logs", "restart", "check", "sql"],
        "incident-evidence": ["collect-logs", "query"],
        "service-down-postgres": ["collect-logs", "restart", "check", "check"],
    }
    for name, steps in expected.items():
        run = await plan_runbook(catalog, name, **({"backup": "latest"} if name == "restore-db" else {}))
        assert kinds(run) == steps, name
        for step in run.plan:
            if step.kind == "check" and step.service == "gitte-app":
                assert step.args["checks"] == ["app health"], (name, step.title)  # never the audit_logs numbers
            if step.kind == "query":  # read-only: nothing to approve for it, nothing to undo
                assert step.undo is None and step.on_failure == "continue", (name, step.title)
    restore = await plan_runbook(catalog, "restore-db", backup="latest")
    assert restore.plan[3].args["command"] == ["python", "-m", "alembic", "upgrade", "head"]
    window = await plan_runbook(catalog, "maintenance-window")
    assert [step.title for step in window.plan if step.kind == "manual"] == [
        "Maintenance page up", "Host upkeep", "Maintenance page down"]
    upkeep, prune, recreates = window.plan[6], window.plan[7], window.plan[8:11]
    assert "apt upgrade" in upkeep.args["instructions"] and "docker" not in upkeep.args["instructions"]
    # `docker system prune -f`: before the pulls, so the images they replace stay for the recreates' undo
    assert (prune.service, prune.args["images"], prune.args["containers_older_than_days"]) == ("stack", "dangling", 1)
    assert prune.undo is None and prune.on_failure == "stop"
    # `docker-compose pull` + `up -d`: the services but the app (deploy-app's), each left as it was when no pull works
    assert [(step.service, step.on_failure) for step in recreates] == [
        ("postgres", "continue"), ("ollama", "continue"), ("minio", "continue")]
    assert all(step.undo == "recreate onto the image it ran before" for step in recreates)
    assert recreates[1].args["pull_timeout"] == 1200 and recreates[1].timeout > 1200  # the Ollama image is large


def test_the_runbooks_queries_are_named_queries_a_person_can_run() -> None:
    catalog = load_catalog(EXAMPLE)
    assert set(catalog.queries) == {"user-activity", "operations-today", "errors-by-status", "database-size",
                                    "error-patterns", "slow-statements", "active-sessions", "table-sizes",
                                    "user-growth", "activity-trends", "suspicious-users"}
    assert {(q.service, q.engine, q.dsn_env) for q in catalog.queries.values()} == {("postgres", "postgres", "GITTE_DB_URL")}
    steps = {step.name: step.statement for runbook in catalog.runbooks.values() for step in runbook.steps
             if step.kind == "query"}
    # The runbook steps read what `/ops query` reads (one statement, written once in the example).
    assert steps == {"Error patterns (last hour)": catalog.queries["error-patterns"].statement,
                     "Slowest statements": catalog.queries["slow-statements"].statement,
                     "Active sessions": catalog.queries["active-sessions"].statement}


# --- the miniature stack --------------------------------------------------------------------------------------

AUDIT_LOGS = """
CREATE TABLE audit_logs (
    id serial PRIMARY KEY, request_id text NOT NULL, user_id int, operation text NOT NULL,
    latency_ms int, status text NOT NULL, created_at timestamp NOT NULL DEFAULT now()
);
-- an ordinary hour: 12 users, fast answers, no errors (enough users for the business-hours check too)
INSERT INTO audit_logs (request_id, user_id, operation, latency_ms, status)
SELECT 'req-' || n, n % 12, 'chat', 200 + n, 'completed' FROM generate_series(1, 60) AS n;
"""


@dataclass
class Gitte:
    bot: RunningBot
    clock: ShiftedClock
    containers: Containers
    app: Container
    ollama: Container
    minio: Container
    db: str
    ollama_tag: str  # Ollama's own tag, on build 1, for the maintenance window's recreate to find moved


async def backup_now(bot: RunningBot, service: str) -> None:
    """`/ops backup <service>`: production backups need nobody's approval, so the requester's Run now runs it."""
    plan = await ops(bot, f"backup {service} nightly run")
    assert "Run now" in text(plan), text(plan)[:500]
    run_id = int(button(plan, "action.request")["value"])
    await click(bot, "action.request", str(run_id), ALICE)
    run = await until(bot, run_id, lambda r: r.state.final)
    assert run.state is ActionState.SUCCEEDED, run.outcome  # type: ignore[attr-defined]


@pytest.fixture
async def gitte(podman: Podman, images: Images, containers: Containers, slack: FakeSlack, http: aiohttp.ClientSession,
                pg_database: str, tmp_path: Path) -> AsyncIterator[Gitte]:
    project = f"gitte-{containers.run_id}"  # its own compose project: other tests' containers are not counted

    def labels(service: str) -> dict[str, str]:
        return {"com.docker.compose.project": project, "com.docker.compose.service": service}

    app, app_port = run_app(containers, images.v1, "gitte-app", {"/_stcore/health": "ok"}, tmp_path, labels=labels("gitte-app"))
    ollama_tag = f"{images.repository}:ollama-{containers.run_id}"
    containers.client.images.get(images.v1).tag(*ollama_tag.rsplit(":", 1))
    ollama, ollama_port = run_app(containers, ollama_tag, "ollama",
                                  {"/api/tags": json.dumps({"models": [{"name": "llama3:8b", "size": 4661224676}]})},
                                  tmp_path, labels=labels("ollama"))
    minio, minio_port = run_app(containers, images.v1, "minio", {"/minio/health/live": ""}, tmp_path, labels=labels("minio"))
    for port, path in ((app_port, "/_stcore/health"), (ollama_port, "/api/tags"), (minio_port, "/minio/health/live")):
        await wait_serving(f"http://127.0.0.1:{port}{path}")

    conn = await asyncpg.connect(pg_database)
    try:
        await conn.execute(AUDIT_LOGS)
    finally:
        await conn.close()
    srv = tmp_path / "srv"
    (tmp_path / "docker").mkdir()  # stands in for Docker's data directory
    for folder in ("minio-data", "generated_images", "compose/config"):
        (srv / folder).mkdir(parents=True)
    (srv / "minio-data" / "bucket.json").write_text("{}")
    (srv / "generated_images" / "avatar-1.png").write_bytes(b"\x89PNG\r\n")
    (srv / "compose" / "config" / "config.yaml").write_text("llm: ollama\n")
    (srv / "compose" / ".env").write_text("POSTGRES_PASSWORD=stand-in\n")
    (srv / "compose" / "docker-compose.yml").write_text("services: {}\n")

    catalog = example("gitte", {
        "gitte-app:8501": f"127.0.0.1:{app_port}",
        "ollama:11434": f"127.0.0.1:{ollama_port}",
        "minio:9000": f"127.0.0.1:{minio_port}",
        "unix:///var/run/docker.sock": podman.base_url,
        PROJECT: project,
        "/srv/gitte": str(srv),
        "/backups": str(tmp_path / "backups"),
        "/var/lib/docker": str(tmp_path / "docker"),
        "REINDEX DATABASE kiro_test": f"REINDEX DATABASE {pg_database.rsplit('/', 1)[1]}",  # this test's database
        # The busybox app has no Python: the migration's stand-in says what it stands in for.
        "[python, -m, alembic, upgrade, head]": "[echo, alembic upgrade head]",
        # PostgreSQL is this machine's server, not a container of the project: three containers here, not four.
        "expect: 4": "expect: 3",
        # The test machine is shared with other test runs; its load says nothing about this stack.
        "load_per_cpu: {warning: 0.8, critical: 0.95}": "load_per_cpu: {warning: 50, critical: 100}",
        # No registry here: podman gives up on a pull only after seconds of retries. MinIO's is cut short instead
        # (its build has nothing newer: left as it was either way); Ollama's is waited out, to find its newer build.
        "{kind: recreate, service: minio, on_failure: continue}":
            "{kind: recreate, service: minio, pull_timeout: 0.3, on_failure: continue}",
    })
    slack.groups = {OPS_TEAM: [BOB, DAVE], "S0GITTEDEV": [DAVE], "S0GITTESEC": [DAVE]}
    clock = ShiftedClock()
    bot, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'opsbot.db'}"), catalog, slack, http,
                                  environ={"GITTE_DB_URL": pg_database}, clock=clock)
    try:
        for service in ("postgres", "minio", "generated-images", "config"):  # last night's backups
            await backup_now(bot, service)
        yield Gitte(bot, clock, containers, app, ollama, minio, pg_database, ollama_tag)
    finally:
        await runner.cleanup()
        with suppress(docker.errors.ImageNotFound):  # the containers go after this; an image keeps its other tags
            containers.client.images.remove(ollama_tag)


async def green(bot: RunningBot, deadline: float = 30) -> Report:
    return await health_until(bot, all_green, deadline=deadline)


async def approve(bot: RunningBot, run_id: int) -> ActionRun:
    """The requester cannot approve; a second person of the ops team can, and the run goes to its end (Dave, of the
    ops team too, answers Done on each checklist step a person does)."""
    assert "second person" in await click(bot, "approval.approve", str(run_id), ALICE)
    await press(bot, "approval.approve", str(run_id), BOB)
    run, _ = await answering_done(bot, run_id, DAVE)
    return run


# --- break one thing at a time --------------------------------------------------------------------------------


async def test_a_stopped_app_turns_its_lines_red_and_a_restart_a_second_person_approves_brings_it_back(gitte: Gitte) -> None:
    bot = gitte.bot
    report = await green(bot)
    assert report.headline == "✅ All 9 services healthy"

    await asyncio.to_thread(gitte.app.stop, timeout=1)
    report = await health(bot)
    app = report.line("gitte-app", "app health")
    assert app.red and "cannot connect" in app.reason and "127.0.0.1:" in app.reason, report
    status = report.line("stack", "service status")
    assert status.red and f"{gitte.app.name} exited" in status.reason and "only 2 running (expected at least 3)" in status.reason
    assert not report.line("gitte-app", "error rate").red, "the app's database lines are not what broke"

    run_id, posted = await requested(bot, "restart gitte-app", reason="morning check: app health failed")
    assert "Approval needed: restart gitte-app" in text(posted)
    run = await approve(bot, run_id)
    assert run.state is ActionState.SUCCEEDED, run.outcome  # type: ignore[attr-defined]
    await green(bot)


async def test_a_dead_llm_is_red_and_the_service_down_runbook_restarts_it(gitte: Gitte) -> None:
    bot = gitte.bot
    await green(bot)
    await asyncio.to_thread(gitte.ollama.stop, timeout=1)
    report = await health(bot)
    llm = report.line("ollama", "LLM")
    assert llm.red and "cannot connect" in llm.reason, report
    [offer] = [b["accessory"] for b in (await ops(bot, "health ollama"))["blocks"] if "accessory" in b]
    assert "runbook:service-down-ollama" in json.dumps(offer), "the failing line offers the team's runbook"

    run_id = await request_runbook(bot, "run service-down-ollama")
    assert "Approve" in text(message_of(bot, run_id))
    run = await approve(bot, run_id)
    assert run.state is ActionState.SUCCEEDED, run.outcome  # type: ignore[attr-defined]
    # "If restart fails: docker-compose logs ollama": the logs from before the restart were kept, as a file here.
    assert bot.slack.file_text(title="Logs of ollama, last 30 min", channel=CHANNEL).startswith(f"==> {gitte.ollama.name} <==")
    await green(bot)


async def test_errors_in_the_logs_turn_red_and_a_deploy_a_second_person_approves_clears_them(gitte: Gitte) -> None:
    bot = gitte.bot
    await green(bot)
    # 120 error lines in the app's output, as a crashing request handler would write them.
    script = "exec >/proc/1/fd/1; " + " ".join(f"echo 'ERROR: generation failed for request {n}';" for n in range(120))
    exit_code, output = await asyncio.to_thread(gitte.app.exec_run, ["sh", "-c", script])
    assert exit_code == 0, output
    report = await health_until(bot, lambda r: r.line("stack", "errors in logs").red, deadline=15)
    errors = report.line("stack", "errors in logs")
    assert errors.reason.startswith("120 lines matching /error/ in the last 24 h") and "(limit 100)" in errors.reason
    assert "Last errors" in text(await ops(bot, "health stack")), "the failing line offers the lines themselves"
    # The high error rate procedure's "Analyze error patterns": which operation fails, read from the real audit_logs
    # (half an hour ago: the `error rate` line looks at the last 5 minutes only).
    conn = await asyncpg.connect(gitte.db)
    try:
        await conn.execute("INSERT INTO audit_logs (request_id, user_id, operation, latency_ms, status, created_at) "
                           "SELECT 'gen-' || n, n, 'image_generation', 61000, 'failed', now() - interval '30 minutes' "
                           "FROM generate_series(1, 7) AS n")
    finally:
        await conn.close()
    [table] = [answer for answer in await ops_query(bot, "error-patterns") if answer.get("response_type") == "in_channel"]
    assert re.search(r"image_generation +failed +7", text(table)), text(table)

    run_id = await request_runbook(bot, "run deploy-app version=2")
    assert "⬜ Smoke tests" in text(message_of(bot, run_id)), "the plan shows the step a person will do"
    assert "second person" in await click(bot, "approval.approve", str(run_id), ALICE)
    await press(bot, "approval.approve", str(run_id), BOB)
    run, answered = await answering_done(bot, run_id, DAVE)
    assert run.state is ActionState.SUCCEEDED, (run.outcome, [(s.title, s.detail) for s in run.steps])
    assert answered == ["Smoke tests", "Update other services if needed"]
    assert [(s.answer.answer, s.answer.by) for s in run.steps if s.answer] == [(Answer.DONE, DAVE)] * 2
    # The migration ran inside the app's new container, after the image changed and before the gate.
    migration = run.steps[2]
    assert migration.detail.startswith("exit 0 in ") and migration.detail.endswith(": alembic upgrade head"), migration
    assert gitte.containers.get(gitte.app.name).attrs["Config"]["Image"].endswith(":2")
    await green(bot)


async def test_backups_that_stop_running_age_into_red_and_fresh_ones_clear_it(gitte: Gitte) -> None:
    bot = gitte.bot
    await green(bot)
    gitte.clock.jump(timedelta(days=3))  # three nights without the 02:00 backup
    report = await health(bot)
    last = report.line("postgres", "last backup")
    assert last.red and "days ago" in last.reason and "(limit 3 days)" in last.reason, report
    assert {(line.service, line.check) for line in report.not_green()} == {
        (s, "last backup") for s in ("postgres", "minio", "generated-images", "config")}

    for service in ("postgres", "minio", "generated-images", "config"):
        await backup_now(bot, service)
    await green(bot)


async def test_the_maintenance_window_runbook_runs_end_to_end_once_approved(gitte: Gitte, podman: Podman,
                                                                           images: Images) -> None:
    bot, client = gitte.bot, gitte.containers.client
    await green(bot)
    # Last month's build whose tag moved on (`docker system prune -f` removes it), and a patched Ollama under the
    # tag it runs. There is no registry here: every pull fails, and the host's own newer copy is what Ollama gets.
    dangling = podman.import_image(f"dangling-{gitte.containers.run_id}", "dangling")
    dangling_id = client.images.get(dangling).id
    podman.run("untag", dangling)
    client.images.get(images.v2).tag(*gitte.ollama_tag.rsplit(":", 1))
    run_id = await request_runbook(bot, "run maintenance-window")
    plan = text(message_of(bot, run_id))
    assert "VACUUM ANALYZE" in plan and "Stop gitte-app" in plan and "⬜ Maintenance page up" in plan
    assert "second person" in await click(bot, "approval.approve", str(run_id), ALICE)
    await press(bot, "approval.approve", str(run_id), BOB)
    run, answered = await answering_done(bot, run_id, DAVE)
    assert run.state is ActionState.SUCCEEDED, (run.outcome, [(s.title, s.detail) for s in run.steps])
    assert answered == ["Maintenance page up", "Host upkeep", "Maintenance page down"]
    details = {step.title: step.detail for step in run.steps}
    assert details["Run on postgres (postgres): VACUUM ANALYZE"].startswith("VACUUM in "), details
    assert next(d for t, d in details.items() if "REINDEX" in t).startswith("REINDEX in "), details
    rows = {step.position: step for step in run.steps}
    pruned, ollama, minio = rows[7].detail, rows[9].detail, rows[10].detail
    assert pruned.startswith("Removed ") and dangling_id.removeprefix("sha256:")[:12] in pruned, pruned
    assert dangling_id not in {image.id for image in client.images.list(all=True)}
    assert ollama.startswith("Recreated ") and "the host's own newer" in ollama, ollama
    assert client.containers.get(gitte.ollama.name).attrs["Image"] == client.images.get(images.v2).id
    # PostgreSQL is this machine's server, not a container here; MinIO's pull did not come back: both left as they
    # were, and the window went on.
    assert [rows[i].state for i in (8, 9, 10)] == [StepState.FAILED, StepState.SUCCEEDED, StepState.FAILED]
    assert minio.endswith("did not finish within 0.3 s.") and rows[10].effect is Effect.UNTOUCHED, minio
    assert run.outcome.startswith("Finished, but step 9 failed (") and "; step 11 failed (" in run.outcome, run.outcome
    notices = [c.args["text"] for c in bot.slack.of("chat.postMessage") if "maintenance window" in str(c.args.get("text"))]
    assert [n.split(":")[0] for n in notices] == ["GITTE maintenance window started", "GITTE maintenance window completed"]
    assert gitte.containers.get(gitte.app.name).status == "running"
    await green(bot)
