"""The Kubernetes executor through the real `kubernetes` client, against the API double in tests/k8s_api.py.

Not tested here: the in-cluster config when it is present (that needs a pod's service-account files).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient, Configuration, CoreV1Api
from kubernetes.client.exceptions import ApiException
from kubernetes.config.incluster_config import SERVICE_TOKEN_FILENAME
from pydantic import ValidationError

from bot.clock import SystemClock
from bot.executors.base import Effect, ExecutorError, RecordingProgress, TargetNotFound
from bot.executors.kubernetes import RESTARTED_AT, KubernetesTarget, KubernetesWorkload
from tests.k8s_api import HASH_LABEL, HISTORY, REVISION, ApiError, K8sApi

TOKEN = "k8s-s3cret-bearer-token"
V1, V2, V3, BROKEN = (f"registry.example/api:{tag}" for tag in ("1.0", "2.0", "3.0", "broken"))
PROXY = "registry.example/proxy:1.4"
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
    assert abs(datetime.now(UTC) - stamp) < timedelta(minutes=1)
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
    assert failed.value.effect is Effect.CHANGED  # the restart was asked for; the rollout is what did not finish
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

    with pytest.raises(ExecutorError, match=r"it is paused\. Resume it first") as refused:
        await make().restart(RecordingProgress())

    assert (refused.value.state, refused.value.effect) == ("nothing was changed", Effect.UNTOUCHED)
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

    with pytest.raises(ExecutorError, match=r"has no revision before 1 to roll back to\. Revisions: 1\."):
        await make().rollback(None, RecordingProgress())
    assert api.writes() == []


@pytest.mark.parametrize(("error", "message", "state", "effect"), [
    (ApiError(403, "Forbidden", 'deployments.apps "api" is forbidden: User "opsbot" cannot patch resource'),
     'not allowed (403 Forbidden): deployments.apps "api" is forbidden', "nothing was changed", Effect.UNTOUCHED),
    (ApiError(500, "InternalError", "etcdserver: request timed out"),
     "the Kubernetes API answered 500 Internal Server Error: etcdserver: request timed out",
     "unknown: deployment default/api may have been changed; look at it before trying again", Effect.UNKNOWN),
])
async def test_a_failed_patch_says_whether_anything_changed(api: K8sApi, make: Make, error: ApiError, message: str,
                                                            state: str, effect: Effect) -> None:
    api.add_deployment("api")

    def refuse_patches(method: str, _: str) -> None:
        if method == "PATCH":
            raise error

    api.before_request = refuse_patches
    with pytest.raises(ExecutorError) as failed:
        await make().restart(RecordingProgress())

    assert str(failed.value).startswith(f"Could not restart deployment default/api: {message}")
    assert (failed.value.state, failed.value.effect) == (state, effect)


@pytest.mark.parametrize("action", ["restart", "rollback", "revisions", "current_image", "deploy", "replicas",
                                    "scale", "logs"])
async def test_a_missing_deployment_is_target_not_found(api: K8sApi, make: Make, action: str) -> None:
    workload = make("gone")
    calls = {"restart": lambda: workload.restart(RecordingProgress()),
             "rollback": lambda: workload.rollback(None, RecordingProgress()), "revisions": workload.revisions,
             "current_image": workload.current_image,
             "deploy": lambda: workload.deploy("2.0", RecordingProgress()),
             "replicas": workload.replicas, "scale": lambda: workload.scale(2, RecordingProgress()),
             "logs": lambda: workload.logs(timedelta(seconds=60))}

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
    with pytest.raises(ExecutorError, match=r"No Kubernetes API to talk to for deployment default/api: .* Set api_url"):
        await make(api_url=None, token_env=None, environ=environ).revisions()


# -- set image ---------------------------------------------------------------------------------------------------


async def test_set_image_to_a_tag_patches_only_that_container_and_rolls_out_a_new_revision(api: K8sApi,
                                                                                          make: Make) -> None:
    api.add_deployment("api", image=V1, sidecar=PROXY)
    first = api.replicasets()[0]["metadata"]["name"]
    workload, progress = make(container="app"), RecordingProgress()

    summary = await workload.deploy("2.0", progress)

    [patch] = api.writes()
    assert patch.content_type == "application/strategic-merge-patch+json"
    assert patch.body == {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": V2}]}}}}
    containers = api.deployment("api")["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("app", V2), ("sidecar", PROXY)]
    old, new = api.replicasets()
    assert (old["metadata"]["name"], new["metadata"]["annotations"][REVISION]) == (first, "2")
    assert api.deployment("api")["metadata"]["annotations"][REVISION] == "2"
    # The controller replaced every pod: all three now belong to the new ReplicaSet and run.
    pods = api.pods("api")
    assert [p["metadata"]["ownerReferences"][0]["name"] for p in pods] == [new["metadata"]["name"]] * 3
    assert {p["status"]["phase"] for p in pods} == {"Running"}
    assert await workload.current_image() == V2
    assert [(s.title, s.state) for s in progress.steps] == [(t, "succeeded") for t in workload.deploy_plan("2.0")]
    assert progress.steps[0].detail == f"{V1} → {V2}"
    assert summary.startswith(f"Set the image of container app of deployment default/api to {V2} "
                              f"(was {V1}, revision 2): 3 replicas updated and available in")


@pytest.mark.parametrize(("running", "given", "expected"), [
    ("registry.example:5000/team/api:1.0", "2.1", "registry.example:5000/team/api:2.1"),
    ("registry.example:5000/api@sha256:" + "a" * 64, "2.1", "registry.example:5000/api:2.1"),
    ("api", "2.1", "api:2.1"),
    (V1, "mirror.example/api:2.1", "mirror.example/api:2.1"),
])
async def test_set_image_puts_a_bare_tag_on_the_current_repository(api: K8sApi, make: Make, running: str,
                                                                   given: str, expected: str) -> None:
    api.add_deployment("api", image=running)

    await make().deploy(given, RecordingProgress())

    assert api.deployment("api")["spec"]["template"]["spec"]["containers"][0]["image"] == expected


async def test_set_image_whose_pods_never_become_available_fails_and_the_previous_image_can_be_set_back(
        api: K8sApi, make: Make) -> None:
    api.add_deployment("api", image=V1)
    api.broken_images.add(BROKEN)
    progress = RecordingProgress()

    with pytest.raises(ExecutorError) as failed:
        await make(rollout_timeout=0.3).deploy(BROKEN, progress)

    assert str(failed.value) == "The rollout of deployment default/api did not finish within 0.3 s."
    assert failed.value.state == ("deployment default/api: 1 of 3 replicas updated, 3 available, 3 old still running; "
                                  "the rollout is still in progress")
    assert [s.state for s in progress.steps] == ["succeeded", "failed"]

    summary = await make().deploy(V1, RecordingProgress())

    # Setting the old image back revives its ReplicaSet, as `kubectl rollout undo` would.
    assert revisions_by_image(api) == {V1: "3", BROKEN: "2"}
    assert summary.startswith(f"Set the image of container app of deployment default/api to {V1} "
                              f"(was {BROKEN}, revision 3): 3 replicas updated and available")
    assert {p["spec"]["containers"][0]["image"] for p in api.pods("api")} == {V1}


async def test_set_image_stops_waiting_when_the_controller_gives_up_on_the_rollout(api: K8sApi, make: Make) -> None:
    api.add_deployment("api", image=V1)
    api.broken_images.add(BROKEN)
    change = asyncio.create_task(make(rollout_timeout=60).deploy(BROKEN, RecordingProgress()))
    await until(lambda: api.deployment("api")["status"]["observedGeneration"] == 2)

    api.fail_rollout("api")

    with pytest.raises(ExecutorError, match="exceeded its progress deadline") as failed:
        await asyncio.wait_for(change, 2)
    assert "1 of 3 replicas updated, 3 available" in failed.value.state


async def test_set_image_to_the_image_it_already_runs_changes_nothing(api: K8sApi, make: Make) -> None:
    api.add_deployment("api", image=V1)
    progress = RecordingProgress()

    summary = await make().deploy("1.0", progress)

    assert summary == f"Container app of deployment default/api already runs {V1}; nothing was changed."
    assert api.writes() == []
    assert [s.state for s in progress.steps] == ["succeeded", "succeeded"]


async def test_set_image_refuses_a_paused_deployment_and_a_missing_container(api: K8sApi, make: Make) -> None:
    api.add_deployment("api", paused=True)
    api.add_deployment("web")

    with pytest.raises(ExecutorError, match="Cannot change the image of deployment default/api: it is paused"):
        await make().deploy("2.0", RecordingProgress())
    with pytest.raises(TargetNotFound, match=r"deployment default/web has no container sidecar \(its containers: "
                                             r"app\)") as missing:
        await make("web", container="sidecar").deploy("2.0", RecordingProgress())

    assert missing.value.state == "nothing was changed"
    assert api.writes() == []


# -- scale -------------------------------------------------------------------------------------------------------


async def test_scale_up_returns_only_once_the_new_replicas_are_available(api: K8sApi, make: Make) -> None:
    api.add_deployment("api")
    api.rollouts = "stuck"
    workload, progress = make(), RecordingProgress()
    scaling = asyncio.create_task(workload.scale(5, progress))

    await until(lambda: api.deployment("api")["status"]["observedGeneration"] == 2)
    await asyncio.sleep(0.1)
    assert not scaling.done()
    assert sorted(p["status"]["phase"] for p in api.pods("api")) == ["Pending"] * 2 + ["Running"] * 3

    api.finish_rollout("api")
    summary = await asyncio.wait_for(scaling, 2)

    [patch] = api.writes()
    assert patch.body == {"spec": {"replicas": 5}}
    assert summary.startswith("Scaled deployment default/api from 3 to 5 replicas: 5 replicas available in")
    assert [(s.title, s.state) for s in progress.steps] == [(t, "succeeded") for t in workload.scale_plan(5)]
    assert await workload.replicas() == 5
    assert [p["status"]["phase"] for p in api.pods("api")] == ["Running"] * 5


@pytest.mark.parametrize(("replicas", "said"), [(1, "1 replica available in"), (0, "no replica remains after")])
async def test_scale_down_waits_until_only_that_many_remain(api: K8sApi, make: Make, replicas: int,
                                                             said: str) -> None:
    api.add_deployment("api")
    workload = make()

    summary = await workload.scale(replicas, RecordingProgress())

    assert summary.startswith(f"Scaled deployment default/api from 3 to {replicas} replica")
    assert said in summary
    status = api.deployment("api")["status"]
    assert (status["replicas"], status["availableReplicas"]) == (replicas, replicas)
    assert len(api.pods("api")) == replicas
    assert [rs["metadata"]["annotations"][REVISION] for rs in api.replicasets()] == ["1"]  # a scale is no revision


async def test_scale_to_the_current_count_writes_nothing_but_waits_for_availability(api: K8sApi, make: Make) -> None:
    api.broken_images.add(V1)
    api.add_deployment("api", image=V1)
    scaling = asyncio.create_task(make().scale(3, RecordingProgress()))
    await asyncio.sleep(0.1)
    assert not scaling.done()

    api.broken_images.clear()
    api.finish_rollout("api")

    summary = await asyncio.wait_for(scaling, 2)
    assert summary.startswith("deployment default/api was already at 3 replicas; nothing was changed (3 replicas "
                              "available in")
    assert api.writes() == []


async def test_scale_that_never_becomes_available_times_out_saying_how_far_it_got(api: K8sApi, make: Make) -> None:
    api.add_deployment("api")
    api.rollouts = "stuck"

    with pytest.raises(ExecutorError, match=r"did not finish within 0\.3 s") as failed:
        await make(rollout_timeout=0.3).scale(4, RecordingProgress())

    assert failed.value.state == ("deployment default/api: 4 of 4 replicas updated, 3 available; "
                                  "the rollout is still in progress")


# -- logs --------------------------------------------------------------------------------------------------------


async def test_logs_of_each_pod_since_the_given_seconds(api: K8sApi, make: Make) -> None:
    api.add_deployment("api", sidecar=PROXY)
    # The canary's pods match the selector `app=api` too, but belong to another deployment.
    api.add_deployment("api-canary", image=V3, labels={"app": "api", "track": "canary"})
    now = datetime.now(UTC)
    recent, old = now - timedelta(seconds=30), now - timedelta(minutes=10)
    names = [p["metadata"]["name"] for p in api.pods("api")]
    for name in names:
        api.set_pod_log(name, [(old, "starting"), (recent, f"served {name}")])
        api.set_pod_log(name, [(recent, "proxy ready")], container="sidecar")
    for pod in api.pods("api-canary"):
        api.set_pod_log(pod["metadata"]["name"], [(recent, "canary")])

    logs = await make().logs(timedelta(seconds=60))

    stamp = recent.strftime("%Y-%m-%dT%H:%M:%S.") + f"{recent.microsecond:06d}".rstrip("0") + "Z"
    assert logs == [(name, f"{stamp} served {name}\n") for name in sorted(names)]
    reads = [r for r in api.requests if r.path.endswith("/log")]
    assert [r.path for r in reads] == [f"/api/v1/namespaces/default/pods/{name}/log" for name in sorted(names)]
    assert all("container=app" in r.query and "sinceSeconds=60" in r.query and "timestamps=true" in r.query
               and "limitBytes=1000000" in r.query for r in reads)
    assert [text for _, text in await make(container="sidecar").logs(timedelta(seconds=60))] == [
        f"{stamp} proxy ready\n"] * 3
    longer = await make().logs(timedelta(hours=1))
    assert [[line.split(" ", 1)[1] for line in text.splitlines()] for _, text in longer] == [
        ["starting", f"served {name}"] for name in sorted(names)]


async def test_logs_are_cut_at_max_bytes_a_pod(api: K8sApi, make: Make) -> None:
    api.add_deployment("api", replicas=1)
    [pod] = api.pods("api")
    api.set_pod_log(pod["metadata"]["name"], [(datetime.now(UTC), "x" * 500)])

    [(_, text)] = await make().logs(timedelta(seconds=60), max_bytes=100)

    assert len(text.encode()) == 100


async def test_logs_of_a_pod_that_cannot_start_say_why(api: K8sApi, make: Make) -> None:
    api.add_deployment("api", image=V1, replicas=1)
    api.broken_images.add(BROKEN)
    with pytest.raises(ExecutorError, match="did not finish"):
        await make(rollout_timeout=0.2).deploy(BROKEN, RecordingProgress())
    running, waiting = sorted(api.pods("api"), key=lambda p: p["status"]["phase"] != "Running")
    api.set_pod_log(running["metadata"]["name"], [(datetime.now(UTC), "still serving")])

    logs = dict(await make().logs(timedelta(seconds=60)))

    assert logs[running["metadata"]["name"]].endswith(" still serving\n")
    assert logs[waiting["metadata"]["name"]] == (f'(no logs: container "app" in pod "{waiting["metadata"]["name"]}" '
                                                 "is waiting to start: trying and failing to pull image)")


# -- ConfigMaps --------------------------------------------------------------------------------------------------


async def test_a_configmap_key_is_added_changed_and_removed(api: K8sApi, make: Make) -> None:
    api.add_configmap("flags", {"mode": "fast"})
    workload = make()
    versions = [api.configmap("flags")["metadata"]["resourceVersion"]]

    assert await workload.config_value("flags", "mode") == "fast"
    assert await workload.config_value("flags", "limit") is None
    said = [await workload.set_config_value("flags", "limit", "10")]
    versions.append(api.configmap("flags")["metadata"]["resourceVersion"])
    said.append(await workload.set_config_value("flags", "mode", "slow"))
    versions.append(api.configmap("flags")["metadata"]["resourceVersion"])
    said.append(await workload.set_config_value("flags", "limit", None))
    versions.append(api.configmap("flags")["metadata"]["resourceVersion"])

    assert said == ['Added limit to ConfigMap default/flags: "10".',
                    'Changed mode in ConfigMap default/flags from "fast" to "slow".',
                    'Removed limit from ConfigMap default/flags (it was "10").']
    assert api.configmap("flags")["data"] == {"mode": "slow"}
    assert await workload.config_value("flags", "mode") == "slow"
    assert len(set(versions)) == 4
    assert {(w.method, w.path, w.content_type) for w in api.writes()} == {
        ("PATCH", "/api/v1/namespaces/default/configmaps/flags", "application/strategic-merge-patch+json")}


async def test_setting_a_configmap_key_to_what_it_is_changes_nothing(api: K8sApi, make: Make) -> None:
    api.add_configmap("flags", {"mode": "fast"})
    workload = make()

    assert await workload.set_config_value("flags", "mode", "fast") == (
        'mode in ConfigMap default/flags is already set to "fast"; nothing was changed.')
    assert await workload.set_config_value("flags", "limit", None) == (
        "limit in ConfigMap default/flags is already not set; nothing was changed.")
    assert api.writes() == []


async def test_a_configmap_changed_since_it_was_read_is_not_overwritten(api: K8sApi, make: Make) -> None:
    api.add_configmap("flags", {"mode": "fast"})

    def someone_else_writes_first(method: str, _: str) -> None:
        if method == "PATCH":
            api.add_configmap("flags", {"mode": "careful"})

    api.before_request = someone_else_writes_first
    with pytest.raises(ExecutorError, match="Could not set mode in ConfigMap default/flags: the Kubernetes API "
                                            "answered 409 Conflict") as refused:
        await make().set_config_value("flags", "mode", "slow")

    assert refused.value.state == "nothing was changed"
    assert api.configmap("flags")["data"] == {"mode": "careful"}


@pytest.mark.parametrize("value", ["on", None])
async def test_a_missing_configmap_is_target_not_found(api: K8sApi, make: Make, value: str | None) -> None:
    workload = make()

    with pytest.raises(TargetNotFound, match=f"There is no ConfigMap default/flags in the cluster at {api.url}"):
        await workload.config_value("flags", "mode")
    with pytest.raises(TargetNotFound) as missing:
        await workload.set_config_value("flags", "mode", value)

    assert missing.value.state == "nothing was changed"
    assert api.writes() == []


async def test_configmap_names_and_keys_are_checked_before_anything_is_sent(api: K8sApi, make: Make) -> None:
    with pytest.raises(ExecutorError, match="is not a ConfigMap name and key"):
        await make().set_config_value("flags", "mode; rm", "x")
    with pytest.raises(ExecutorError, match="is not a ConfigMap name and key"):
        await make().config_value("Flags", "mode")
    assert api.requests == []


async def test_the_double_applies_each_configmap_patch_format_as_the_api_server_does(api: K8sApi) -> None:
    # Other tests drive the double with whatever format their code sends; each must behave as on a cluster.
    api.add_configmap("flags", {"a": "1", "b": "2"})
    config = Configuration(host=api.url, api_key={"authorization": TOKEN}, api_key_prefix={"authorization": "Bearer"})

    def edit() -> tuple[dict[str, str], ApiException, ApiException]:
        with ApiClient(config) as client:
            core = CoreV1Api(client)
            core.patch_namespaced_config_map("flags", "default", [{"op": "remove", "path": "/data/a"}])
            core.patch_namespaced_config_map("flags", "default", {"data": {"c": "3"}},
                                             _content_type="application/merge-patch+json")
            merged = core.read_namespaced_config_map("flags", "default")
            merged_data = dict(merged.data)
            merged.data = {"d": "4"}
            core.replace_namespaced_config_map("flags", "default", merged)
            with pytest.raises(ApiException) as conflict:
                core.replace_namespaced_config_map("flags", "default", merged)  # its resourceVersion is stale now
            with pytest.raises(ApiException) as invalid:
                core.patch_namespaced_config_map("flags", "default", [{"op": "remove", "path": "/data/a"}])
            return merged_data, conflict.value, invalid.value

    merged, conflict, invalid = await asyncio.to_thread(edit)

    assert merged == {"b": "2", "c": "3"}
    assert api.configmap("flags")["data"] == {"d": "4"}
    assert (conflict.status, invalid.status) == (409, 422)
    assert [w.content_type for w in api.writes() if w.method == "PATCH"] == [
        "application/json-patch+json", "application/merge-patch+json", "application/json-patch+json"]


async def test_plans_touch_nothing(api: K8sApi, make: Make) -> None:
    api.add_deployment("api")
    workload = make()

    assert workload.describe() == "Kubernetes deployment default/api"
    assert workload.restart_plan() == ["Restart deployment default/api", "Wait for the rollout to finish (up to 5 s)"]
    assert workload.rollback_plan(None)[0] == "Pick the revision to roll back to (the previous one)"
    assert workload.rollback_plan("3")[0] == "Pick the revision to roll back to (revision 3)"
    with pytest.raises(ExecutorError, match=r"'v1\.2' is not a revision number"):
        workload.rollback_plan("v1.2")
    assert workload.deploy_plan("2.0") == [("Set the image of the first container of deployment default/api to "
                                               "tag 2.0"), "Wait for the rollout to finish (up to 5 s)"]
    assert workload.deploy_plan(V2)[0].endswith(f"to {V2}")
    for garbage in ("api:2.0; reboot", "2.0\n"):
        with pytest.raises(ExecutorError, match="is not an image reference or tag"):
            workload.deploy_plan(garbage)
    assert workload.scale_plan(0) == ["Scale deployment default/api to 0 replicas",
                                      "Wait until no replica remains (up to 5 s)"]
    assert workload.scale_plan(1)[1] == "Wait until 1 replica is available (up to 5 s)"
    with pytest.raises(ExecutorError, match="-1 is not a number of replicas"):
        workload.scale_plan(-1)
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
