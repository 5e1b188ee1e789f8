"""`opsbot import`: commands that act become runbook steps in the text's order — restart, rollback, deploy, scale,
maintenance, sql, exec — with the script's variables as parameters or `*_env` names, and every change behind the
catalog's approval policy."""

from __future__ import annotations

import pytest

from bot.importing.draft import import_runbook, render, report
from tests.imports import imported, kinds, runbook, script, steps


def test_restarts_rollbacks_and_deploys_on_compose_docker_and_kubernetes() -> None:
    _, data, catalog = script("""
        docker compose -p shop restart api worker
        docker restart nginx
        kubectl rollout undo deployment/checkout --to-revision=7 -n shop
        kubectl -n shop set image deploy/checkout checkout=registry.example.com/checkout:2.8.1
        kubectl scale --replicas=4 deployment/checkout -n shop
        kubectl logs deploy/checkout -n shop --since=15m
    """)
    assert kinds(data) == [("restart", "api"), ("restart", "worker"), ("restart", "nginx"), ("rollback", "checkout"),
                           ("deploy", "checkout"), ("scale", "checkout"), ("collect-logs", "checkout")]
    assert steps(data)[3]["to"] == "7" and steps(data)[4]["image"] == "registry.example.com/checkout:2.8.1"
    assert steps(data)[6]["minutes"] == 15
    assert data["services"]["api"]["target"] == {"type": "docker", "labels": {
        "com.docker.compose.project": "shop", "com.docker.compose.service": "api"}}
    assert data["services"]["nginx"]["target"] == {"type": "docker", "container": "nginx"}
    assert data["services"]["checkout"]["target"] == {"type": "kubernetes", "namespace": "shop",
                                                      "deployment": "checkout"}
    assert catalog.runbooks["procedure"].approvals is None  # the catalog's policy: one approval


def test_compose_up_of_a_version_the_script_is_given_is_a_deploy_of_that_tag() -> None:
    _, data, _ = script("""
        TAG=${1:-latest}
        docker compose pull web
        docker compose up -d --no-deps web
    """)
    assert steps(data)[-1] == {"kind": "deploy", "service": "web", "image": "{{ params.tag }}"}
    assert data["runbooks"]["procedure"]["parameters"]["tag"]["type"] == "image_tag"
    _, data, _ = script("docker compose up -d db")
    assert steps(data) == [{"kind": "start", "service": "db"}]
    _, data, _ = script("docker-compose pull\ndocker-compose up -d api")  # new images, no tag: a tag to give
    assert steps(data) == [{"kind": "deploy", "service": "api", "image": "{{ params.tag }}"}]
    assert data["runbooks"]["procedure"]["parameters"]["tag"]["type"] == "image_tag"


def test_a_configmap_flag_is_the_services_maintenance_mode() -> None:
    _, data, catalog = imported(runbook(
        ("Deploy", "kubectl -n web rollout status deployment/storefront"),
        ("Maintenance on", "kubectl -n web patch configmap storefront-settings -p '{\"data\":{\"MAINTENANCE\":\"on\"}}'"),
        ("Maintenance off", "kubectl -n web patch cm storefront-settings --patch '{\"data\":{\"MAINTENANCE\":\"off\"}}'")))
    assert data["services"]["storefront"]["maintenance"] == {"type": "configmap", "configmap": "storefront-settings",
                                                             "key": "MAINTENANCE", "on_value": "on", "off_value": "off"}
    assert steps(data, "maintenance-on") == [{"kind": "maintenance", "service": "storefront", "mode": "on"}]
    assert catalog.runbooks["maintenance-off"].steps[0].kind == "maintenance"


def test_sql_through_psql_and_mysql_is_a_query_or_an_sql_step_on_its_database() -> None:
    _, data, _ = script("""
        docker compose exec -T db psql -U app -c "VACUUM (ANALYZE) orders"
        docker compose exec -T db psql -U app -c "SELECT relname, n_dead_tup FROM pg_stat_user_tables"
        docker compose exec -T db psql -U app -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
WHERE state = 'active' AND query_start < now() - interval '10 minutes'"
        mysql -h reports -u ro -p -e "SHOW PROCESSLIST"
    """)
    assert [step["kind"] for step in steps(data)] == ["sql", "query", "terminate-queries", "query"]
    assert steps(data)[2] == {"kind": "terminate-queries", "service": "db", "older_than_minutes": 10,
                              "dsn_env": "DB_URL"}
    assert steps(data)[3]["engine"] == "mysql" and steps(data)[3]["dsn_env"] == "REPORTS_URL"


def test_an_sql_block_becomes_steps_on_the_runbooks_database() -> None:
    text = runbook(("Health", "docker compose exec -T db pg_isready")) + (
        "## Cleanup\n```sql\n-- old sessions\nDELETE FROM sessions WHERE expires_at < now();\n"
        "SELECT count(*) FROM sessions;\nDELETE FROM events WHERE id = ?;\n```\n")
    _, data, _ = imported(text)
    assert [(step["kind"], step.get("statement")) for step in steps(data, "cleanup")[:2]] == [
        ("sql", "DELETE FROM sessions WHERE expires_at < now()"), ("query", "SELECT count(*) FROM sessions")]
    assert steps(data, "cleanup")[0]["service"] == "db"
    # A placeholder is a value a person fills in: the statement stays theirs, verbatim.
    assert steps(data, "cleanup")[2] == {"kind": "manual", "instructions": "DELETE FROM events WHERE id = ?;"}


def test_sql_typed_into_a_psql_session_becomes_steps_and_other_lines_stay_manual() -> None:
    _, data, _ = script("""
        kubectl exec -it postgres-0 -n db -- psql -U postgres app
        REINDEX TABLE orders;
        SELECT count(*) FROM orders;
        \\q
    """)
    assert [(step["kind"], step.get("statement") or step.get("instructions")) for step in steps(data)] == [
        ("sql", "REINDEX TABLE orders"), ("query", "SELECT count(*) FROM orders"),
        ("manual", "\\q")]


def test_an_interactive_shell_and_what_is_typed_into_it_are_one_manual_step_verbatim() -> None:
    _, data, _ = script("""
        docker exec -it api sh
        rm -rf /tmp/cache/*
        exit
    """)
    assert steps(data) == [{"kind": "manual", "instructions": "docker exec -it api sh\nrm -rf /tmp/cache/*"}]


def test_commands_in_containers_are_exec_steps_with_the_scripts_variables_as_parameters() -> None:
    _, data, catalog = script("""
        DAYS=30
        USER_ID="$1"
        docker compose exec -T app php artisan log:cleanup --days=30
        docker compose exec -T app php artisan users:purge "$USER_ID" "$DAYS"
        docker compose exec app cat /etc/app/config.yml
    """)
    assert steps(data) == [
        {"kind": "exec", "service": "app", "command": ["php", "artisan", "log:cleanup", "--days=30"]},
        {"kind": "exec", "service": "app", "command": ["php", "artisan", "users:purge", "{{ params.user_id }}",
                                                       "{{ params.days }}"]},
        {"kind": "exec", "service": "app", "command": ["cat", "/etc/app/config.yml"], "read_only": True}]
    parameters = data["runbooks"]["procedure"]["parameters"]
    assert parameters["days"] == {"type": "integer", "description": "the script's $DAYS", "default": 30, "max": 300}
    assert parameters["user_id"]["type"] == "string"
    assert catalog.runbooks["procedure"].parameters["days"].type == "integer"


def test_a_webhook_url_in_a_variable_is_an_http_step_reading_it_from_the_environment() -> None:
    _, data, _ = script("""
        SLACK_WEBHOOK=https://hooks.slack.com/services/T000/B000/XXXX
        docker compose restart api
        curl -X POST -H 'Content-Type: application/json' -d '{"text": "deploy done"}' "$SLACK_WEBHOOK"
    """)
    assert steps(data)[1] == {"kind": "http", "method": "POST", "url_env": "SLACK_WEBHOOK",
                              "json": {"text": "deploy done"}}
    assert "hooks.slack.com" not in str(data)


@pytest.mark.parametrize("code", [
    "PGPASSWORD=s3cr3t psql -h db -c 'SELECT 1'",
    "docker exec db mysql -uroot -ps3cr3t -e 'OPTIMIZE TABLE t'",
    "redis-cli -h cache -a s3cr3t ping",
    "DB_PASSWORD='s3cr3t'\nmysqldump -h db -p\"$DB_PASSWORD\" app > /backups/app.sql",
    "curl -u admin:s3cr3t -f http://grafana:3000/api/health",
])
def test_a_literal_secret_is_never_copied_into_the_draft_and_is_reported(code: str) -> None:
    draft = import_runbook(runbook(("Procedure", code)), "ops.md")
    assert "s3cr3t" not in render(draft) + report(draft)
    assert "a literal secret was replaced by $" in report(draft)


def test_no_step_ever_sets_approvals_and_the_policy_asks_one_person() -> None:
    _, data, catalog = script("docker compose restart api\ndocker compose exec -T db psql -c 'TRUNCATE cache'")
    assert all("approvals" not in runbook for runbook in data["runbooks"].values())
    assert data["approvals"]["environments"]["production"]["default"] == {"approvals": 1}
    assert catalog.approvals.environments["production"].default is not None
    assert catalog.approvals.environments["production"].default.approvals == 1
