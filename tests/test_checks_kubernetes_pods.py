"""The kubernetes-pods check against the Kubernetes API double: ready pods, restarts in a window, failed and
crash-looping pods, metrics.k8s.io usage (served or not), an unreachable and a silent API server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from bot.catalog_loading import CatalogInvalid, parse_catalog
from bot.checks import CheckDeps, Status
from bot.checks.base import Observations
from bot.clock import ManualClock
from bot.executors.kubernetes import KubernetesTarget
from tests.checks import run as check_run
from tests.conftest import free_port
from tests.k8s_api import ApiError, K8sApi

TOKEN = "k8s-pods-s3cret-token"
LIMITS = {"limits": {"cpu": "500m", "memory": "256Mi"}}


@pytest.fixture
async def api() -> AsyncIterator[K8sApi]:
    double = K8sApi(token=TOKEN)
    await double.start()
    yield double
    await double.stop()


def target(url: str, **fields: object) -> KubernetesTarget:
    return KubernetesTarget(type="kubernetes", deployment="api", api_url=url, token_env="K8S_TOKEN", **fields)


def deps_for(http: aiohttp.ClientSession, url: str, observations: Observations | None = None) -> CheckDeps:
    return CheckDeps(http=http, environ={"K8S_TOKEN": TOKEN}, service="api", target=target(url),
                     observations=observations or Observations())


async def run(spec: dict, deps: CheckDeps) -> tuple[Status, str]:
    return await check_run({"type": "kubernetes-pods", **spec}, deps)


async def test_every_pod_running_and_ready_is_ok(api: K8sApi, http: aiohttp.ClientSession) -> None:
    api.add_deployment("api", replicas=3)
    assert await run({}, deps_for(http, api.url)) == (Status.OK, "3 of 3 pods ready")


async def test_a_crash_looping_pod_below_the_deployments_replicas_is_critical(
        api: K8sApi, http: aiohttp.ClientSession) -> None:
    api.add_deployment("api", replicas=3)
    crashing = api.pods("api")[1]["metadata"]["name"]
    api.crash_loop(crashing, restarts=4, at=api.now() - timedelta(minutes=5))
    status, reason = await run({}, deps_for(http, api.url))
    assert status is Status.CRITICAL
    assert f"{crashing} running but not ready (app: CrashLoopBackOff)" in reason
    assert f"{crashing}/app: 4 restarts in total, the last 5 min ago (1 within 60 min; limit 1)" in reason
    assert "2 of 3 pods ready (minimum 3)" in reason


async def test_a_failed_pod_is_critical(api: K8sApi, http: aiohttp.ClientSession) -> None:
    api.add_deployment("api", replicas=2)
    failed = api.pods("api")[0]["metadata"]["name"]
    api.fail_pod(failed, reason="OOMKilled", exit_code=137)
    status, reason = await run({}, deps_for(http, api.url))
    assert status is Status.CRITICAL
    assert reason.startswith(f"{failed} failed (app: OOMKilled (code 137))")
    assert "1 of 2 pods ready (minimum 2)" in reason


async def test_a_pod_not_ready_above_min_ready_only_warns(api: K8sApi, http: aiohttp.ClientSession) -> None:
    api.add_deployment("api", replicas=3)
    failed = api.pods("api")[2]["metadata"]["name"]
    api.fail_pod(failed)
    status, reason = await run({"min_ready": 2}, deps_for(http, api.url))
    assert (status, reason) == (Status.WARNING, f"{failed} failed (app: Error (code 1)); 2 of 3 pods ready")


async def test_on_a_first_run_a_restart_inside_the_window_counts_once(api: K8sApi, http: aiohttp.ClientSession) -> None:
    api.add_deployment("api", replicas=2)
    first, second = (pod["metadata"]["name"] for pod in api.pods("api"))
    # 40 restarts over the pod's life, the last 10 minutes ago: when the other 39 were, the count does not say.
    api.restart_container(first, restarts=40, at=api.now() - timedelta(minutes=10))
    api.restart_container(second, restarts=7, at=api.now() - timedelta(hours=3))  # outside the 60 min window
    status, reason = await run({}, deps_for(http, api.url))
    assert (status, reason) == (Status.WARNING, (f"{first}/app: 40 restarts in total, the last 10 min ago "
                                                "(1 within 60 min; limit 1); 2 of 2 pods ready"))
    status, reason = await run({"window_minutes": 240}, deps_for(http, api.url))
    assert status is Status.WARNING and reason.startswith(
        f"{first}/app: 40 restarts in total, the last 10 min ago, {second}/app: 7 restarts in total, the last 3 h ago "
        "(2 within 240 min; limit 1)")


async def test_later_runs_grade_restarts_since_an_earlier_run(api: K8sApi, http: aiohttp.ClientSession) -> None:
    clock = ManualClock(datetime(2026, 11, 24, 1, 0, tzinfo=UTC))
    api.now = clock.now
    api.add_deployment("api", replicas=2)
    first, _ = (pod["metadata"]["name"] for pod in api.pods("api"))
    api.restart_container(first, restarts=40, at=clock.now() - timedelta(hours=5))
    deps = replace(deps_for(http, api.url), clock=clock)
    assert await run({}, deps) == (Status.OK, "2 of 2 pods ready")  # the baseline: 40
    clock.advance(12 * 60)
    api.restart_container(first, restarts=3, at=clock.now() - timedelta(minutes=1))
    assert await run({}, deps) == (Status.CRITICAL, (f"{first}/app: 3 restarts in the last 12 min (limit 3); "
                                                     "2 of 2 pods ready"))
    # Half a minute later nothing is new; the baseline just recorded is too young to move, so the restart below
    # is counted over the 90 s since it.
    clock.advance(30)
    assert await run({}, deps) == (Status.OK, "2 of 2 pods ready")
    clock.advance(60)
    api.restart_container(first, restarts=1, at=clock.now())
    assert await run({}, deps) == (Status.WARNING, (f"{first}/app: 1 restart in the last 90 s (limit 1); "
                                                    "2 of 2 pods ready"))
    # Another service's check of the same pods has its own baseline.
    other = await run({}, replace(deps, service="other"))
    assert other == (Status.WARNING, (f"{first}/app: 44 restarts in total, the last 0 s ago (1 within 60 min; "
                                      "limit 1); 2 of 2 pods ready"))


async def test_a_selector_picks_pods_and_min_ready_defaults_to_one(api: K8sApi, http: aiohttp.ClientSession) -> None:
    api.add_deployment("api", replicas=2)
    api.add_deployment("postgres", replicas=1, labels={"app": "postgres", "tier": "db"})
    assert await run({"selector": "tier=db"}, deps_for(http, api.url)) == (Status.OK, "1 of 1 pod ready")
    only = api.pods("postgres")[0]["metadata"]["name"]
    api.crash_loop(only)
    status, reason = await run({"selector": "tier=db"}, deps_for(http, api.url))
    assert status is Status.CRITICAL and "0 of 1 pod ready (minimum 1)" in reason
    nothing = await run({"selector": "app=nothing"}, deps_for(http, api.url))
    assert nothing == (Status.CRITICAL, "0 of 0 pods ready (minimum 1)")


async def test_usage_against_limits_is_graded(api: K8sApi, http: aiohttp.ClientSession) -> None:
    api.add_deployment("api", replicas=2, resources=LIMITS)
    busy, idle = (pod["metadata"]["name"] for pod in api.pods("api"))
    api.set_pod_usage(busy, cpu="450m", memory="100Mi")
    api.set_pod_usage(idle, cpu="10m", memory="250Mi")
    spec = {"cpu_percent": {"warning": 80, "critical": 95}, "memory_percent": {"warning": 80, "critical": 95}}
    status, reason = await run(spec, deps_for(http, api.url))
    assert status is Status.CRITICAL
    assert f"{idle} memory at 98 % of its limit (limit 95 %)" in reason
    assert f"{busy} CPU at 90 % of its limit (limit 80 %)" in reason
    assert reason.endswith("2 of 2 pods ready; CPU at most 90 % of limits; memory at most 98 % of limits")
    api.set_pod_usage(busy, cpu="100m", memory="64Mi")
    api.set_pod_usage(idle, cpu="100m", memory="64Mi")
    assert await run(spec, deps_for(http, api.url)) == (
        Status.OK, "2 of 2 pods ready; CPU at most 20 % of limits; memory at most 25 % of limits")


async def test_metrics_not_served_is_noted_not_failed(api: K8sApi, http: aiohttp.ClientSession) -> None:
    api.add_deployment("api", replicas=1, resources=LIMITS)
    api.metrics_served = False
    assert await run({"cpu_percent": {"warning": 80, "critical": 95}}, deps_for(http, api.url)) == (
        Status.OK, "1 of 1 pod ready; metrics.k8s.io unavailable (404): CPU and memory not judged")


@pytest.mark.parametrize(("code", "reason"), [(503, "ServiceUnavailable"), (403, "Forbidden")])
async def test_metrics_server_down_or_forbidden_is_noted_not_failed(
        api: K8sApi, http: aiohttp.ClientSession, code: int, reason: str) -> None:
    api.add_deployment("api", replicas=1, resources=LIMITS)
    api.add_node("node-1")

    def refuse(method: str, path: str) -> None:
        if path.startswith("/apis/metrics.k8s.io/"):
            raise ApiError(code, reason, "the server is currently unable to handle the request")

    api.before_request = refuse
    spec = {"cpu_percent": {"warning": 80, "critical": 95}, "nodes": {"memory_percent": {"warning": 80, "critical": 95}}}
    assert await run(spec, deps_for(http, api.url)) == (
        Status.OK, (f"1 of 1 pod ready; metrics.k8s.io unavailable ({code}): CPU and memory not judged; "
                    f"metrics.k8s.io unavailable ({code}): node usage not judged"))


async def test_node_usage_against_allocatable_is_graded(api: K8sApi, http: aiohttp.ClientSession) -> None:
    api.add_deployment("api", replicas=1)
    api.add_node("node-1", cpu="4", memory="16Gi")
    api.add_node("node-2", cpu="2", memory="8Gi")
    api.set_node_usage("node-1", cpu="1500m", memory="6Gi")
    api.set_node_usage("node-2", cpu="1700m", memory="7800Mi")
    spec = {"nodes": {"cpu_percent": {"warning": 80, "critical": 95}, "memory_percent": {"warning": 80, "critical": 95}}}
    assert await run(spec, deps_for(http, api.url)) == (Status.CRITICAL, (
        "node node-2 memory at 95 % of allocatable (limit 95 %); node node-2 CPU at 85 % of allocatable (limit 80 %); "
        "1 of 1 pod ready; nodes: CPU at most 85 %, memory at most 95 % of allocatable"))
    api.set_node_usage("node-2", cpu="100m", memory="1Gi")
    assert await run(spec, deps_for(http, api.url)) == (
        Status.OK, "1 of 1 pod ready; nodes: CPU at most 38 %, memory at most 38 % of allocatable")

    def forbid(method: str, path: str) -> None:
        if path == "/api/v1/nodes":
            raise ApiError(403, "Forbidden", 'nodes is forbidden: User "opsbot" cannot list resource "nodes"')

    api.before_request = forbid
    assert await run(spec, deps_for(http, api.url)) == (
        Status.OK, "1 of 1 pod ready; nodes unavailable (403): node usage not judged")


async def test_pods_of_no_deployment_are_checked_with_a_selector_and_the_checks_own_api(
        api: K8sApi, http: aiohttp.ClientSession) -> None:
    api.add_deployment("postgres", replicas=1, labels={"app": "postgres"}, namespace="data")  # as a StatefulSet's
    spec = {"selector": "app=postgres", "namespace": "data", "api_url": api.url, "token_env": "K8S_TOKEN"}
    deps = CheckDeps(http=http, environ={"K8S_TOKEN": TOKEN}, service="db", target=None)
    assert await run(spec, deps) == (Status.OK, "1 of 1 pod ready")
    assert await run({**spec, "namespace": "default"}, deps) == (Status.CRITICAL, "0 of 0 pods ready (minimum 1)")
    nowhere = await run({"selector": "app=postgres"}, CheckDeps(http=http, environ={"KUBECONFIG": "/nonexistent"},
                                                                service="db"))
    assert nowhere[0] is Status.CRITICAL and "No Kubernetes API to talk to" in nowhere[1], nowhere


async def test_pods_without_limits_are_noted(api: K8sApi, http: aiohttp.ClientSession) -> None:
    api.add_deployment("api", replicas=1)
    assert await run({"memory_percent": {"warning": 80, "critical": 95}}, deps_for(http, api.url)) == (
        Status.OK, "1 of 1 pod ready; no memory limits (or no metrics) to compare with")


async def test_a_missing_deployment_is_critical(api: K8sApi, http: aiohttp.ClientSession) -> None:
    status, reason = await run({}, deps_for(http, api.url))
    assert (status, reason) == (Status.CRITICAL, f"There is no deployment default/api in the cluster at {api.url}.")


async def test_an_unreachable_api_server_is_critical(http: aiohttp.ClientSession) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    status, reason = await run({}, deps_for(http, url))
    assert status is Status.CRITICAL
    assert reason.startswith(f"read deployment default/api: cannot reach the Kubernetes API at {url}")
    assert TOKEN not in reason


async def test_an_api_server_that_never_answers_times_out(http: aiohttp.ClientSession) -> None:
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accepted, never answered

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert await run({"timeout": 0.3}, deps_for(http, f"http://127.0.0.1:{port}")) == (
            Status.ERROR, "timed out after 0.3 s")
    finally:
        for writer in held:  # let the client's worker thread see the connection end rather than wait 30 s
            writer.close()
        server.close()


async def test_the_doubles_metrics_endpoints_answer_as_metrics_server(api: K8sApi, http: aiohttp.ClientSession) -> None:
    api.add_deployment("api", replicas=1)
    api.add_node("node-1", cpu="4", memory="16Gi")
    api.set_node_usage("node-1", cpu="1500m", memory="6Gi")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with http.get(f"{api.url}/apis/metrics.k8s.io/v1beta1/nodes", headers=headers) as response:
        nodes = await response.json()
    assert nodes["kind"] == "NodeMetricsList" and nodes["items"][0]["usage"] == {"cpu": "1500m", "memory": "6Gi"}
    async with http.get(f"{api.url}/api/v1/nodes", headers=headers) as response:
        assert (await response.json())["items"][0]["status"]["allocatable"]["memory"] == "16Gi"
    api.metrics_served = False
    async with http.get(f"{api.url}/apis/metrics.k8s.io/v1beta1/nodes/node-1", headers=headers) as response:
        assert response.status == 404


CATALOG = """
services:
  api:
    environment: prod
{target}    checks:
      - {check}
"""
K8S_TARGET = "    target: {type: kubernetes, deployment: api, api_url: 'https://10.0.0.1:6443'}\n"


@pytest.mark.parametrize(("target", "check", "message"), [
    ("", "{type: kubernetes-pods}", ("kubernetes-pods needs the service's `target:` to be a kubernetes deployment, "
                                     "or a `selector:`")),
    ("", "{type: kubernetes-pods, selector: app=pg, api_url: 'ftp://k8s'}",
     "api_url: must be an http(s) URL such as https://10.0.0.1:6443"),
    ("", "{type: kubernetes-pods, selector: app=pg, api_url: 'https://u:p@k8s'}", "must not contain credentials"),
    ("", "{type: kubernetes-pods, selector: app=pg, namespace: Not_A_Name}", "namespace: String should match"),
    ("", "{type: kubernetes-pods, selector: app=pg, token_env: 'no-env'}", "token_env: String should match"),
    (K8S_TARGET, "{type: kubernetes-pods, selector: app=pg, namespace: db}",
     "namespace: the service's kubernetes target says where its pods are"),
    (K8S_TARGET, "{type: kubernetes-pods, cpu_percent: {warning: 80, critical: 150}}",
     "critical (150) is a percentage: it must not be above 100"),
    (K8S_TARGET, "{type: kubernetes-pods, nodes: {}}", "give `cpu_percent`, `memory_percent` or both"),
    (K8S_TARGET, "{type: kubernetes-pods, nodes: {memory_percent: {warning: 101, critical: 101}}}",
     "is a percentage"),
    ("    target: {type: docker, container: api}\n", "{type: kubernetes-pods}", "to be a kubernetes deployment"),
    (K8S_TARGET, "{type: kubernetes-pods, restarts: {warning: 5, critical: 2}}", "must not be above critical"),
    (K8S_TARGET, "{type: kubernetes-pods, min_ready: -1}", "min_ready: must be >= 0"),
    (K8S_TARGET, "{type: kubernetes-pods, selector: 'app in (a, b)'}", "is not in the expected form"),
    (K8S_TARGET, "{type: kubernetes-pods, cpu: 80}", "cpu: unknown key; did you mean `cpu_percent`?"),
])
def test_catalog_refuses_bad_kubernetes_pods_checks(target: str, check: str, message: str) -> None:
    with pytest.raises(CatalogInvalid) as refused:
        parse_catalog(CATALOG.format(target=target, check=check))
    assert message in str(refused.value) and "services.api.checks[0]" in str(refused.value)


def test_catalog_takes_a_kubernetes_pods_check() -> None:
    catalog = parse_catalog(CATALOG.format(target=K8S_TARGET, check="{type: kubernetes-pods, min_ready: 2}"))
    assert catalog.services["api"].checks[0].label == "pods"


def test_catalog_takes_a_selector_check_for_a_service_without_a_kubernetes_target() -> None:
    check = ("{type: kubernetes-pods, selector: app=postgres, namespace: data, api_url: 'https://10.0.0.1:6443/', "
             "token_env: K8S_TOKEN}")
    [spec] = parse_catalog(CATALOG.format(target="", check=check)).services["api"].checks
    assert spec.label == "pods app=postgres" and spec.secret_envs() == ["K8S_TOKEN"]
    assert spec.own_target().api_url == "https://10.0.0.1:6443" and spec.own_target().namespace == "data"
