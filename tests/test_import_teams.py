"""`opsbot import` on the four teams' runbooks (tests/data/runbooks/, copied from the teams): each draft loads in
the catalog loader on its own, and holds the elements its runbook says — named checks with the script's limits,
backups with their retention and schedule, runbooks with their steps in the text's order, manual steps verbatim."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.catalog import Catalog
from bot.catalog_loading import load_catalog, parse_catalog
from bot.cli import main
from bot.importing.draft import Draft, import_runbook, render
from bot.importing.measure import coverage
from tests.imports import unexpanded

RUNBOOKS = Path(__file__).resolve().parent / "data" / "runbooks"
TEAMS = ("gitte", "financial-stronghold", "iacc", "ai-orchestrator")


@cache
def _imported(team: str) -> tuple[Draft, str]:
    draft = import_runbook((RUNBOOKS / f"{team}.md").read_text(encoding="utf-8"), f"{team}.md")
    return draft, render(draft)


def _data(team: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(_imported(team)[1])
    return data


def _catalog(team: str) -> Catalog:
    return parse_catalog(_imported(team)[1], f"{team}.yml")


def _steps(team: str, runbook: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = _data(team)["runbooks"][runbook]["steps"]
    return steps


def _kinds(team: str, runbook: str) -> list[tuple[str, str | None]]:
    return [(step["kind"], step.get("service")) for step in _steps(team, runbook)]


@pytest.mark.parametrize("team", TEAMS)
def test_each_draft_loads_on_its_own_and_nothing_was_left_out_by_the_loader(team: str) -> None:
    draft, _ = _imported(team)
    catalog = _catalog(team)
    assert set(catalog.services) == {service.name for service in draft.services}
    assert set(catalog.runbooks) == {runbook.name for runbook in draft.runbooks}
    assert not [note for note in draft.notes if "catalog" in note]  # no element had to be dropped to load
    assert all(runbook.approvals is None for runbook in catalog.runbooks.values())


@pytest.mark.parametrize("team", TEAMS)
def test_no_field_holds_a_shell_expansion_and_every_parameter_used_is_declared(team: str) -> None:
    assert unexpanded(_data(team)) == []
    assert _catalog(team).runbooks  # and the draft loads


@pytest.mark.parametrize("team", TEAMS)
def test_at_least_80_percent_of_procedures_become_checks_backups_or_runbooks(team: str) -> None:
    share = coverage(_imported(team)[0])
    assert share.procedures >= 16
    assert share.procedure_share >= (0.75 if team == "iacc" else 0.8)  # iacc: external tools (ES, AWS, Grafana)


def test_gitte_morning_health_check_is_eight_gates_on_named_checks_with_the_scripts_limits() -> None:
    data = _data("gitte")
    assert data["services"]["stack"]["checks"] == [
        {"type": "containers", "name": "containers", "project": "gitte"},
        {"type": "log-errors", "name": "errors in logs", "pattern": "error", "window_hours": 24.0,
         "lines": {"warning": 10}}]  # "ERROR_COUNT -lt 10 … else ⚠️"
    assert data["services"]["host"]["checks"][:2] == [
        {"type": "disk", "name": "disk /", "paths": ["/"], "usage_percent": {"warning": 80}},
        {"type": "memory", "name": "memory", "memory_percent": {"warning": 80}}]
    assert data["services"]["ollama"]["checks"] == [{"type": "http", "name": "http /api/tags",
                                                     "url": "http://localhost:11434/api/tags"}]
    assert _steps("gitte", "morning-health-check-09-00-utc") == [
        {"kind": "check", "service": "stack", "checks": ["containers"]},  # `exit 1` on failure: stops
        {"kind": "check", "service": "gitte-app", "checks": ["http /_stcore/health"], "on_failure": "continue"},
        {"kind": "check", "service": "postgres", "checks": ["pg_isready"], "on_failure": "continue"},
        {"kind": "check", "service": "ollama", "checks": ["http /api/tags"], "on_failure": "continue"},
        {"kind": "check", "service": "minio", "checks": ["http /minio/health/live"], "on_failure": "continue"},
        {"kind": "check", "service": "host", "checks": ["disk /"]},
        {"kind": "check", "service": "host", "checks": ["memory"]},
        {"kind": "check", "service": "stack", "checks": ["errors in logs"]}]


def test_gitte_backups_their_retention_and_the_recovery_in_order() -> None:
    data = _data("gitte")
    assert data["services"]["postgres"]["backup"] == {"type": "postgres", "directory": "/backups",
                                                      "dsn_env": "POSTGRES_URL", "retention_days": 30}
    assert data["services"]["images"]["backup"]["paths"] == ["/srv/gitte/generated_images"]
    assert data["services"]["config"]["backup"]["paths"] == ["/srv/gitte/config", "/srv/gitte/.env",
                                                             "/srv/gitte/docker-compose.yml"]
    assert _kinds("gitte", "automated-backup-procedure") == [
        ("backup", "postgres"), ("backup", "images"), ("manual", None), ("backup", "config"),
        ("retention", "postgres"), ("retention", "images"), ("retention", "config")]
    assert _kinds("gitte", "database-recovery") == [
        ("stop", "gitte-app"), ("backup", "postgres"), ("sql", "postgres"), ("sql", "postgres"),
        ("restore", "postgres"), ("exec", "gitte-app"), ("start", "gitte-app"), ("wait", None),
        ("check", "gitte-app")]
    assert _steps("gitte", "database-recovery")[4]["backup"] == "{{ params.backup_file }}"
    assert _data("gitte")["runbooks"]["database-recovery"]["parameters"]["backup_file"]["type"] == "backup"


def test_gitte_deployment_deploys_the_given_version_behind_its_retry_gate_and_keeps_the_rest_verbatim() -> None:
    steps = _steps("gitte", "production-deployment")
    assert steps[1:4] == [{"kind": "deploy", "service": "gitte-app", "image": "{{ params.version }}"},
                          {"kind": "wait", "seconds": 30},
                          {"kind": "check", "service": "gitte-app", "checks": ["http /_stcore/health"],
                           "attempts": 12, "interval": 10}]
    assert steps[0]["kind"] == "manual" and steps[0]["instructions"].startswith("./scripts/backup.sh\ngit fetch origin")
    assert _steps("gitte", "service-down-alert")[0] == {"kind": "manual", "name": "Restart specific service",
                                                        "instructions": "docker-compose restart [service-name]"}


def test_financial_stronghold_checks_backups_and_their_crontab_schedule() -> None:
    data = _data("financial-stronghold")
    assert [check["url"] for check in data["services"]["web"]["checks"] if check["type"] == "http"] == [
        "https://yourdomain.com/health/", "https://yourdomain.com/health/db/", "https://yourdomain.com/health/cache/",
        "https://yourdomain.com/health/queue/", "https://yourdomain.com/"]
    assert {"type": "log-errors", "name": "/401/ in logs", "pattern": "401", "window_hours": 1.0,
            "lines": {"critical": 50, "strict": True}} in data["services"]["nginx"]["checks"]  # FAILED_LOGINS -gt 50
    assert {"type": "disk", "name": "disk /", "paths": ["/"], "usage_percent": {"critical": 80, "strict": True}} \
        in data["services"]["host"]["checks"]  # awk '$5 > 80 { print "ALERT…" }'
    assert data["services"]["db"]["backup"] == {"type": "postgres", "directory": "/var/backups/financial-stronghold",
                                                "dsn_env": "DB_URL", "retention_days": 30, "schedule": "0 2 * * *"}
    assert data["services"]["media"]["backup"]["schedule"] == "0 2 * * *"
    assert _catalog("financial-stronghold").services["db"].backup is not None


def test_financial_stronghold_incident_actions_in_order() -> None:
    assert _kinds("financial-stronghold", "resolution-actions") == [
        ("restart", "web"), ("manual", None), ("query", "db"), ("terminate-queries", "db"), ("restart", "db"),
        ("exec", "web"), ("restart", "memcached")]
    steps = _steps("financial-stronghold", "resolution-actions")
    assert steps[1]["instructions"] == ("for i in {1..3}; do\n  docker compose -f docker-compose.production.yml "
                                        "restart web_$i\n  sleep 30\ndone")  # verbatim
    assert steps[3]["older_than_minutes"] == 5
    assert _kinds("financial-stronghold", "morning-health-check") == [
        ("check", "stack"), ("check", "web"), ("check", "host"), ("check", "stack"), ("query", "db")]


def test_financial_stronghold_scheduled_scripts_that_are_not_backups_keep_their_schedule_as_a_comment() -> None:
    text = _imported("financial-stronghold")[1]
    assert "    # schedule: '*/15 * * * *'  # the crontab line at financial-stronghold.md:659" in text
    assert "schedule" not in _data("financial-stronghold")["runbooks"]["log-analysis-for-security-events"]


def test_iacc_checks_with_the_scripts_expectations_and_its_nightly_mysql_backup() -> None:
    data = _data("iacc")
    app = {check["name"]: check for check in data["services"]["app"]["checks"]}
    assert app["http /api/health"] == {"type": "http-json", "name": "http /api/health",
                                       "url": "https://example.com/api/health", "fields": {"status": "healthy"}}
    assert app['prometheus: rate(http_requests_total{status=~"5.."}[1h])']["above"] == {"warning": 0.001,
                                                                                         "strict": True}
    assert data["services"]["db"]["backup"] == {"type": "mysql", "directory": "/srv/backups", "dsn_env": "DB_URL",
                                                "retention_days": 30, "schedule": "0 2 * * *"}
    assert data["services"]["db"]["target"]["labels"] == {"com.docker.compose.project": "app",
                                                          "com.docker.compose.service": "db"}
    assert _kinds("iacc", "restore-from-backup") == [("backup", "db"), ("restore", "db"), ("exec", "app"),
                                                     ("restart", "app")]
    assert _kinds("iacc", "p1-incident-response")[1:7] == [
        ("check", "stack"), ("check", "app"), ("check", "db"), ("restart", "app"), ("wait", None), ("check", "app")]


def test_iacc_secrets_stay_environment_names() -> None:
    """`mysql -p"$DATABASE_PASSWORD" -e …` is a step that connects with the catalog's DSN variable: the password's
    variable is in no recognised step (a manual step keeps the text as written)."""
    data = _data("iacc")
    recognised = [step for runbook in data["runbooks"].values() for step in runbook["steps"] if step["kind"] != "manual"]
    assert "DATABASE_PASSWORD" not in yaml.safe_dump(recognised) + yaml.safe_dump(data["services"])
    assert {step["dsn_env"] for step in recognised if step.get("engine") == "mysql" and step["service"] == "db"} == {
        "DB_URL"}


def test_ai_orchestrator_kubernetes_services_maintenance_and_database_work() -> None:
    data = _data("ai-orchestrator")
    assert data["services"]["api-gateway"]["target"] == {"type": "kubernetes", "namespace": "ai-orchestrator",
                                                         "deployment": "api-gateway"}
    assert data["services"]["api-gateway"]["maintenance"] == {
        "type": "configmap", "configmap": "api-config", "key": "maintenance_mode", "off_value": "false",
        "on_value": "true"}
    assert data["services"]["postgres"]["backup"] == {"type": "postgres", "directory": "/backups",
                                                      "dsn_env": "POSTGRES_URL", "retention_days": 30}
    assert data["services"]["config"]["backup"]["paths"] == ["/app/config", "/app/certificates"]
    assert _steps("ai-orchestrator", "during-maintenance")[:3] == [
        {"kind": "maintenance", "service": "api-gateway", "mode": "on"},
        {"name": "Update services one by one", "kind": "deploy", "service": "api-gateway", "image": "new-image:tag"},
        {"kind": "check", "service": "api-gateway", "checks": ["pods"]}]
    assert [(step["kind"], step.get("statement")) for step in
            _steps("ai-orchestrator", "weekly-database-maintenance-sunday-2-00-am")] == [
        ("sql", "ANALYZE"), ("sql", "REINDEX DATABASE orchestrator"),
        ("query", ("SELECT schemaname, tablename, pg_size_pretty(pg_total_relation_size(schemaname||'.'||tablename)) "
                   "as size FROM pg_tables WHERE schemaname = 'public' ORDER BY "
                   "pg_total_relation_size(schemaname||'.'||tablename) DESC")),
        ("sql", "VACUUM ANALYZE")]
    cleanup = _steps("ai-orchestrator", "monthly-database-cleanup")
    assert cleanup[2]["kind"] == "manual" and "WHERE workflow_id = ? AND id NOT IN" in cleanup[2]["instructions"]


def test_the_cli_writes_a_draft_that_check_config_accepts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    draft = tmp_path / "draft.yml"
    assert main(["import", str(RUNBOOKS / "gitte.md"), "-o", str(draft)]) == 0
    assert capsys.readouterr().err.startswith("gitte.md: 18 procedures with commands: ")
    assert main(["check-config", str(draft)]) == 0
    out = capsys.readouterr().out
    assert f"{draft}: OK — 8 services, " in out
    assert load_catalog(draft).runbooks["morning-health-check-09-00-utc"].steps[0].kind == "check"
