"""A Kubernetes API double: a real HTTP server for apps/v1 Deployments and ReplicaSets, and a controller that rolls
deployments out when tests say so. Not a cluster: no pods, scheduler, watches, RBAC or any other resource.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from aiohttp import web

Obj = dict[str, Any]
REVISION = "deployment.kubernetes.io/revision"
HISTORY = "deployment.kubernetes.io/revision-history"
HASH_LABEL = "pod-template-hash"
# The controller does not copy these from a deployment onto its ReplicaSets (deployment/util.go).
NOT_COPIED = {REVISION, HISTORY, "deployment.kubernetes.io/desired-replicas", "deployment.kubernetes.io/max-replicas",
              "kubectl.kubernetes.io/last-applied-configuration"}
MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
              "volumeMounts": "mountPath"}
EPOCH = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
DEPLOYMENT = "/apis/apps/v1/namespaces/{ns}/deployments/{name}"


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


class K8sApi:
    """Deployments live in memory; each change to a pod template makes (or revives) a ReplicaSet revision.

    `rollouts` says what the controller does after a spec change: "auto" completes the rollout after two
    `rollout_delay`s (first one new pod, then all); "stuck" stops at one new pod that never becomes available, until
    a test calls `finish_rollout` or `fail_rollout`. `token` (if set) is the only bearer token accepted;
    `before_request(method, path)` runs before each authorized request; an `ApiError` it raises is the answer.
    """

    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.rollouts: Literal["auto", "stuck"] = "auto"
        self.rollout_delay = 0.02
        self.requests: list[Recorded] = []
        self.before_request: Callable[[str, str], None] | None = None
        self._deployments: dict[tuple[str, str], Obj] = {}
        self._replicasets: dict[tuple[str, str], Obj] = {}
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
                       labels: dict[str, str] | None = None) -> Obj:
        """A deployment that has rolled out: generation 1, revision 1, one ReplicaSet, every replica available.
        `labels` (default `app: <name>`) are its selector and its pods' labels."""
        labels = labels or {"app": name}
        deployment = {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()), "generation": 1,
                         "creationTimestamp": self._timestamp(), "labels": dict(labels), "annotations": {}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "paused": paused,
                     "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"containers": [{"name": container, "image": image}]}}},
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
        """Every replica is updated and available; old ReplicaSets are scaled to zero."""
        deployment = self._deployment(namespace, name)
        desired = deployment["spec"]["replicas"]
        current = deployment["metadata"]["annotations"].get(REVISION)
        for rs in self._owned(deployment):
            rs["spec"]["replicas"] = rs["status"]["replicas"] = desired if _revision(rs) == current else 0
        self._set_status(deployment, updated=desired, replicas=desired, available=desired,
                         condition=("True", "NewReplicaSetAvailable"))

    def fail_rollout(self, name: str, *, namespace: str = "default") -> None:
        """The controller gives up waiting: the Progressing condition turns False (ProgressDeadlineExceeded)."""
        deployment = self._deployment(namespace, name)
        desired = deployment["spec"]["replicas"]
        self._set_status(deployment, updated=min(1, desired), replicas=desired + min(1, desired), available=desired,
                         condition=("False", "ProgressDeadlineExceeded"))

    def deployment(self, name: str, *, namespace: str = "default") -> Obj:
        return copy.deepcopy(self._deployment(namespace, name))

    def replicasets(self, namespace: str = "default") -> list[Obj]:
        """Oldest revision first."""
        found = [rs for (ns, _), rs in self._replicasets.items() if ns == namespace]
        return copy.deepcopy(sorted(found, key=lambda rs: int(_revision(rs) or 0)))

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method != "GET"]

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
        patch, kind = await request.json(), request.content_type
        if kind == "application/strategic-merge-patch+json":
            changed = _merge(deployment, patch, strategic=True)
        elif kind == "application/merge-patch+json":
            changed = _merge(deployment, patch, strategic=False)
        elif kind == "application/json-patch+json":
            changed = _json_patch(deployment, patch)
        else:
            raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {kind}")
        return web.json_response(self._store(deployment, changed))

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

    # -- the API server's and the controller's semantics ----------------------------------------------------------

    def _deployment(self, namespace: str, name: str) -> Obj:
        if (namespace, name) not in self._deployments:
            raise ApiError(404, "NotFound", f'deployments.apps "{name}" not found')
        return self._deployments[(namespace, name)]

    def _store(self, deployment: Obj, changed: Obj) -> Obj:
        """Validate and keep `changed`: what an update does on the server, then what the controller starts."""
        meta = deployment["metadata"]
        wanted_version = (changed.get("metadata") or {}).get("resourceVersion")
        if wanted_version and wanted_version != meta["resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on deployments.apps "{meta["name"]}": '
                                            "the object has been modified; please apply your changes to the latest "
                                            "version and try again")
        _validate(meta["name"], changed)
        # Identity, generation and status belong to the server: a client cannot write them through this endpoint.
        kept = {key: meta[key] for key in ("name", "namespace", "uid", "creationTimestamp", "generation")}
        changed["metadata"] = {**changed.get("metadata", {}), **kept}
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
        if deployment["spec"].get("paused"):
            return
        desired = deployment["spec"]["replicas"]
        first = min(1, desired)  # maxSurge 25% of 3 rounds up to 1 new pod; the old pods keep serving meanwhile
        self._set_status(deployment, updated=first, replicas=desired + first, available=desired,
                         condition=("True", "ReplicaSetUpdated"))
        if self.rollouts == "auto":
            await asyncio.sleep(self.rollout_delay)
            self.finish_rollout(name, namespace=namespace)

    def _set_status(self, deployment: Obj, *, updated: int, replicas: int, available: int,
                    condition: tuple[str, str]) -> None:
        progressing, reason = condition
        now = self._timestamp()
        deployment["status"] = {
            "observedGeneration": deployment["metadata"]["generation"], "replicas": replicas,
            "updatedReplicas": updated, "readyReplicas": available, "availableReplicas": available,
            "unavailableReplicas": max(replicas - available, 0),
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                 "lastUpdateTime": now, "lastTransitionTime": now},
                {"type": "Progressing", "status": progressing, "reason": reason,
                 "lastUpdateTime": now, "lastTransitionTime": now},
            ],
        }
        self._bump(deployment)

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
