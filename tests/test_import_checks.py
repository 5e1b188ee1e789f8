"""`opsbot import`: commands that read health become the catalog's checks, with the limits the script compares them
with — one family per program, on small scripts written the ways teams write them (flags, quoting, pipes vary)."""

from __future__ import annotations

import pytest

from tests.imports import checks, kinds, script, steps


def test_curl_fail_becomes_an_http_check_of_the_service_the_url_reaches() -> None:
    _, data, catalog = script("""
        curl -fsS http://billing:8080/healthz
        curl --fail --silent "https://shop.example.com/status" > /dev/null
    """)
    # A public host names no service: it is the application's, the service the runbook names most (billing).
    assert checks(data, "billing") == [
        {"type": "http", "name": "http /healthz", "url": "http://billing:8080/healthz"},
        {"type": "http", "name": "http /status", "url": "https://shop.example.com/status"}]
    assert [check.label for check in catalog.services["billing"].checks] == ["http /healthz", "http /status"]
    assert kinds(data) == [("check", "billing"), ("check", "billing")]


def test_with_no_service_named_a_public_url_is_the_apps() -> None:
    _, data, _ = script("curl -sf https://shop.example.com/status")
    assert checks(data, "app")[0]["url"] == "https://shop.example.com/status"


def test_a_well_known_port_names_the_service_behind_localhost() -> None:
    _, data, _ = script("curl -f http://127.0.0.1:9200/_cluster/health\ncurl -s localhost:5601 || true")
    assert checks(data, "elasticsearch")[0]["url"] == "http://127.0.0.1:9200/_cluster/health"


def test_jq_compared_with_a_value_makes_an_http_json_check_expecting_it() -> None:
    _, data, catalog = script("""
        STATUS=$(curl -s https://api.example.com/health | jq -r '.checks.database')
        if [ "$STATUS" != "up" ]; then
          echo "CRITICAL: database check is $STATUS"
          exit 2
        fi
    """)
    [check] = checks(data, "app")
    assert check["type"] == "http-json"
    assert check["fields"] == {"checks.database": "up"}
    assert catalog.services["app"].checks[0].type == "http-json"


def test_a_prometheus_query_with_a_comparison_becomes_a_prometheus_check_with_that_limit() -> None:
    _, data, _ = script("""
        P95=$(curl -sG 'http://prom.internal:9090/api/v1/query?query=histogram_quantile(0.95,sum(rate(\
req_seconds_bucket{job="checkout"}[5m]))by(le))' | jq -r '.data.result[0].value[1]')
        if (( $(echo "$P95 > 1.5" | bc -l) )); then
            echo "WARNING: p95 is ${P95}s"
        fi
    """)
    [check] = checks(data, "checkout")  # the query's job names the service
    assert check["type"] == "prometheus"
    assert check["url"] == "http://prom.internal:9090/"
    assert check["query"].startswith("histogram_quantile(0.95,")
    assert check["above"] == {"warning": 1.5, "strict": True}


def test_a_prometheus_query_without_a_limit_is_proposed_commented_and_stays_a_manual_step() -> None:
    draft, data, _ = script("curl -s 'http://prometheus:9090/api/v1/query?query=up{job=\"api\"}'")
    assert "checks" not in data["services"]["api"]
    assert steps(data)[0]["kind"] == "manual"
    placed = draft.services[0].checks[0]
    assert not placed.complete and "limit" in placed.missing


@pytest.mark.parametrize("code", [
    "docker compose exec -T db pg_isready -U app",
    "docker exec db pg_isready -h localhost -p 5432",
    "pg_isready -h db -d app",
])
def test_pg_isready_is_a_postgres_check_with_its_url_in_the_environment(code: str) -> None:
    draft, data, _ = script(code)
    assert checks(data, "db") == [{"type": "postgres", "name": "pg_isready", "dsn_env": "DB_URL"}]
    assert any("DB_URL" in note for item in draft.mapped for note in item.found.decisions)


def test_a_counted_select_compared_with_a_number_is_an_sql_check() -> None:
    _, data, catalog = script("""
        STUCK=$(psql -h jobs-db -U ops -d jobs -tAc "SELECT count(*) FROM jobs WHERE state = 'running' \
AND started_at < now() - interval '1 hour'")
        if [ "$STUCK" -gt 5 ]; then echo "ALERT: $STUCK stuck jobs"; fi
    """)
    [check] = checks(data, "jobs-db")
    assert check["type"] == "sql" and check["above"] == {"critical": 5, "strict": True}
    assert check["query"].startswith("SELECT count(*) FROM jobs")
    assert steps(data) == [{"kind": "check", "service": "jobs-db", "checks": [check["name"]]}]
    assert catalog.services["jobs-db"].checks[0].type == "sql"


def test_a_select_nobody_compares_stays_a_query_step() -> None:
    _, data, _ = script("psql -h db -c 'SELECT state, count(*) FROM pg_stat_activity GROUP BY state'")
    assert steps(data)[0]["kind"] == "query"
    assert "checks" not in data["services"]["db"]


def test_redis_ping_and_a_list_length_limit_make_one_redis_check() -> None:
    _, data, _ = script("""
        redis-cli -h cache ping
        DEPTH=$(redis-cli -h cache -n 0 LLEN queue:emails)
        if [ "$DEPTH" -ge 1000 ]; then
          echo "queue backlog critical: $DEPTH"
        elif [ "$DEPTH" -ge 100 ]; then
          echo "warn"
        fi
    """)
    [check] = checks(data, "cache")
    assert check["type"] == "redis" and check["url_env"] == "CACHE_URL"
    assert check["lists"] == {"queue:emails": None}  # shown, never graded: the elif is a person's to read


def test_a_list_length_limit_with_the_scripts_words() -> None:
    _, data, _ = script("""
        LEN=$(docker exec redis redis-cli LLEN celery)
        [[ $LEN -gt 500 ]] && echo ok
        if [[ $LEN -gt 500 ]]; then echo "Warning: celery backlog $LEN"; fi
    """)
    assert checks(data, "redis")[0]["lists"] == {"celery": {"warning": 500, "strict": True}}


@pytest.mark.parametrize(("code", "paths", "limit"), [
    (("USED=$(df -P /var/lib/postgresql | awk 'NR==2 {print $5}' | tr -d '%')\n"
      "if [ $USED -ge 90 ]; then echo \"CRITICAL disk $USED%\"; fi"), ["/var/lib/postgresql"], {"critical": 90}),
    ("df -h | awk '$5+0 > 85 {print \"WARNING: \" $6 \" at \" $5}'", ["/"], {"warning": 85, "strict": True}),
    ("df -h / /data | awk '$5 > 85 { print \"WARNING \" $0 }'", ["/", "/data"], {"warning": 85, "strict": True}),
])
def test_df_is_a_disk_check_with_the_scripts_limit(code: str, paths: list[str], limit: object) -> None:
    _, data, _ = script(code)
    [check] = checks(data, "host")
    assert check["type"] == "disk" and check["paths"] == paths
    assert check.get("usage_percent") == limit


def test_free_with_a_comparison_is_a_memory_check_and_docker_stats_one_too() -> None:
    _, data, _ = script("""
        MEM=$(free -m | awk '/Mem:/ {printf "%d", $3/$2*100}')
        if [ "$MEM" -gt 90 ]; then echo "CRITICAL: memory ${MEM}%"; elif true; then :; fi
        if [ "$MEM" -gt 90 ]; then echo "CRITICAL: memory ${MEM}%"; fi
        docker stats --no-stream
    """)
    assert checks(data, "host") == [{"type": "memory", "name": "memory", "memory_percent": {"critical": 90,
                                                                                             "strict": True}}]


def test_compose_ps_and_counted_error_lines_are_containers_and_log_errors_checks() -> None:
    _, data, catalog = script("""
        docker compose -p shop ps
        ERRS=$(docker compose -p shop logs --since 2h api | grep -Ei "error|exception" | wc -l)
        if [ "$ERRS" -gt 20 ]; then echo "WARNING: $ERRS errors"; fi
    """)
    assert checks(data, "stack") == [{"type": "containers", "name": "containers", "project": "shop"}]
    assert data["services"]["stack"]["target"] == {"type": "docker",
                                                   "labels": {"com.docker.compose.project": "shop"}}
    [errors] = checks(data, "api")
    assert errors == {"type": "log-errors", "name": "/error|exception/ in logs", "pattern": "error|exception",
                      "window_hours": 2.0, "lines": {"warning": 20, "strict": True}}
    assert catalog.services["api"].target is not None  # log-errors reads the service's containers


def test_kubectl_get_pods_checks_each_deployment_the_runbook_names() -> None:
    _, data, _ = script("""
        kubectl -n payments rollout restart deployment/ledger
        kubectl get pods -n payments
        kubectl get pods -l app=gateway -n payments
    """)
    assert checks(data, "ledger") == [{"type": "kubernetes-pods", "name": "pods"}]
    assert data["services"]["gateway"]["target"] == {"type": "kubernetes", "namespace": "payments",
                                                     "deployment": "gateway"}
    # `get pods -n payments` gates on each deployment; the gateway's own line adds no second gate on it.
    assert kinds(data) == [("restart", "ledger"), ("check", "ledger"), ("check", "gateway")]


def test_mysqladmin_rabbitmqctl_and_memcached_stats_are_their_kinds() -> None:
    draft, data, _ = script("""
        docker compose exec -T mariadb mysqladmin ping
        docker compose exec -T broker rabbitmqctl list_queues name messages | grep orders
        echo stats | nc -w 2 cache01 11211
        rabbitmqctl -n rabbit@mq list_queues
    """)
    assert checks(data, "mariadb") == [{"type": "mysql", "name": "mysql", "dsn_env": "MARIADB_URL"}]
    assert checks(data, "broker")[0]["queues"] == [{"name": "orders"}]
    assert checks(data, "cache01") == [{"type": "memcached", "name": "memcached", "address": "cache01:11211"}]
    # On the host, rabbitmqctl talks to the runbook's RabbitMQ (broker); it names no queue, so its line stays a
    # person's while the check stays the one the first line made.
    assert steps(data)[-1] == {"kind": "manual", "instructions": "rabbitmqctl -n rabbit@mq list_queues"}
    assert [item.found.manual for item in draft.mapped][-1].startswith("a rabbitmq check needs the names of the queues")


def test_a_check_that_needs_a_value_the_script_lacks_is_proposed_commented_out() -> None:
    draft, data, _ = script("docker compose exec rabbitmq rabbitmqctl list_queues name messages consumers")
    [placed] = draft.services[0].checks
    assert not placed.complete and placed.missing.startswith("the names of the queues")
    assert "checks" not in data["services"]["rabbitmq"]
    # …while the command, run in its container, is a read-only diagnostic step.
    assert steps(data) == [{"kind": "exec", "service": "rabbitmq", "read_only": True,
                            "command": ["rabbitmqctl", "list_queues", "name", "messages", "consumers"]}]


def test_a_retry_loop_around_a_health_check_is_the_gate_s_attempts() -> None:
    _, data, _ = script("""
        for i in $(seq 1 20); do
          if curl -sf http://web:8000/ready >/dev/null; then break; fi
          sleep 3
        done
    """)
    assert steps(data) == [{"kind": "check", "service": "web", "checks": ["http /ready"], "attempts": 20,
                            "interval": 3}]


def test_an_outcome_test_without_exit_lets_the_run_carry_on() -> None:
    _, data, _ = script("""
        curl -f http://api:8080/health
        if [ $? -eq 0 ]; then echo "✅ API up"; else echo "❌ API down"; fi
        curl -f http://worker:8081/health || { echo "worker down"; exit 1; }
    """)
    assert steps(data)[0] == {"kind": "check", "service": "api", "checks": ["http /health"], "on_failure": "continue"}
