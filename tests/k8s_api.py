"""A Kubernetes API double: a real HTTP server for apps/v1 Deployments and ReplicaSets, core/v1 pods (list, logs, status)
ConfigMaps and nodes, metrics.k8s.io pod and node usage, and a controller that rolls deployments out and scales them.
Not a cluster: no scheduler, kubelet, watches or RBAC; pods are records whose logs, faults and usage tests write.

What tests (and stack helpers) use, on a started `K8sApi` (`api.url` is the API server):
- `add_deployment(name, image=, replicas=, labels=, sidecar=, resources=)`: rolled out, every pod Running and Ready;
  `resources` (e.g. {"limits": {"cpu": "500m", "memory": "256Mi"}}) is every container's.
- `pods(deployment)`: the pods, by name. `set_pod_log(pod, [(time, line), …])`: what a container logged.
- Pod faults (no controller reacts to them; a rollout or scale that keeps a pod resets its state but keeps its restart
  count): `crash_loop(pod, restarts=5, at=None)` (Running, not Ready, CrashLoopBackOff, `restarts` more restarts, the
  last one ended `at`, default `now()`), `restart_container(pod, restarts=1, at=None)` (restarted and Ready again),
  `fail_pod(pod, reason="Error", exit_code=1)` (phase Failed).
- Metrics (`/apis/metrics.k8s.io/v1beta1/…`): `set_pod_usage(pod, cpu="250m", memory="64Mi", container=None)`
  (running pods without it use "0"), `add_node(name, cpu="4", memory="16Gi")` (listed at /api/v1/nodes),
  `set_node_usage(name, cpu=, memory=)`; `metrics_served = False` answers 404 there, as a cluster without
  metrics-server does.
- Exec (`/api/v1/namespaces/{ns}/pods/{name}/exec`, the WebSocket of `kubectl exec`, subprotocol v4.channel.k8s.io or
  base.channel.k8s.io: binary frames whose first byte is the channel, stdout 1, stderr 2, and on 3 the Status that
  ends it, carrying a non-zero exit code in its causes): `exec_handler(call) -> ExecReply` answers each command
  (it may sleep: a client that closes the stream first is recorded in `exec_closed`); `execs` lists every call.
- `token`, `before_request`, `rollouts`, `broken_images`, `now`, `requests`: see `K8sApi`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aiohttp import WSMsgType, web

Obj = dict[str, Any]
REVISION = "deployment.kubernetes.io/revision"
HISTORY = "deployment.kubernetes.io/revision-history"
HASH_LABEL = "pod-template-hash"
# The controller does not copy these from a deployment onto its ReplicaSets (deployment/util.go).
NOT_COPIED = {REVISION, HISTORY, "deployment.kubernetes.io/desired-replicas", "deployment.kubernetes.io/max-replicas",
              "kubectl.kubernetes.io/last-applied-configuration"}
MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
              "volumeMounts": "mountPath"}
EPOCH = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
DEPLOYMENT = "/apis/apps/v1/namespaces/{ns}/deployments/{name}"
CONFIGMAP = "/api/v1/namespaces/{ns}/configmaps/{name}"
METRICS = "/apis/metrics.k8s.io/v1beta1"
CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
POD_SUFFIX = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet of the names Kubernetes generates (no vowels, no 0/1/3)
TRUE = {"1", "t", "T", "true", "TRUE", "True"}  # what Go's strconv.ParseBool reads as true
Counts = dict[str, tuple[int, int]]  # ReplicaSet name -> (pods, of which available)


class ApiError(Exception):
    """Becomes a `Status` answer, as the API server sends for every failure."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        self.code, self.reason, self.message = code, reason, message
        super().__init__(message)

    def response(self) -> web.Response:
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": self.message, "reason": self.reason, "code": self.code}
        return web.json_response(status, status=self.code)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: str
    content_type: str
    authorization: str | None
    body: Any


@dataclass(frozen=True)
class ExecCall:
    """One command a client asked to run: in which pod and container, and its argv exactly as it arrived."""

    namespace: str
    pod: str
    container: str
    command: tuple[str, ...]


@dataclass(frozen=True)
class ExecReply:
    """What the command wrote and how it exited; `failure` instead: the runtime could not run it at all (the
    message of a Status without an exit code, as for an executable that is not found)."""

    stdout: bytes = b""
    stderr: bytes = b""
    exit_code: int = 0
    failure: str | None = None


ExecHandler = Callable[[ExecCall], Awaitable[ExecReply]]
EXEC_PROTOCOLS = ("v4.channel.k8s.io", "base.channel.k8s.io")
FRAME = 4096  # bytes of output per WebSocket frame, so long output arrives as many frames, as from a kubelet


class K8sApi:
    """Deployments live in memory; each change to a pod template makes (or revives) a ReplicaSet revision.

    `rollouts` says what the controller does after a spec change: "auto" completes the rollout after two
    `rollout_delay`s (first one new pod, or the new count of a scale, then every pod available); "stuck" stops after
    the first step, its new pods never available, until a test calls `finish_rollout` or `fail_rollout`. Pods of an
    image in `broken_images` never become available (ImagePullBackOff), whatever `rollouts` says.
    Pods follow their ReplicaSets' counts; `now()` is the time `sinceSeconds` of a log read counts back from.
    `token` (if set) is the only bearer token accepted; `before_request(method, path)` runs before each authorized
    request; an `ApiError` it raises is the answer.
    """

    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.rollouts: Literal["auto", "stuck"] = "auto"
        self.rollout_delay = 0.02
        self.broken_images: set[str] = set()
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.requests: list[Recorded] = []
        self.before_request: Callable[[str, str], None] | None = None
        self._deployments: dict[tuple[str, str], Obj] = {}
        self._replicasets: dict[tuple[str, str], Obj] = {}
        self._pods: dict[tuple[str, str], Obj] = {}
        self._logs: dict[tuple[str, str, str], list[tuple[datetime, str]]] = {}
        self._configmaps: dict[tuple[str, str], Obj] = {}
        self._usage: dict[tuple[str, str, str], dict[str, str]] = {}  # (namespace, pod, container) -> usage
        self._nodes: dict[str, Obj] = {}
        self._node_usage: dict[str, dict[str, str]] = {}
        self.metrics_served = True
        self.exec_handler: ExecHandler | None = None
        self.execs: list[ExecCall] = []
        self.exec_closed: list[ExecCall] = []  # commands whose client closed the stream before they ended
        self._controllers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._version = 100
        self._ticks = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get(DEPLOYMENT, self._get)
        app.router.add_patch(DEPLOYMENT, self._patch)
        app.router.add_put(DEPLOYMENT, self._put)
        app.router.add_get("/apis/apps/v1/namespaces/{ns}/replicasets", self._list_replicasets)
        app.router.add_get("/api/v1/namespaces/{ns}/pods", self._list_pods)
        app.router.add_get("/api/v1/namespaces/{ns}/pods/{name}/log", self._pod_log)
        app.router.add_get("/api/v1/namespaces/{ns}/pods/{name}/exec", self._pod_exec)
        app.router.add_get("/api/v1/nodes", self._list_nodes)
        app.router.add_get(f"{METRICS}/namespaces/{{ns}}/pods", self._pod_metrics)
        app.router.add_get(f"{METRICS}/namespaces/{{ns}}/pods/{{name}}", self._pod_metrics)
        app.router.add_get(f"{METRICS}/nodes", self._node_metrics)
        app.router.add_get(f"{METRICS}/nodes/{{name}}", self._node_metrics)
        app.router.add_get(CONFIGMAP, self._get_configmap)
        app.router.add_patch(CONFIGMAP, self._patch_configmap)
        app.router.add_put(CONFIGMAP, self._put_configmap)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        for task in self._controllers.values():
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- what tests use ------------------------------------------------------------------------------------------

    def add_deployment(self, name: str, *, image: str = "registry.example/api:1.0", namespace: str = "default",
                       replicas: int = 3, container: str = "app", paused: bool = False,
                       labels: dict[str, str] | None = None, sidecar: str | None = None,
                       resources: Obj | None = None) -> Obj:
        """A deployment that has rolled out: generation 1, revision 1, one ReplicaSet, every replica available.
        `labels` (default `app: <name>`) are its selector and its pods' labels; `sidecar` is the image of a second
        container named "sidecar"; `resources` (requests and limits) is every container's."""
        labels = labels or {"app": name}
        containers: list[Obj] = [{"name": container, "image": image}]
        if sidecar:
            containers.append({"name": "sidecar", "image": sidecar})
        for each in containers if resources else []:
            each["resources"] = copy.deepcopy(resources)
        deployment = {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()), "generation": 1,
                         "creationTimestamp": self._timestamp(), "labels": dict(labels), "annotations": {}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "paused": paused,
                     "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"containers": containers}}},
            "status": {},
        }
        self._deployments[(namespace, name)] = deployment
        self._sync_replicasets(deployment)
        self.finish_rollout(name, namespace=namespace)
        return copy.deepcopy(deployment)

    def set_image(self, name: str, image: str, *, namespace: str = "default") -> None:
        """`kubectl set image` on the first container, and the rollout completes at once (test setup)."""
        deployment = self._deployment(namespace, name)
        changed = copy.deepcopy(deployment)
        changed["spec"]["template"]["spec"]["containers"][0]["image"] = image
        self._store(deployment, changed)
        self.finish_rollout(name, namespace=namespace)

    def finish_rollout(self, name: str, *, namespace: str = "default") -> None:
        """Every replica is updated and available (unless its image is broken); old ReplicaSets are scaled to zero."""
        deployment = self._deployment(namespace, name)
        desired = deployment["spec"]["replicas"]
        new = self._newest(deployment)["metadata"]["name"]
        self._apply(deployment, {new: (desired, desired)}, ("True", "NewReplicaSetAvailable"))

    def fail_rollout(self, name: str, *, namespace: str = "default") -> None:
        """The controller gives up on this rollout: its new pods never become available and the Progressing
        condition turns False (ProgressDeadlineExceeded). The next change to the spec starts a new rollout."""
        deployment = self._deployment(namespace, name)
        if task := self._controllers.pop((namespace, name), None):
            task.cancel()
        counts = self._first_step(deployment)
        new = self._newest(deployment)["metadata"]["name"]
        counts[new] = (counts[new][0], self._available(deployment, new))
        self._apply(deployment, counts, ("False", "ProgressDeadlineExceeded"))

    def deployment(self, name: str, *, namespace: str = "default") -> Obj:
        return copy.deepcopy(self._deployment(namespace, name))

    def replicasets(self, namespace: str = "default") -> list[Obj]:
        """Oldest revision first."""
        found = [rs for (ns, _), rs in self._replicasets.items() if ns == namespace]
        return copy.deepcopy(sorted(found, key=lambda rs: int(_revision(rs) or 0)))

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method != "GET"]

    def pods(self, deployment: str | None = None, *, namespace: str = "default") -> list[Obj]:
        """The pods of `deployment` (of every deployment if None), by name."""
        uids = ({rs["metadata"]["uid"] for rs in self._owned(self._deployment(namespace, deployment))}
                if deployment is not None else None)
        found = [pod for (ns, _), pod in self._pods.items() if ns == namespace
                 and (uids is None or pod["metadata"]["ownerReferences"][0]["uid"] in uids)]
        return copy.deepcopy(sorted(found, key=lambda pod: pod["metadata"]["name"]))

    def set_pod_log(self, pod: str, lines: Iterable[tuple[datetime, str]], *, container: str | None = None,
                    namespace: str = "default") -> None:
        """What the pod's container (default: its first) has logged: (time, line without newline), oldest first."""
        found = self._pod(namespace, pod)
        name = container or found["spec"]["containers"][0]["name"]
        self._logs[(namespace, pod, name)] = sorted(lines)

    def crash_loop(self, pod: str, *, restarts: int = 5, at: datetime | None = None, container: str | None = None,
                   namespace: str = "default") -> None:
        """The container (default: the pod's first) keeps crashing: it waits in CrashLoopBackOff, the pod is Running
        but not Ready, its restart count grows by `restarts`, the last run ended (exit code 1) at `at` (default now)."""
        found, status = self._container_status(namespace, pod, container)
        status["restartCount"] += restarts
        status.update(ready=False, started=False, lastState=self._terminated("Error", 1, at, status),
                      state={"waiting": {"reason": "CrashLoopBackOff", "message": f"back-off restarting failed "
                                                                               f"container {status['name']}"}})
        self._pod_status_changed(found)

    def restart_container(self, pod: str, *, restarts: int = 1, at: datetime | None = None,
                          container: str | None = None, reason: str = "OOMKilled", exit_code: int = 137,
                          namespace: str = "default") -> None:
        """The container restarted `restarts` times, the last run ending (`reason`, `exit_code`) at `at` (default
        now), and runs and is ready again."""
        found, status = self._container_status(namespace, pod, container)
        status["restartCount"] += restarts
        when = at or self.now()
        status.update(ready=True, started=True, lastState=self._terminated(reason, exit_code, when, status),
                      state={"running": {"startedAt": _rfc3339(when)}})
        self._pod_status_changed(found)

    def fail_pod(self, pod: str, *, reason: str = "Error", exit_code: int = 1, namespace: str = "default") -> None:
        """The pod failed: phase Failed, every container terminated with `exit_code`. Nothing replaces it."""
        found = self._pod(namespace, pod)
        for status in found["status"]["containerStatuses"]:
            status.update(ready=False, started=False, state=self._terminated(reason, exit_code, None, status))
        found["status"]["phase"] = "Failed"
        self._pod_status_changed(found)

    def set_pod_usage(self, pod: str, *, cpu: str = "0", memory: str = "0", container: str | None = None,
                      namespace: str = "default") -> None:
        """What metrics.k8s.io reports the container (default: the pod's first) uses, as quantities ("250m", "64Mi")."""
        found, status = self._container_status(namespace, pod, container)
        self._usage[(namespace, found["metadata"]["name"], status["name"])] = {"cpu": cpu, "memory": memory}

    def add_node(self, name: str, *, cpu: str = "4", memory: str = "16Gi") -> Obj:
        """A Ready node with this capacity (all of it allocatable), using nothing until `set_node_usage`."""
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "uid": str(uuid.uuid4()), "creationTimestamp": self._timestamp(),
                             "labels": {"kubernetes.io/hostname": name}},
                "spec": {},
                "status": {"capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
                           "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
                           "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}
        self._bump(node)
        self._nodes[name] = node
        self._node_usage[name] = {"cpu": "0", "memory": "0"}
        return copy.deepcopy(node)

    def set_node_usage(self, name: str, *, cpu: str = "0", memory: str = "0") -> None:
        if name not in self._nodes:
            raise KeyError(f"no node {name}: add_node first")
        self._node_usage[name] = {"cpu": cpu, "memory": memory}

    def add_configmap(self, name: str, data: dict[str, str] | None = None, *, namespace: str = "default",
                      immutable: bool = False) -> Obj:
        configmap: Obj = {"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()),
                                       "creationTimestamp": self._timestamp()},
                          "data": dict(data or {})}
        if immutable:
            configmap["immutable"] = True
        _validate_configmap(name, configmap)
        self._bump(configmap)
        self._configmaps[(namespace, name)] = configmap
        return copy.deepcopy(configmap)

    def configmap(self, name: str, *, namespace: str = "default") -> Obj:
        return copy.deepcopy(self._configmap(namespace, name))

    # -- HTTP --------------------------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        raw, authorization = await request.read(), request.headers.get("Authorization")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = ApiError(400, "BadRequest", "the body is not JSON")
        self.requests.append(Recorded(request.method, request.path, request.query_string, request.content_type,
                                      authorization, body if not isinstance(body, ApiError) else raw.decode()))
        try:
            if self.token is not None and authorization != f"Bearer {self.token}":
                raise ApiError(401, "Unauthorized", "Unauthorized")
            if self.before_request is not None:
                self.before_request(request.method, request.path)
            if isinstance(body, ApiError):
                raise body
            response: web.StreamResponse = await handler(request)
            return response
        except ApiError as exc:
            return exc.response()

    async def _get(self, request: web.Request) -> web.Response:
        return web.json_response(self._deployment(request.match_info["ns"], request.match_info["name"]))

    async def _patch(self, request: web.Request) -> web.Response:
        deployment = self._deployment(request.match_info["ns"], request.match_info["name"])
        return web.json_response(self._store(deployment, await _patched(request, deployment)))

    async def _put(self, request: web.Request) -> web.Response:
        deployment = self._deployment(request.match_info["ns"], request.match_info["name"])
        body = await request.json()
        if (body.get("metadata") or {}).get("name") != deployment["metadata"]["name"]:
            raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        return web.json_response(self._store(deployment, body))

    async def _list_replicasets(self, request: web.Request) -> web.Response:
        namespace = request.match_info["ns"]
        wanted = _selector(request.query.get("labelSelector", ""))
        items = [rs for rs in self.replicasets(namespace) if wanted(rs["metadata"].get("labels") or {})]
        return web.json_response({"kind": "ReplicaSetList", "apiVersion": "apps/v1",
                                  "metadata": {"resourceVersion": str(self._version)}, "items": items})

    async def _list_pods(self, request: web.Request) -> web.Response:
        wanted = _selector(request.query.get("labelSelector", ""))
        items = [pod for pod in self.pods(namespace=request.match_info["ns"]) if wanted(pod["metadata"]["labels"])]
        return web.json_response({"kind": "PodList", "apiVersion": "v1",
                                  "metadata": {"resourceVersion": str(self._version)}, "items": items})

    async def _pod_log(self, request: web.Request) -> web.Response:
        namespace, name, query = request.match_info["ns"], request.match_info["name"], request.query
        pod = self._pod(namespace, name)
        names = [c["name"] for c in pod["spec"]["containers"]]
        container = query.get("container")
        if container is None and len(names) > 1:
            raise ApiError(400, "BadRequest", f"a container name must be specified for pod {name}, "
                                              f"choose one of: [{' '.join(names)}]")
        container = container or names[0]
        if container not in names:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
        state = next(s for s in pod["status"]["containerStatuses"] if s["name"] == container)["state"]
        last_run = next(s for s in pod["status"]["containerStatuses"] if s["name"] == container).get("lastState")
        if "waiting" in state and not (last_run or {}).get("terminated"):  # a crash loop shows its last run's logs
            raise ApiError(400, "BadRequest", f'container "{container}" in pod "{name}" is waiting to start: '
                                              f'{state["waiting"]["message"]}')
        lines = self._logs.get((namespace, name, container), [])
        since, limit = _positive(query, "sinceSeconds"), _positive(query, "limitBytes")
        if since is not None:
            lines = [(when, line) for when, line in lines if when >= self.now() - timedelta(seconds=since)]
        stamped = query.get("timestamps") in TRUE
        text = "".join(f"{_rfc3339nano(when)} {line}\n" if stamped else f"{line}\n" for when, line in lines)
        body = text.encode()[:limit]  # as the kubelet: limitBytes may cut a line, or a character, in two
        return web.Response(body=body, content_type="text/plain", charset="utf-8")

    async def _pod_exec(self, request: web.Request) -> web.StreamResponse:
        """The exec subresource: checked like the API server (pod, container, a command), then a WebSocket."""
        namespace, name, query = request.match_info["ns"], request.match_info["name"], request.query
        pod = self._pod(namespace, name)
        names = [c["name"] for c in pod["spec"]["containers"]]
        container = query.get("container")
        if container is None and len(names) > 1:
            raise ApiError(400, "BadRequest", f"a container name must be specified for pod {name}, "
                                              f"choose one of: [{' '.join(names)}]")
        container = container or names[0]
        if container not in names:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
        command = tuple(query.getall("command", []))
        if not command:
            raise ApiError(400, "BadRequest", "you must specify at least 1 command")
        if query.get("stdin") in TRUE or query.get("tty") in TRUE:
            raise ApiError(400, "BadRequest", "this double serves exec without stdin or a tty")
        call = ExecCall(namespace, name, container, command)
        self.execs.append(call)
        ws = web.WebSocketResponse(protocols=EXEC_PROTOCOLS)
        await ws.prepare(request)
        if ws.ws_protocol is None:  # the API server refuses a client that speaks none of its channel protocols
            await ws.close(code=1002)
            return ws
        handler = self.exec_handler or _not_set_up
        ran = asyncio.ensure_future(handler(call))
        closed = asyncio.ensure_future(_until_closed(ws))
        await asyncio.wait({ran, closed}, return_when=asyncio.FIRST_COMPLETED)
        if not ran.done():  # the client went away: the double ends the command (a kubelet might not)
            ran.cancel()
            self.exec_closed.append(call)
            with contextlib.suppress(asyncio.CancelledError):
                await ran
            return ws
        reply = ran.result()
        for channel, data in ((1, reply.stdout), (2, reply.stderr)):
            for start in range(0, len(data), FRAME):
                await ws.send_bytes(bytes([channel]) + data[start:start + FRAME])
        await ws.send_bytes(b"\x03" + json.dumps(_exec_status(call, reply)).encode())
        await ws.close()
        closed.cancel()
        return ws

    async def _list_nodes(self, request: web.Request) -> web.Response:
        items = [copy.deepcopy(node) for _, node in sorted(self._nodes.items())]
        return web.json_response({"kind": "NodeList", "apiVersion": "v1",
                                  "metadata": {"resourceVersion": str(self._version)}, "items": items})

    async def _pod_metrics(self, request: web.Request) -> web.Response:
        """PodMetrics of the running pods (what metrics-server scrapes), one or a list; 404 when not served."""
        self._refuse_unserved_metrics()
        namespace, name = request.match_info["ns"], request.match_info.get("name")
        wanted = _selector(request.query.get("labelSelector", ""))
        items = [self._pod_metric(pod) for pod in self.pods(namespace=namespace)
                 if pod["status"]["phase"] == "Running" and wanted(pod["metadata"]["labels"])
                 and name in (None, pod["metadata"]["name"])]
        if name is not None:
            if not items:
                raise ApiError(404, "NotFound", f'podmetrics.metrics.k8s.io "{name}" not found')
            return web.json_response(items[0])
        return web.json_response({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1",
                                  "metadata": {}, "items": items})

    async def _node_metrics(self, request: web.Request) -> web.Response:
        self._refuse_unserved_metrics()
        name = request.match_info.get("name")
        items = [{"kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                  "metadata": {"name": node, "labels": self._nodes[node]["metadata"]["labels"]},
                  "timestamp": _rfc3339(self.now()), "window": "20s", "usage": dict(self._node_usage[node])}
                 for node in sorted(self._nodes) if name in (None, node)]
        if name is not None:
            if not items:
                raise ApiError(404, "NotFound", f'nodemetrics.metrics.k8s.io "{name}" not found')
            return web.json_response(items[0])
        return web.json_response({"kind": "NodeMetricsList", "apiVersion": "metrics.k8s.io/v1beta1",
                                  "metadata": {}, "items": items})

    def _refuse_unserved_metrics(self) -> None:
        if not self.metrics_served:
            # What the API server answers for a group no APIService provides (no metrics-server installed).
            raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def _pod_metric(self, pod: Obj) -> Obj:
        meta = pod["metadata"]
        containers = [{"name": c["name"], "usage": dict(self._usage.get((meta["namespace"], meta["name"], c["name"]),
                                                                         {"cpu": "0", "memory": "0"}))}
                      for c in pod["spec"]["containers"]]
        return {"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"], "labels": dict(meta["labels"])},
                "timestamp": _rfc3339(self.now()), "window": "30s", "containers": containers}

    async def _get_configmap(self, request: web.Request) -> web.Response:
        return web.json_response(self._configmap(request.match_info["ns"], request.match_info["name"]))

    async def _patch_configmap(self, request: web.Request) -> web.Response:
        configmap = self._configmap(request.match_info["ns"], request.match_info["name"])
        return web.json_response(self._store_configmap(configmap, await _patched(request, configmap)))

    async def _put_configmap(self, request: web.Request) -> web.Response:
        configmap = self._configmap(request.match_info["ns"], request.match_info["name"])
        body = await request.json()
        if (body.get("metadata") or {}).get("name") != configmap["metadata"]["name"]:
            raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        return web.json_response(self._store_configmap(configmap, body))

    # -- the API server's and the controller's semantics ----------------------------------------------------------

    def _deployment(self, namespace: str, name: str) -> Obj:
        if (namespace, name) not in self._deployments:
            raise ApiError(404, "NotFound", f'deployments.apps "{name}" not found')
        return self._deployments[(namespace, name)]

    def _store(self, deployment: Obj, changed: Obj) -> Obj:
        """Validate and keep `changed`: what an update does on the server, then what the controller starts."""
        meta = deployment["metadata"]
        # Generation and status belong to the server too: a client cannot write them through this endpoint.
        _keep_identity("deployments.apps", deployment, changed, also=("generation",))
        _validate(meta["name"], changed)
        changed["status"] = deployment["status"]
        changed["metadata"].setdefault("annotations", {})
        if changed["spec"] != deployment["spec"]:
            changed["metadata"]["generation"] += 1
        template_changed = changed["spec"]["template"] != deployment["spec"]["template"]
        deployment.clear()
        deployment.update(changed)
        if template_changed and not deployment["spec"].get("paused"):
            self._sync_replicasets(deployment)  # a paused deployment's new template waits for `rollout resume`
        self._bump(deployment)
        if meta["generation"] != deployment["metadata"]["generation"]:
            self._start_controller(deployment)
        return copy.deepcopy(deployment)

    def _store_configmap(self, configmap: Obj, changed: Obj) -> Obj:
        name = configmap["metadata"]["name"]
        _keep_identity("configmaps", configmap, changed)
        if configmap.get("immutable") and any(changed.get(field) != configmap.get(field)
                                              for field in ("data", "binaryData", "immutable")):
            raise ApiError(422, "Invalid", f'ConfigMap "{name}" is invalid: data: Forbidden: field is immutable '
                                           "when `immutable` is set")
        _validate_configmap(name, changed)
        configmap.clear()
        configmap.update(changed)
        self._bump(configmap)
        return copy.deepcopy(configmap)

    def _sync_replicasets(self, deployment: Obj) -> None:
        """The ReplicaSet for the current template becomes the newest revision; a known template is revived."""
        meta, template = deployment["metadata"], deployment["spec"]["template"]
        owned = self._owned(deployment)
        newest = max((int(_revision(rs) or 0) for rs in owned), default=0)
        same = next((rs for rs in owned if _without_hash(rs["spec"]["template"]) == _without_hash(template)), None)
        if same is None:
            digest = _template_hash(template)
            selector = {**deployment["spec"]["selector"]["matchLabels"], HASH_LABEL: digest}
            labels = {**(template.get("metadata", {}).get("labels") or {}), HASH_LABEL: digest}
            rs_template = copy.deepcopy(template)
            rs_template.setdefault("metadata", {})["labels"] = dict(labels)
            copied = {k: v for k, v in meta.get("annotations", {}).items() if k not in NOT_COPIED}
            same = {
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": f"{meta['name']}-{digest}", "namespace": meta["namespace"],
                             "uid": str(uuid.uuid4()), "generation": 1, "creationTimestamp": self._timestamp(),
                             "labels": labels, "annotations": {**copied, REVISION: str(newest + 1)},
                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"],
                                                  "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]},
                "spec": {"replicas": 0, "template": rs_template,
                         "selector": {"matchLabels": selector}},
                "status": {"replicas": 0, "observedGeneration": 1},
            }
            self._replicasets[(meta["namespace"], same["metadata"]["name"])] = same
        elif int(_revision(same) or 0) != newest:
            # Rolling back revives the old ReplicaSet under a new number; the old number moves to its history.
            annotations = same["metadata"]["annotations"]
            history = [h for h in annotations.get(HISTORY, "").split(",") if h] + [str(_revision(same))]
            annotations.update({REVISION: str(newest + 1), HISTORY: ",".join(history)})
        meta.setdefault("annotations", {})[REVISION] = _revision(same)
        self._bump(same)

    def _start_controller(self, deployment: Obj) -> None:
        key = (deployment["metadata"]["namespace"], deployment["metadata"]["name"])
        if previous := self._controllers.get(key):
            previous.cancel()  # a newer change supersedes the rollout in progress, as in the real controller
        self._controllers[key] = asyncio.get_running_loop().create_task(self._roll_out(*key))

    async def _roll_out(self, namespace: str, name: str) -> None:
        await asyncio.sleep(self.rollout_delay)
        deployment = self._deployment(namespace, name)
        self._apply(deployment, self._first_step(deployment), ("True", "ReplicaSetUpdated"))
        if self.rollouts == "auto" and not self._broken(self._newest(deployment)):
            await asyncio.sleep(self.rollout_delay)
            self.finish_rollout(name, namespace=namespace)

    def _first_step(self, deployment: Obj) -> Counts:
        """Where the controller gets at once. A scale (or any change to a paused deployment) sets the new count; a
        rollout starts one new pod (maxSurge 25% of 3 rounds up to 1) while available old pods keep serving, and
        scales the old ones away once the new ReplicaSet is all available (a revived one may already be)."""
        desired = deployment["spec"]["replicas"]
        new = self._newest(deployment)["metadata"]["name"]
        counts = {rs["metadata"]["name"]: (rs["status"].get("replicas", 0), rs["status"].get("availableReplicas", 0))
                  for rs in self._owned(deployment)}
        pods, available = counts[new]
        if deployment["spec"].get("paused") or not any(n for name, (n, _) in counts.items() if name != new):
            return {**counts, new: (desired, min(available, desired))}
        started = min(max(pods, 1), desired)
        old = {name: (0, 0) if available >= desired else (up, up) for name, (_, up) in counts.items()}
        return {**old, new: (started, min(available, started))}

    def _apply(self, deployment: Obj, counts: Counts, condition: tuple[str, str]) -> None:
        """The ReplicaSets run `counts` (others none), their pods follow, and the deployment's status sums them."""
        desired, new = deployment["spec"]["replicas"], self._newest(deployment)["metadata"]["name"]
        replicas = updated = ready = 0
        for rs in self._owned(deployment):
            name = rs["metadata"]["name"]
            pods, available = counts.get(name, (0, 0))
            available = 0 if self._broken(rs) else min(available, pods)
            rs["spec"]["replicas"] = pods
            rs["status"] = {"replicas": pods, "fullyLabeledReplicas": pods, "readyReplicas": available,
                            "availableReplicas": available, "observedGeneration": rs["metadata"]["generation"]}
            self._sync_pods(rs, pods, available)
            self._bump(rs)
            replicas, ready = replicas + pods, ready + available
            updated += pods if name == new else 0
        progressing, reason = condition
        enough = ready >= desired - desired // 4  # maxUnavailable 25% rounds down
        now = self._timestamp()
        deployment["status"] = {
            "observedGeneration": deployment["metadata"]["generation"], "replicas": replicas,
            "updatedReplicas": updated, "readyReplicas": ready, "availableReplicas": ready,
            "unavailableReplicas": max(replicas - ready, 0),
            "conditions": [
                {"type": "Available", "status": "True" if enough else "False",
                 "reason": "MinimumReplicasAvailable" if enough else "MinimumReplicasUnavailable",
                 "lastUpdateTime": now, "lastTransitionTime": now},
                {"type": "Progressing", "status": progressing, "reason": reason,
                 "lastUpdateTime": now, "lastTransitionTime": now},
            ],
        }
        self._bump(deployment)

    def _sync_pods(self, rs: Obj, count: int, available: int) -> None:
        """The ReplicaSet's pods become `count`, the first `available` of them running and ready. As the real
        ReplicaSet controller, it deletes pods that are not ready first, then the newest."""
        meta = rs["metadata"]
        mine = sorted((pod for pod in self._pods.values()
                       if pod["metadata"]["ownerReferences"][0]["uid"] == meta["uid"]),
                      key=lambda pod: (pod["status"]["phase"] != "Running", pod["metadata"]["creationTimestamp"]))
        for pod in mine[count:]:
            del self._pods[(meta["namespace"], pod["metadata"]["name"])]
            for key in [key for key in self._logs if key[:2] == (meta["namespace"], pod["metadata"]["name"])]:
                del self._logs[key]
            for key in [key for key in self._usage if key[:2] == (meta["namespace"], pod["metadata"]["name"])]:
                del self._usage[key]
        kept = mine[:count] + [self._new_pod(rs) for _ in range(count - len(mine))]
        for index, pod in enumerate(kept):
            running = index < available
            waiting = ({"reason": "ImagePullBackOff", "message": "trying and failing to pull image"}
                       if self._broken(rs) else {"reason": "ContainerCreating", "message": "ContainerCreating"})
            since = pod["metadata"]["creationTimestamp"]
            state = {"running": {"startedAt": since}} if running else {"waiting": waiting}
            # A pod the controller keeps keeps its restart history (the kubelet counts restarts, not the controller).
            before = {c["name"]: c for c in (pod["status"].get("containerStatuses") or [])}
            pod["status"] = {
                "phase": "Running" if running else "Pending",
                "conditions": [{"type": "Ready", "status": "True" if running else "False"}],
                "containerStatuses": [
                    {"name": c["name"], "image": c["image"], "imageID": "", "ready": running,
                     "restartCount": before.get(c["name"], {}).get("restartCount", 0),
                     "lastState": before.get(c["name"], {}).get("lastState", {}), "started": running, "state": state}
                    for c in pod["spec"]["containers"]],
            }
            self._bump(pod)

    def _new_pod(self, rs: Obj) -> Obj:
        meta, template = rs["metadata"], rs["spec"]["template"]
        suffix = "".join(POD_SUFFIX[byte % len(POD_SUFFIX)] for byte in uuid.uuid4().bytes[:5])
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"{meta['name']}-{suffix}", "namespace": meta["namespace"],
                            "uid": str(uuid.uuid4()), "creationTimestamp": self._timestamp(),
                            "labels": dict(template["metadata"]["labels"]),
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": meta["name"],
                                                 "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]},
               "spec": copy.deepcopy(template["spec"]), "status": {"phase": "Pending"}}
        self._pods[(meta["namespace"], pod["metadata"]["name"])] = pod
        return pod

    def _newest(self, deployment: Obj) -> Obj:
        """The ReplicaSet of the deployment's revision (while paused, the template it last rolled out)."""
        revision = deployment["metadata"]["annotations"].get(REVISION)
        return next(rs for rs in self._owned(deployment) if _revision(rs) == revision)

    def _available(self, deployment: Obj, name: str) -> int:
        rs = next(rs for rs in self._owned(deployment) if rs["metadata"]["name"] == name)
        return int(rs["status"].get("availableReplicas", 0))

    def _broken(self, rs: Obj) -> bool:
        return any(c["image"] in self.broken_images for c in rs["spec"]["template"]["spec"]["containers"])

    def _container_status(self, namespace: str, pod: str, container: str | None) -> tuple[Obj, Obj]:
        found = self._pod(namespace, pod)
        statuses = found["status"]["containerStatuses"]
        status = next((s for s in statuses if container is None or s["name"] == container), None)
        if status is None:
            raise KeyError(f"pod {pod} has no container {container}")
        return found, status

    def _terminated(self, reason: str, exit_code: int, at: datetime | None, status: Obj) -> Obj:
        started = (status.get("state", {}).get("running") or {}).get("startedAt") or EPOCH.strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"terminated": {"exitCode": exit_code, "reason": reason, "startedAt": started,
                               "finishedAt": _rfc3339(at or self.now()), "containerID": ""}}

    def _pod_status_changed(self, pod: Obj) -> None:
        """The kubelet's summary: Ready when running with every container ready."""
        status = pod["status"]
        ready = status["phase"] == "Running" and all(s["ready"] for s in status["containerStatuses"])
        status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
        self._bump(pod)

    def _pod(self, namespace: str, name: str) -> Obj:
        if (namespace, name) not in self._pods:
            raise ApiError(404, "NotFound", f'pods "{name}" not found')
        return self._pods[(namespace, name)]

    def _configmap(self, namespace: str, name: str) -> Obj:
        if (namespace, name) not in self._configmaps:
            raise ApiError(404, "NotFound", f'configmaps "{name}" not found')
        return self._configmaps[(namespace, name)]

    def _owned(self, deployment: Obj) -> list[Obj]:
        uid = deployment["metadata"]["uid"]
        return [rs for rs in self._replicasets.values()
                if any(ref.get("uid") == uid for ref in rs["metadata"].get("ownerReferences", []))]

    def _bump(self, obj: Obj) -> None:
        self._version += 1
        obj["metadata"]["resourceVersion"] = str(self._version)

    def _timestamp(self) -> str:
        # A logical clock: every object made gets its own second, so listings sort the way they were made.
        self._ticks += 1
        return (EPOCH + timedelta(seconds=self._ticks)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _not_set_up(call: ExecCall) -> ExecReply:
    return ExecReply(failure=f"exec is not set up in this double (set K8sApi.exec_handler): {call.command[0]}")


async def _until_closed(ws: web.WebSocketResponse) -> None:
    async for message in ws:
        if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            return


def _exec_status(call: ExecCall, reply: ExecReply) -> Obj:
    """The Status the error channel ends an exec with (what kubelet's remotecommand sends)."""
    if reply.failure is not None:
        return {"metadata": {}, "status": "Failure", "message": reply.failure, "reason": "InternalError",
                "code": 500}
    if reply.exit_code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": f"command terminated with non-zero exit code: error executing command {list(call.command)}, "
                       f"exit code {reply.exit_code}",
            "details": {"causes": [{"reason": "ExitCode", "message": str(reply.exit_code)}]}}


def _revision(rs: Obj) -> str | None:
    value = (rs["metadata"].get("annotations") or {}).get(REVISION)
    return str(value) if value is not None else None


def _without_hash(template: Obj) -> Obj:
    stripped = copy.deepcopy(template)
    (stripped.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
    return stripped


def _template_hash(template: Obj) -> str:
    canonical = json.dumps(_without_hash(template), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def _positive(query: Any, name: str) -> int | None:
    """An optional PodLogOptions number: not a number answers 400, below 1 answers 422, as the API server does."""
    if name not in query:
        return None
    try:
        value = int(query[name])
    except ValueError:
        raise ApiError(400, "BadRequest", f"{name}: invalid integer {query[name]!r}") from None
    if value < 1:
        raise ApiError(422, "Invalid", f"PodLogOptions is invalid: {name}: Invalid value: {value}: must be greater "
                                       "than 0")
    return value


def _rfc3339(when: datetime) -> str:
    """A time as the API server writes object times: RFC 3339 in UTC, to the second."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rfc3339nano(when: datetime) -> str:
    """Go's RFC3339Nano, as the kubelet stamps log lines: nanoseconds without trailing zeros, in UTC."""
    utc = when.astimezone(UTC)
    fraction = f"{utc.microsecond:06d}000".rstrip("0")
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


async def _patched(request: web.Request, current: Obj) -> Obj:
    """`current` with the request's patch applied, in whichever of the three patch formats it says it is."""
    patch, kind = await request.json(), request.content_type
    if kind == "application/strategic-merge-patch+json":
        return _merge(current, patch, strategic=True)
    if kind == "application/merge-patch+json":
        return _merge(current, patch, strategic=False)
    if kind == "application/json-patch+json":
        return _json_patch(current, patch)
    raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {kind}")


def _keep_identity(resource: str, current: Obj, changed: Obj, *, also: tuple[str, ...] = ()) -> None:
    """What every update does first: a resourceVersion in the body must still be the stored one (409 otherwise),
    and the object's identity stays the server's."""
    meta = current["metadata"]
    wanted_version = (changed.get("metadata") or {}).get("resourceVersion")
    if wanted_version and wanted_version != meta["resourceVersion"]:
        raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {resource} "{meta["name"]}": '
                                        "the object has been modified; please apply your changes to the latest "
                                        "version and try again")
    kept = {key: meta[key] for key in ("name", "namespace", "uid", "creationTimestamp", *also)}
    changed["metadata"] = {**(changed.get("metadata") or {}), **kept}


def _validate_configmap(name: str, configmap: Obj) -> None:
    data, binary = configmap.get("data") or {}, configmap.get("binaryData") or {}
    if not all(isinstance(value, str) for value in data.values()):
        raise ApiError(400, "BadRequest", "json: cannot unmarshal a non-string into Go struct field ConfigMap.data "
                                          "of type string")
    causes = [f'data[{key}]: Invalid value: "{key}": a valid config key must consist of alphanumeric characters, '
              "'-', '_' or '.'" for key in [*data, *binary] if not CONFIG_KEY.fullmatch(key)]
    causes += [f'data[{key}]: Invalid value: "{key}": duplicate of key present in binaryData'
               for key in data if key in binary]
    if causes:
        raise ApiError(422, "Invalid", f'ConfigMap "{name}" is invalid: {", ".join(causes)}')


def _validate(name: str, deployment: Obj) -> None:
    """The checks of the real validation that a rollback could break; failures answer 422 Invalid."""
    causes: list[tuple[str, str]] = []
    spec = deployment.get("spec") or {}
    replicas = spec.get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        causes.append(("spec.replicas", "must be greater than or equal to 0"))
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if not selector or any(labels.get(k) != v for k, v in selector.items()):
        causes.append(("spec.template.metadata.labels", "`selector` does not match template `labels`"))
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    if not containers:
        causes.append(("spec.template.spec.containers", "Required value"))
    for index, container in enumerate(containers):
        for key in ("name", "image"):
            if not container.get(key):
                causes.append((f"spec.template.spec.containers[{index}].{key}", "Required value"))
    if causes:
        text = ", ".join(f"{where}: {what}" for where, what in causes)
        raise ApiError(422, "Invalid", f'Deployment.apps "{name}" is invalid: {text}')


def _merge(target: Any, patch: Any, *, strategic: bool, key: str = "") -> Any:
    """RFC 7386 merge patch; `strategic` also merges the lists Kubernetes merges by key (containers by name)."""
    if isinstance(patch, dict) and isinstance(target, dict):
        merged = copy.deepcopy(target)
        for name, value in patch.items():
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = _merge(merged.get(name), value, strategic=strategic, key=name)
        return merged
    merge_key = MERGE_KEYS.get(key)
    if strategic and merge_key and isinstance(patch, list) and isinstance(target, list):
        merged_list = copy.deepcopy(target)
        for item in patch:
            index = next((i for i, old in enumerate(merged_list) if old.get(merge_key) == item.get(merge_key)), None)
            if index is None:
                merged_list.append(_merge({}, item, strategic=True))
            else:
                merged_list[index] = _merge(merged_list[index], item, strategic=True)
        return merged_list
    return _merge({}, patch, strategic=strategic) if isinstance(patch, dict) else copy.deepcopy(patch)


def _json_patch(document: Obj, operations: Any) -> Obj:
    """RFC 6902 add, replace, remove and test; a failed operation answers 422 as the API server does."""
    if not isinstance(operations, list):
        raise ApiError(400, "BadRequest", "a JSON patch is a list of operations")
    patched = copy.deepcopy(document)
    for op in operations:
        *parents, last = [part.replace("~1", "/").replace("~0", "~") for part in op["path"].split("/")[1:]]
        missing = f"jsonpatch {op['op']} operation does not apply: doc is missing path: {op['path']}"
        holder: Any = patched
        for part in parents:
            holder = holder[int(part)] if isinstance(holder, list) else holder.get(part)
            if holder is None:
                raise ApiError(422, "Invalid", missing)
        index: Any = (len(holder) if last == "-" else int(last)) if isinstance(holder, list) else last
        exists = index < len(holder) if isinstance(holder, list) else index in holder
        if op["op"] == "test":
            if not exists or holder[index] != op["value"]:
                raise ApiError(422, "Invalid", f"testing value {op['path']} failed")
        elif op["op"] in ("replace", "remove") and not exists:
            raise ApiError(422, "Invalid", missing)
        elif op["op"] == "remove":
            del holder[index]
        elif op["op"] == "add" and isinstance(holder, list):
            holder.insert(index, copy.deepcopy(op["value"]))
        elif op["op"] in ("add", "replace"):
            holder[index] = copy.deepcopy(op["value"])
        else:
            raise ApiError(422, "Invalid", f"unsupported JSON patch operation {op['op']!r}")
    return patched


def _selector(text: str) -> Callable[[dict[str, str]], bool]:
    """Equality-based label selectors: `a=b`, `a==b`, `a!=b`, `a` (exists) and `!a`, comma-separated."""
    terms = [term.strip() for term in text.split(",") if term.strip()]

    def matches(labels: dict[str, str]) -> bool:
        return all(_matches(term, labels) for term in terms)

    return matches


def _matches(term: str, labels: dict[str, str]) -> bool:
    if "!=" in term:
        key, value = term.split("!=", 1)
        return labels.get(key.strip()) != value.strip()
    if "=" in term:
        key, value = term.replace("==", "=").split("=", 1)
        return labels.get(key.strip()) == value.strip()
    if term.startswith("!"):
        return term[1:].strip() not in labels
    return term in labels
