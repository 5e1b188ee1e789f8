"""The Kubernetes executor through the real `kubernetes` client, against the API double in tests/k8s_api.py.

Not tested here: the in-cluster config when it is present (that needs a pod's service-account files).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.config.incluster_config import SERVICE_TOKEN_FILENAME
from pydantic import ValidationError

from bot.clock import SystemClock
from bot.executors.base import ExecutorError, RecordingProgress, TargetNotFound
from bot.executors.kubernetes import RESTARTED_AT, KubernetesTarget, KubernetesWorkload
from tests.k8s_api import HASH_LABEL, HISTORY, REVISION, ApiError, K8sApi

TOKEN = "k8s-s3cret-bearer-token"
V1, V2, V3 = (f"registry.example/api:{tag}" for tag in ("1.0", "2.0", "3.0"))
Make = Callable[..., KubernetesWorkload]


@pytest.fixture
async def api() -> AsyncIterator[K8sApi]:
    double = K8sApi(token=TOKEN)
    await double.start()
    yield double
    await double.stop()


@pytest.fixture
async def make(api: K8sApi) -> AsyncIterator[Make]:
    """Builds workloads on the double (token from K8S_TOKEN, fast polling) and closes them afterwards."""
    made: list[KubernetesWorkload] = []

    def build(deployment: str = "api", environ: dict[str, str] | None = None, **fields: Any) -> KubernetesWorkload:
        fields = {"api_url": api.url, "token_env": "K8S_TOKEN", "poll_interval": 0.01, "rollout_timeout": 5, **fields}
        target = KubernetesTarget(type="kubernetes", deployment=deployment, **fields)
        workload = KubernetesWorkload(target, {"K8S_TOKEN": TOKEN} if environ is None else environ, SystemClock())
        made.append(workload)
        return workload

    yield build
    for workload in made:
        await workload.close()


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(300):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the double never got there")


def revisions_by_image(api: K8sApi) -> dict[str, str]:
    return {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs["metadata"]["annotations"][REVISION]
            for rs in api.replicasets()}


async def test_restart_annotates_the_template_and_waits_for_the_new_revision(api: K8sApi, make: Make) -> None:
    uid = api.add_deployment("api")["metadata"]["uid"]
    workload, progress = make(), RecordingProgress()

    summary = await workload.restart(progress)

    [patch] = api.writes()
    assert (patch.method, patch.path) == ("PATCH", "/apis/apps/v1/namespaces/default/deployments/api")
    assert patch.content_type == "application/strategic-merge-patch+json"
    deployment = api.deployment("api")
    stamp = datetime.strptime(deployment["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT],
                              "%Y-%m-%dT%H:%M:%S%z")
    assert abs(datetime.now(timezone.utc) - stamp) < timedelta(minutes=1)
    old, new = api.replicasets()
    assert [old["metadata"]["annotations"][REVISION], new["metadata"]["annotations"][REVISION]] == ["1", "2"]
    assert new["metadata"]["name"] == f"api-{new['metadata']['labels'][HASH_LABEL]}"
    assert new["metadata"]["ownerReferences"][0]["uid"] == uid
    assert deployment["metadata"]["annotations"][REVISION] == "2"
    assert deployment["metadata"]["generation"] == deployment["status"]["observedGeneration"] == 2
    assert deployment["status"]["availableReplicas"] == deployment["status"]["updatedReplicas"] == 3
    assert [(s.title, s.state) for s in progress.steps] == [(t, "succeeded") for t in workload.restart_plan()]
    assert summary.startswith("Restarted deployment default/api: 3 replicas updated and available in")


async def test_restart_returns_only_once_the_rollout_has_finished(api: K8sApi, make: Make) -> None:
    api.add_deployment("api")
    api.rollouts = "stuck"
    progress = RecordingProgress()
    restart = asyncio.create_task(make().restart(progress))

    await until(lambda: api.deployment("api")["status"]["observedGeneration"] == 2)
    await asyncio.sleep(0.1)
    assert not restart.done()
    assert (progress.steps[-1].title.startswith("Wait for the rollout"), progress.steps[-1].state) == (True, "running")

    api.finish_rollout("api")
    assert "3 replicas updated and available" in await asyncio.wait_for(restart, 2)


async def test_restart_times_out_when_the_new_pods_never_become_available(api: K8sApi, make: Make) -> None:
    api.add_deployment("api")
    api.rollouts = "stuck"
    progress = RecordingProgress()

    with pytest.raises(ExecutorError) as failed:
        await make(rollout_timeout=0.3).restart(progress)

    assert str(failed.value) == "The rollout of deployment default/api did not finish within 0.3 s."
    assert failed.value.state == ("deployment default/api: 1 of 3 replicas updated, 3 available, 3 old still running; "
                                  "the rollout is still in progress")
    assert [s.state for s in progress.steps] == ["succeeded", "failed"]


async def test_restart_stops_waiting_when_the_progress_deadline_is_exceeded(api: K8sApi, make: Make) -> None:
    api.add_deployment("api")
    api.rollouts = "stuck"
    restart = asyncio.create_task(make(rollout_timeout=60).restart(RecordingProgress()))
    await until(lambda: api.deployment("api")["status"]["observedGeneration"] == 2)

    api.fail_rollout("api")

    with pytest.raises(ExecutorError, match="exceeded its progress deadline") as failed:
        await asyncio.wait_for(restart, 2)
    assert "1 of 3 replicas updated" in failed.value.state


async def test_restart_refuses_a_paused_deployment(api: K8sApi, make: Make) -> None:
    api.add_deployment("api", paused=True)

    with pytest.raises(ExecutorError, match="it is paused. Resume it first") as refused:
        await make().restart(RecordingProgress())

    assert refused.value.state == "nothing was changed"
    assert api.writes() == []


async def test_rollback_to_the_previous_revision_revives_its_replicaset(api: K8sApi, make: Make) -> None:
    api.add_deployment("api", image=V1)
    api.set_image("api", V2)
    first = api.replicasets()[0]["metadata"]["name"]
    workload, progress = make(), RecordingProgress()

    summary = await workload.rollback(None, progress)

    [patch] = api.writes()
    assert patch.content_type == "application/json-patch+json"
    template = api.deployment("api")["spec"]["template"]
    assert template["spec"]["containers"][0]["image"] == V1
    assert HASH_LABEL not in template["metadata"]["labels"]
    # No new ReplicaSet: revision 1's comes back as revision 3, as the deployment controller does it.
    revived = next(rs for rs in api.replicasets() if rs["metadata"]["name"] == first)
    assert (revived["metadata"]["annotations"][REVISION], revived["metadata"]["annotations"][HISTORY]) == ("3", "1")
    assert revisions_by_image(api) == {V1: "3", V2: "2"}
    assert api.deployment("api")["metadata"]["annotations"][REVISION] == "3"
    assert [(r.id, r.image, r.current) for r in await workload.revisions()] == [("3", V1, True), ("2", V2, False)]
    assert [(s.title, s.state) for s in progress.steps] == [(t, "succeeded") for t in workload.rollback_plan(None)]
    assert progress.steps[0].detail == f"revision 1 ({V1})"
    assert summary.startswith(f"Rolled deployment default/api back from revision 2 to revision 1 "
                              f"({V1}, now revision 3): 3 replicas available in")


async def test_rollback_to_a_named_revision(api: K8sApi, make: Make) -> None:
    api.add_deployment("api", image=V1)
    api.set_image("api", V2)
    api.set_image("api", V3)

    await make().rollback("1", RecordingProgress())

    assert api.deployment("api")["spec"]["template"]["spec"]["containers"][0]["image"] == V1
    assert revisions_by_image(api) == {V1: "4", V2: "2", V3: "3"}


async def test_rollback_to_an_unknown_revision_names_the_known_ones(api: K8sApi, make: Make) -> None:
    api.add_deployment("api", image=V1)
    api.set_image("api", V2)

    with pytest.raises(ExecutorError) as refused:
        await make().rollback("7", RecordingProgress())

    assert str(refused.value) == "deployment default/api has no revision 7. Revisions: 2, 1."
    assert refused.value.state == "unchanged: deployment default/api is still at revision 2"
    assert api.writes() == []


async def test_rollback_to_the_current_revision_is_refused(api: K8sApi, make: Make) -> None:
    api.add_deployment("api", image=V1)
    api.set_image("api", V2)

    with pytest.raises(ExecutorError, match="is already at revision 2; name an earlier one"):
        await make().rollback("2", RecordingProgress())
    assert api.writes() == []


async def test_rollback_without_an_earlier_revision_is_refused(api: K8sApi, make: Make) -> None:
    api.add_deployment("api")

    with pytest.raises(ExecutorError, match="has no revision before 1 to roll back to. Revisions: 1."):
        await make().rollback(None, RecordingProgress())
    assert api.writes() == []


@pytest.mark.parametrize(("error", "message", "state"), [
    (ApiError(403, "Forbidden", 'deployments.apps "api" is forbidden: User "opsbot" cannot patch resource'),
     'not allowed (403 Forbidden): deployments.apps "api" is forbidden', "nothing was changed"),
    (ApiError(500, "InternalError", "etcdserver: request timed out"),
     "the Kubernetes API answered 500 Internal Server Error: etcdserver: request timed out",
     "unknown: deployment default/api may have been changed; look at it before trying again"),
])
async def test_a_failed_patch_says_whether_anything_changed(api: K8sApi, make: Make, error: ApiError, message: str,
                                                            state: str) -> None:
    api.add_deployment("api")

    def refuse_patches(method: str, _: str) -> None:
        if method == "PATCH":
            raise error

    api.before_request = refuse_patches
    with pytest.raises(ExecutorError) as failed:
        await make().restart(RecordingProgress())

    assert str(failed.value).startswith(f"Could not restart deployment default/api: {message}")
    assert failed.value.state == state


@pytest.mark.parametrize("action", ["restart", "rollback", "revisions"])
async def test_a_missing_deployment_is_target_not_found(api: K8sApi, make: Make, action: str) -> None:
    workload = make("gone")
    calls = {"restart": lambda: workload.restart(RecordingProgress()),
             "rollback": lambda: workload.rollback(None, RecordingProgress()), "revisions": workload.revisions}

    with pytest.raises(TargetNotFound, match=f"There is no deployment default/gone in the cluster at {api.url}"):
        await calls[action]()
    assert api.writes() == []


async def test_revisions_lists_newest_first_with_the_named_containers_image(api: K8sApi, make: Make) -> None:
    api.add_deployment("api", image=V1, container="web")
    api.set_image("api", V2)
    # The canary's ReplicaSets match the selector `app=api` too, but another deployment controls them.
    api.add_deployment("api-canary", image=V3, labels={"app": "api", "track": "canary"})

    listed = await make(container="web").revisions()

    assert [(r.id, r.image, r.current) for r in listed] == [("2", V2, True), ("1", V1, False)]
    assert listed[0].created_at is not None and listed[1].created_at is not None
    assert listed[0].created_at > listed[1].created_at
    assert [r.image for r in await make(container="sidecar").revisions()] == ["(no container sidecar)"] * 2


async def test_the_bearer_token_is_sent_and_never_shown(api: K8sApi, make: Make) -> None:
    api.add_deployment("api")
    await make().restart(RecordingProgress())
    assert {r.authorization for r in api.requests} == {f"Bearer {TOKEN}"}

    api.token = "a-different-token"
    with pytest.raises(ExecutorError) as refused:
        await make().revisions()
    assert "refused the credentials (401 Unauthorized); check the token in K8S_TOKEN" in str(refused.value)

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{closed.getsockname()[1]}"
    with pytest.raises(ExecutorError, match=f"cannot reach the Kubernetes API at {nowhere}") as unreachable:
        await make(api_url=nowhere).restart(RecordingProgress())
    for error in (refused.value, unreachable.value):
        assert TOKEN not in str(error) and TOKEN not in error.state


async def test_a_missing_token_variable_is_named_and_nothing_is_sent(api: K8sApi, make: Make) -> None:
    api.add_deployment("api")

    with pytest.raises(ExecutorError, match="environment variable K8S_TOKEN is not set"):
        await make(environ={}).restart(RecordingProgress())
    assert api.requests == []


async def test_without_api_url_the_kubeconfig_says_where_and_who(api: K8sApi, make: Make, tmp_path: Path) -> None:
    api.add_deployment("api")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "double",
        "clusters": [{"name": "double", "cluster": {"server": api.url}}],
        "users": [{"name": "opsbot", "user": {"token": TOKEN}}],
        "contexts": [{"name": "double", "context": {"cluster": "double", "user": "opsbot"}}],
    }))

    listed = await make(api_url=None, token_env=None, environ={"KUBECONFIG": str(kubeconfig)}).revisions()

    assert [r.id for r in listed] == ["1"]
    assert {r.authorization for r in api.requests} == {f"Bearer {TOKEN}"}


@pytest.mark.skipif(os.path.exists(SERVICE_TOKEN_FILENAME), reason="running inside a pod")
@pytest.mark.parametrize("environ", [{"KUBECONFIG": "/nonexistent/kubeconfig"},
                                     {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}])
async def test_without_any_api_to_talk_to_the_error_says_what_to_set(make: Make, environ: dict[str, str]) -> None:
    with pytest.raises(ExecutorError, match="No Kubernetes API to talk to for deployment default/api: .* Set api_url"):
        await make(api_url=None, token_env=None, environ=environ).revisions()


async def test_plans_touch_nothing(api: K8sApi, make: Make) -> None:
    api.add_deployment("api")
    workload = make()

    assert workload.describe() == "Kubernetes deployment default/api"
    assert workload.restart_plan() == ["Restart deployment default/api", "Wait for the rollout to finish (up to 5 s)"]
    assert workload.rollback_plan(None)[0] == "Pick the revision to roll back to (the previous one)"
    assert workload.rollback_plan("3")[0] == "Pick the revision to roll back to (revision 3)"
    with pytest.raises(ExecutorError, match="'v1.2' is not a revision number"):
        workload.rollback_plan("v1.2")
    assert api.requests == []


@pytest.mark.parametrize("fields", [
    {"deployment": "API_server"},
    {"deployment": "api", "namespace": "Prod"},
    {"deployment": "api", "api_url": "https://admin:hunter2@10.0.0.1:6443"},
    {"deployment": "api", "api_url": "10.0.0.1:6443"},
    {"deployment": "api", "token_env": "not a name"},
    {"deployment": "api", "rollout_timeout": 0},
    {"deployment": "api", "token": "inline-secret"},
])
def test_the_target_rejects_invalid_settings(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        KubernetesTarget(type="kubernetes", **fields)
