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


@pytest.mark.parametrize("code", [
    "kubectl --context staging -n shop rollout restart deploy/api",
    "kubectl --kubeconfig /etc/kube/staging.conf -n shop scale deploy/api --replicas=2",
    "kubectl -s https://10.0.0.9:6443 -n shop get pods -l app=api",
    "KUBECONFIG=/etc/kube/staging.conf kubectl -n shop rollout restart deploy/api",
    "DOCKER_HOST=ssh://ops@db2 docker restart api",
    "DOCKER_CONTEXT=remote docker compose -p shop restart api",
    "kubectl --context staging -n shop exec deploy/api -- ./manage.py clearsessions",
])
def test_a_command_aimed_at_another_cluster_or_docker_host_is_manual_not_a_step_on_opsbots_target(code: str) -> None:
    draft, data, _ = script(f"docker compose -p shop restart web\n{code}")
    assert steps(data)[1] == {"kind": "manual", "instructions": code}
    assert not any(item.found.checks for item in draft.mapped)


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


@pytest.mark.parametrize("code", [
    'psql -h db -c "SELECT count(*) FROM jobs" -c "DELETE FROM jobs"',
    'psql -h db -c "SELECT 1" -f /opt/cleanup.sql',
    'psql -h db --command="SELECT 1" --file=/opt/cleanup.sql',
    'mysql -h db -e "SELECT 1" -e "DROP TABLE sessions"',
])
def test_a_client_given_several_statements_is_a_manual_step_not_the_first_one_alone(code: str) -> None:
    draft, data, _ = script(f"docker compose restart api\n{code}")
    assert steps(data)[1] == {"kind": "manual", "instructions": code}
    assert not any(item.found.checks for item in draft.mapped)
    assert "several statements" in (draft.mapped[1].manual or "")


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


def test_a_database_session_with_nothing_typed_into_it_is_a_manual_step_not_a_recognised_nothing() -> None:
    draft, data, _ = script("docker exec -it db psql -U app")
    assert steps(data) == [{"kind": "manual", "instructions": "docker exec -it db psql -U app"}]
    assert "manual (0 of 1 commands)" in report(draft)


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


@pytest.mark.parametrize("code", [
    "docker exec -e RAILS_ENV=production web bin/rake db:migrate",
    "docker exec -w /srv/app web ./bin/migrate",
    "docker compose exec -T --user root web chown -R app /srv/app/storage",
    "docker exec --env-file /etc/app.env web bin/rake cache:clear",
])
def test_a_command_run_with_its_own_environment_user_or_directory_is_not_an_exec_step_without_them(code: str) -> None:
    draft, data, _ = script(code)
    assert steps(data) == [{"kind": "manual", "instructions": code}]
    assert "an exec step runs it" in (draft.mapped[0].manual or "")


@pytest.mark.parametrize(("code", "read_only"), [
    ("docker exec web env", True),
    ("docker exec web env rm -rf /srv/app/tmp", False),
    ("docker exec cache redis-cli get session:1", True),
    ("docker exec cache redis-cli getdel session:1", False),
    ("docker exec cache redis-cli GETSET counter 0", False),
    ("docker exec cache redis-cli memory purge", False),
    ("docker exec cache redis-cli slowlog reset", False),
    ("docker exec web date", True),
    ("docker exec web date -s 2030-01-01", False),
    ("docker exec web hostname -f", True),
    ("docker exec web hostname other-name", False),
    ("docker exec web find /srv/app -name '*.log'", True),
    ("docker exec web find /srv/app -name '*.log' -exec rm {} +", False),
    ("docker exec web pip-audit --fix", False),
])
def test_only_a_command_that_changes_nothing_is_marked_read_only(code: str, read_only: bool) -> None:
    _, data, _ = script(code)
    [step] = steps(data)
    assert step["kind"] == "exec" and step.get("read_only", False) is read_only


def test_curl_sending_json_is_a_post_with_that_body_never_a_check() -> None:
    draft, data, _ = script("docker compose restart api\n"
                            "curl -f --json '{\"paused\": true}' https://ci.example.com/api/pause")
    assert steps(data)[1] == {"kind": "http", "method": "POST", "url": "https://ci.example.com/api/pause",
                              "json": {"paused": True}}
    assert not any(item.found.checks for item in draft.mapped)


@pytest.mark.parametrize("code", [
    "curl -F 'file=@dump.sql' https://uploads.example.com/",
    "curl -f --form-string 'note=nightly' https://uploads.example.com/",
    "curl --data-urlencode 'text=deploy done' https://hooks.example.com/notify",
    "curl -T dump.sql https://uploads.example.com/dump.sql",
    "curl --upload-file dump.sql https://uploads.example.com/dump.sql",
])
def test_curl_sending_a_form_a_file_or_encoded_data_stays_manual_never_a_get(code: str) -> None:
    draft, data, _ = script(f"docker compose restart api\n{code}")
    assert steps(data)[1] == {"kind": "manual", "instructions": code}
    assert not any(item.found.checks for item in draft.mapped)


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
    # a secret-named setting given on the command line, a secret-named header, a registry login
    "kubectl create secret generic db --from-literal=password=s3cr3t",
    "docker run --rm -e POSTGRES_PASSWORD=s3cr3t postgres:16 true",
    "docker exec -e PGPASSWORD=s3cr3t db psql -U app",
    "docker login -u ci -p s3cr3t registry.example.com",
    "curl -f -H 'X-Api-Key: s3cr3t' https://api.example.com/health",
    "curl -X POST -H 'PRIVATE-TOKEN: s3cr3t' https://gitlab.example.com/api/v4/projects/1/pipeline",
    "curl -f 'https://api.example.com/health?api_key=s3cr3t&verbose=1'",
    "docker compose restart api\ncurl -X POST 'https://hooks.example.com/x?token=s3cr3t'",
    # inside a condition or a loop, which stays a manual step
    "if ! mysqladmin -uroot -ps3cr3t ping; then\n  systemctl restart mysql\nfi",
    'for h in a b; do redis-cli -a s3cr3t -h "$h" ping; done',
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
