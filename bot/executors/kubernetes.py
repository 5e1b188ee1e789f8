"""Kubernetes executor: restart, roll back, re-image and scale a deployment, read its pods' logs and ConfigMap keys,
run a command in one of its pods, as `kubectl rollout`, `set image`, `scale`, `logs`, `patch` and `exec` do.
Not responsible for policy, locks or manifests.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar, cast, overload

import urllib3.exceptions
from kubernetes.client import (
    ApiClient,
    AppsV1Api,
    Configuration,
    CoreV1Api,
    V1ConfigMap,
    V1Deployment,
    V1ObjectMeta,
    V1Pod,
    V1ReplicaSet,
)
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import SERVICE_CERT_FILENAME, SERVICE_TOKEN_FILENAME, InClusterConfigLoader
from kubernetes.config.kube_config import load_kube_config
from kubernetes.stream import stream
from websocket import WebSocketException

from bot.clock import Clock
from bot.executors.base import (
    Effect,
    ExecResult,
    ExecutorError,
    OutputTail,
    Progress,
    Revision,
    TargetNotFound,
    TargetState,
)
from bot.executors.kubernetes_target import DNS_1123_SUBDOMAIN, KubernetesTarget

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
REVISION = "deployment.kubernetes.io/revision"
TEMPLATE_HASH = "pod-template-hash"  # the label the controller adds to each ReplicaSet's copy of the template
# `kubectl rollout undo` keeps these deployment annotations and takes every other one from the ReplicaSet.
KEPT_ON_UNDO = frozenset({
    "kubectl.kubernetes.io/last-applied-configuration", REVISION, "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas", "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
})
CONFIG_KEY = r"^[-._a-zA-Z0-9]{1,253}$"  # what the API server accepts as a ConfigMap key
IMAGE_TAG = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"  # a Docker tag; a bare word is always read as one
IMAGE_REFERENCE = r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,511}$"
REQUEST_TIMEOUT = (5.0, 30.0)  # connect, read: a hung API server must not hold an action for ever
UNCHANGED = TargetState("nothing was changed", Effect.UNTOUCHED)
T = TypeVar("T")


@dataclass(frozen=True)
class _Rollout:
    """What `kubectl rollout status` reads from a deployment to decide whether its rollout is done."""

    subject: str
    generation: int
    observed: int
    desired: int
    replicas: int
    updated: int
    available: int
    deadline_exceeded: bool

    @classmethod
    def of(cls, subject: str, deployment: V1Deployment) -> _Rollout:
        status, spec = deployment.status, deployment.spec
        conditions = (status.conditions if status else None) or []
        return cls(
            subject=subject,
            generation=_meta(deployment).generation or 0,
            observed=(status.observed_generation if status else None) or 0,
            desired=1 if spec.replicas is None else spec.replicas,
            replicas=(status.replicas if status else None) or 0,
            updated=(status.updated_replicas if status else None) or 0,
            available=(status.available_replicas if status else None) or 0,
            deadline_exceeded=any(c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded"
                                  for c in conditions),
        )

    @property
    def observed_change(self) -> bool:
        return self.observed >= self.generation

    @property
    def done(self) -> bool:
        # kubectl's order: all updated, no old replica left, every updated replica available.
        return (self.observed_change and self.updated >= self.desired and self.replicas <= self.updated
                and self.available >= self.updated)

    @property
    def stalled(self) -> bool:
        # A condition from before the controller saw this change belongs to the previous rollout.
        return self.observed_change and self.deadline_exceeded

    def describe(self) -> str:
        counts = f"{self.subject}: {self.updated} of {_replicas(self.desired)} updated, {self.available} available"
        if self.replicas > self.updated:
            counts += f", {self.replicas - self.updated} old still running"
        if not self.observed_change:
            return counts + "; the deployment controller has not picked up the change yet"
        if self.stalled:
            return counts + "; the rollout has stalled (it exceeded its progress deadline)"
        return counts + "; the rollout is still in progress"


@dataclass(frozen=True)
class _ReplicaSet:
    """One revision of the deployment: its number, pod template (hash label removed) and what it shows."""

    number: int
    template: dict[str, Any]
    annotations: dict[str, str]
    image: str
    created_at: datetime | None


class KubernetesWorkload:
    """A Kubernetes deployment: restarts, rolls back, deploys, scales, logs and config values, with the official client
    (one API client per workload)."""

    def __init__(self, target: KubernetesTarget, environ: Mapping[str, str], clock: Clock) -> None:
        self._target, self._environ, self._clock = target, environ, clock
        self._client: ApiClient | None = None
        self._token: str | None = None

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await asyncio.to_thread(_close, client)

    def describe(self) -> str:
        return f"Kubernetes {self._target.subject}"

    def _wait_title(self) -> str:
        return f"Wait for the rollout to finish (up to {self._target.rollout_timeout:g} s)"

    def restart_plan(self) -> list[str]:
        return [f"Restart {self._target.subject}", self._wait_title()]

    def rollback_plan(self, to: str | None) -> list[str]:
        wanted = "the previous one" if to is None else f"revision {_revision_number(to)}"
        return [f"Pick the revision to roll back to ({wanted})", f"Roll {self._target.subject} back to it",
                self._wait_title()]

    async def restart(self, progress: Progress) -> str:
        restart_title, wait_title = self.restart_plan()
        target = self._target
        async with progress.step(restart_title) as step:
            self._refuse_paused(await self._read(), "restart")
            # kubectl's restart: a new template annotation makes the controller roll every pod.
            stamp = self._clock.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
            started = self._clock.monotonic()
            await self._call(f"restart {target.subject}", lambda api: api.patch_namespaced_deployment(
                target.deployment, target.namespace, patch, _request_timeout=REQUEST_TIMEOUT), write=True)
            step.detail = f"restartedAt {stamp}"
        async with progress.step(wait_title) as step:
            rollout, seconds, _ = await self._wait(started)
            step.detail = f"{_replicas(rollout.desired)} updated and available in {seconds:.1f} s"
        return f"Restarted {target.subject}: {_replicas(rollout.desired)} updated and available in {seconds:.1f} s."

    async def rollback(self, to: str | None, progress: Progress) -> str:
        pick_title, apply_title, wait_title = self.rollback_plan(to)
        target = self._target
        async with progress.step(pick_title) as step:
            deployment = await self._read()
            self._refuse_paused(deployment, "roll back")
            history = await self._history(deployment)
            current = _current(deployment, history)
            chosen = self._choose(history, current, to)
            step.detail = f"revision {chosen.number} ({chosen.image})"
        async with progress.step(apply_title) as step:
            annotations = {k: v for k, v in (_meta(deployment).annotations or {}).items() if k in KEPT_ON_UNDO}
            annotations.update({k: v for k, v in chosen.annotations.items() if k not in KEPT_ON_UNDO})
            # kubectl's undo, as one JSON patch; "add" also works where the deployment has no annotations yet.
            patch = [{"op": "replace", "path": "/spec/template", "value": chosen.template},
                     {"op": "add", "path": "/metadata/annotations", "value": annotations}]
            started = self._clock.monotonic()
            await self._call(f"roll {target.subject} back", lambda api: api.patch_namespaced_deployment(
                target.deployment, target.namespace, patch, _request_timeout=REQUEST_TIMEOUT), write=True)
            step.detail = f"pod template of revision {chosen.number} applied"
        async with progress.step(wait_title) as step:
            rollout, seconds, now = await self._wait(started)
            step.detail = f"{_replicas(rollout.desired)} updated and available in {seconds:.1f} s"
        renumbered = f", now revision {now}" if now not in (None, chosen.number) else ""
        return (f"Rolled {target.subject} back from revision {current} to revision {chosen.number} "
                f"({chosen.image}{renumbered}): {_replicas(rollout.desired)} available in {seconds:.1f} s.")

    async def revisions(self) -> list[Revision]:
        deployment = await self._read()
        history = await self._history(deployment)
        current = _current(deployment, history)
        return [Revision(id=str(rs.number), image=rs.image, created_at=rs.created_at, current=rs.number == current)
                for rs in history]

    # -- image -------------------------------------------------------------------------------------------------

    async def current_image(self) -> str:
        """The image of the target container in the deployment's pod template. Reads only."""
        return self._container_of(await self._read())[1]

    def deploy_plan(self, image: str) -> list[str]:
        which = f"container {self._target.container}" if self._target.container else "the first container"
        what = f"tag {image}" if _is_tag(image) else _image_reference(image)
        return [f"Set the image of {which} of {self._target.subject} to {what}", self._wait_title()]

    async def deploy(self, image: str, progress: Progress) -> str:
        """`kubectl set image` then `rollout status`; a bare tag keeps the current repository. Already set: no-op."""
        set_title, wait_title = self.deploy_plan(image)
        target = self._target
        async with progress.step(set_title) as step:
            deployment = await self._read()
            self._refuse_paused(deployment, "change the image of")
            name, current = self._container_of(deployment)
            wanted = _with_tag(current, image) if _is_tag(image) else image
            started = self._clock.monotonic()
            if current == wanted:
                step.detail = f"container {name} already runs {wanted}"
            else:
                # kubectl's set image: a strategic merge patch matches the container by name and changes only it.
                patch = {"spec": {"template": {"spec": {"containers": [{"name": name, "image": wanted}]}}}}
                await self._call(f"set the image of {target.subject}", lambda api: api.patch_namespaced_deployment(
                    target.deployment, target.namespace, patch, _request_timeout=REQUEST_TIMEOUT), write=True)
                step.detail = f"{current} → {wanted}"
        async with progress.step(wait_title) as step:
            if current == wanted:
                step.detail = "nothing was changed, so there is no rollout to wait for"
                return f"Container {name} of {target.subject} already runs {wanted}; nothing was changed."
            rollout, seconds, now = await self._wait(started)
            step.detail = f"{_replicas(rollout.desired)} updated and available in {seconds:.1f} s"
        revision = f", revision {now}" if now is not None else ""
        return (f"Set the image of container {name} of {target.subject} to {wanted} (was {current}{revision}): "
                f"{_replicas(rollout.desired)} updated and available in {seconds:.1f} s.")

    # -- scale -------------------------------------------------------------------------------------------------

    async def replicas(self) -> int:
        """How many replicas the deployment asks for (spec.replicas). Reads only."""
        return _Rollout.of(self._target.subject, await self._read()).desired

    def scale_plan(self, replicas: int) -> list[str]:
        if type(replicas) is not int or replicas < 0:  # not a bool either, though bool is an int
            raise ExecutorError(f"{replicas!r} is not a number of replicas; use 0 or more.", state=UNCHANGED.text,
                                effect=UNCHANGED.effect)
        until = ("no replica remains" if replicas == 0 else "1 replica is available" if replicas == 1
                 else f"{replicas} replicas are available")
        return [f"Scale {self._target.subject} to {_replicas(replicas)}",
                f"Wait until {until} (up to {self._target.rollout_timeout:g} s)"]

    async def scale(self, replicas: int, progress: Progress) -> str:
        """`kubectl scale` then wait until that many replicas are available (none left, for 0)."""
        scale_title, wait_title = self.scale_plan(replicas)
        target = self._target
        async with progress.step(scale_title) as step:
            deployment = await self._read()
            before = _Rollout.of(target.subject, deployment).desired
            started = self._clock.monotonic()
            if before == replicas:
                step.detail = f"already at {_replicas(replicas)}"
            else:
                patch = {"spec": {"replicas": replicas}}
                await self._call(f"scale {target.subject}", lambda api: api.patch_namespaced_deployment(
                    target.deployment, target.namespace, patch, _request_timeout=REQUEST_TIMEOUT), write=True)
                step.detail = f"{before} → {replicas}"
        async with progress.step(wait_title) as step:
            # Even when the count is already right, the caller is told only once those replicas are available.
            rollout, seconds, _ = await self._wait(started, changed=before != replicas)
            step.detail = _availability(rollout, seconds)
        if before == replicas:
            return (f"{target.subject} was already at {_replicas(replicas)}; nothing was changed "
                    f"({_availability(rollout, seconds)}).")
        return f"Scaled {target.subject} from {before} to {_replicas(replicas)}: {_availability(rollout, seconds)}."

    # -- logs --------------------------------------------------------------------------------------------------

    async def logs(self, since: timedelta, max_bytes: int = 1_000_000) -> list[tuple[str, str]]:
        """(pod name, log text with timestamps) for each of the deployment's pods, by name; at most `max_bytes` a pod.

        A pod that went away since it was listed is left out; one whose container has not started has its reason
        as its text ("(no logs: …)"). Reads only.
        """
        # The API counts whole seconds: a window shorter than one still reads the last second.
        since_seconds = max(1, math.ceil(since.total_seconds()))
        if max_bytes < 1:
            raise ExecutorError(f"Cannot read logs of {self._target.subject}: max_bytes must be at least 1.",
                                state=UNCHANGED.text, effect=UNCHANGED.effect)
        found = []
        for pod in await self._pods(await self._read()):
            text = await self._pod_log(pod, since_seconds, max_bytes)
            if text is not None:
                found.append((str(_meta(pod).name), text))
        return found

    async def scan_logs(self, since: timedelta, read: Callable[[str, Iterator[bytes]], T]) -> list[T]:
        """Stream each of the deployment's pods' log over the last `since` (timestamps on, oldest first) into
        `read(pod name, chunks of bytes)` in a worker thread, so a long window is never held whole as `logs` holds it;
        `read` may stop early. What `read` returned, a pod at a time; a pod gone since the listing, or whose
        container has not started, is left out. Reads only."""
        # The API counts whole seconds, at least one: a window is rounded up, never cut.
        since_seconds = max(1, math.ceil(since.total_seconds()))
        scanned: list[T] = []
        for pod in await self._pods(await self._read()):
            name = str(_meta(pod).name)

            def scan(core: CoreV1Api, pod: V1Pod = pod, name: str = name) -> tuple[T] | None:
                try:
                    response = _raw(core.read_namespaced_pod_log(
                        name, self._target.namespace, container=self._log_container(pod), since_seconds=since_seconds,
                        timestamps=True, _preload_content=False, _request_timeout=REQUEST_TIMEOUT))
                except ApiException as exc:
                    if exc.status in (400, 404):  # not started yet, or replaced since the listing: no log to read
                        return None
                    raise
                try:
                    return (read(name, response.stream(64 * 1024)),)
                finally:
                    response.close()  # a `read` that stopped early leaves the rest unread: drop the connection
                    response.release_conn()

            found = await self._call(f"read the log of pod {self._target.namespace}/{name}", scan, api="core")
            if found is not None:
                scanned.append(found[0])
        return scanned

    def _log_container(self, pod: V1Pod) -> str | None:
        # As kubectl logs: without a named container, the pod's first one (the API refuses to guess for several).
        return self._target.container or (pod.spec.containers[0].name if pod.spec and pod.spec.containers else None)

    async def _pods(self, deployment: V1Deployment) -> list[V1Pod]:
        """The deployment's pods, by name."""
        target = self._target
        owned = await self._call(f"list the ReplicaSets of {target.subject}",
                                 lambda api: self._owned_blocking(api, deployment))
        listed = await self._call(f"list the pods of {target.subject}", lambda core: core.list_namespaced_pod(
            target.namespace, label_selector=_selector_of(deployment), _request_timeout=REQUEST_TIMEOUT), api="core")
        # Pods belong to a ReplicaSet of this deployment; the selector alone may match another deployment's.
        return sorted((pod for pod in listed.items if any(
            o.controller and o.uid in owned for o in _meta(pod).owner_references or [])),
            key=lambda pod: str(_meta(pod).name))

    async def _pod_log(self, pod: V1Pod, since_seconds: int, max_bytes: int) -> str | None:
        name = str(_meta(pod).name)
        container = self._log_container(pod)

        def read(core: CoreV1Api) -> str | None:
            try:
                # Raw bytes: the client would try the text as JSON and fails on bytes that are not UTF-8.
                response = _raw(core.read_namespaced_pod_log(
                    name, self._target.namespace, container=container, since_seconds=since_seconds, timestamps=True,
                    limit_bytes=max_bytes, _preload_content=False, _request_timeout=REQUEST_TIMEOUT))
            except ApiException as exc:
                if exc.status == 404:
                    return None  # replaced by a rollout or scaled away since the listing
                if exc.status == 400:  # the container is waiting to start: pulling, crash back-off, …
                    return f"(no logs: {_status_message(exc.body)})"
                raise
            try:
                return bytes(response.data).decode("utf-8", errors="replace")
            finally:
                response.release_conn()

        return await self._call(f"read the log of pod {self._target.namespace}/{name}", read, api="core")

    # -- exec --------------------------------------------------------------------------------------------------

    async def exec(self, command: list[str], *, container: str | None, timeout: float, max_bytes: int) -> ExecResult:
        """`kubectl exec` without stdin or a tty, in the first ready pod (by name): the pods exec subresource over a
        WebSocket (stdout, stderr, and the exit code in the error channel's Status). At `timeout` the stream is
        closed: the API offers nothing else, and whether the process ends then is up to the container runtime
        (without a tty it usually runs on), which the result says."""
        pod = await self._exec_pod()
        pod_name = str(_meta(pod).name)
        names = [c.name for c in (pod.spec.containers if pod.spec else None) or []]
        name = container or self._target.container or (names[0] if names else "")
        if name not in names:
            raise TargetNotFound(f"pod {self._target.namespace}/{pod_name} has no container {name} (its containers: "
                                 f"{', '.join(names) or 'none'}).", state=UNCHANGED.text, effect=UNCHANGED.effect)
        where = f"pod {self._target.namespace}/{pod_name} (container {name})"
        output, stop = OutputTail(max_bytes), threading.Event()
        started = self._clock.monotonic()

        def run(core: CoreV1Api) -> tuple[bool, str | None, str | None]:
            """(finished, the Status of the error channel, what broke the stream)."""
            client = stream(core.connect_get_namespaced_pod_exec, pod_name, self._target.namespace,
                            command=command, container=name, stdin=False, stdout=True, stderr=True, tty=False,
                            binary=True, _preload_content=False)
            deadline = time.monotonic() + timeout
            try:
                while client.is_open() and not stop.is_set() and time.monotonic() < deadline:
                    client.update(timeout=min(0.2, max(0.0, deadline - time.monotonic())))
                    output.take(client.read_channel(1), client.read_channel(2))
            except (WebSocketException, OSError) as exc:
                return False, None, str(exc) or type(exc).__name__
            finally:
                finished = not client.is_open()
                client.close()
            output.take(client.read_channel(1), client.read_channel(2))
            status = client.read_channel(3)
            return finished, bytes(status).decode(errors="replace") if status else None, None

        job = asyncio.ensure_future(self._call(f"run {command[0]} in {where}", run, api="core"))
        try:
            finished, status, broken = await asyncio.shield(job)
        except asyncio.CancelledError:
            stop.set()  # cut from outside: the reading thread closes the stream at its next look
            raise
        seconds = self._clock.monotonic() - started
        if broken is not None:
            raise ExecutorError(f"Lost the stream of the command in {where}: {broken}",
                                state=f"unknown: the command may have run in {where}", effect=Effect.UNKNOWN)
        if not finished:
            return ExecResult(where, None, bytes(output.stdout), bytes(output.stderr), output.dropped, seconds,
                              "its stream was closed (the Kubernetes API cannot end an exec; the process may run on "
                              f"in {where})")
        return ExecResult(where, _exit_code(status, where, output), bytes(output.stdout), bytes(output.stderr),
                          output.dropped, seconds)

    async def _exec_pod(self) -> V1Pod:
        for pod in await self._pods(await self._read()):
            status = pod.status
            ready = any(c.type == "Ready" and c.status == "True" for c in (status.conditions if status else None) or [])
            if status is not None and status.phase == "Running" and ready:
                return pod
        raise TargetNotFound(f"{self._target.subject} has no ready pod to run a command in.", state=UNCHANGED.text,
                             effect=UNCHANGED.effect)

    # -- ConfigMaps --------------------------------------------------------------------------------------------

    async def config_value(self, configmap: str, key: str) -> str | None:
        """The value of `key` in the ConfigMap `configmap` of the target's namespace; None if it has no such key."""
        subject = self._configmap_subject(configmap, key)
        found = await self._read_configmap(configmap, subject)
        self._refuse_binary(found, key, subject)
        return (found.data or {}).get(key)

    async def set_config_value(self, configmap: str, key: str, value: str | None) -> str:
        """Set `key` of the ConfigMap to `value`, or remove it for None; returns what changed. Already so: no-op."""
        subject = self._configmap_subject(configmap, key)
        found = await self._read_configmap(configmap, subject)
        self._refuse_binary(found, key, subject)
        before = (found.data or {}).get(key)
        if before == value:
            now = "not set" if value is None else f"set to {_quote(value)}"
            return f"{key} in {subject} is already {now}; nothing was changed."
        # The resourceVersion makes the patch fail (409) if someone changed the ConfigMap since it was read, so
        # "was" below is what was replaced. Null removes a key in a strategic merge patch.
        patch = {"metadata": {"resourceVersion": _meta(found).resource_version}, "data": {key: value}}
        namespace = self._target.namespace
        await self._call(f"set {key} in {subject}", lambda core: core.patch_namespaced_config_map(
            configmap, namespace, patch, _request_timeout=REQUEST_TIMEOUT), api="core", subject=subject, write=True)
        if value is None:
            return f"Removed {key} from {subject} (it was {_quote(before or '')})."
        if before is None:
            return f"Added {key} to {subject}: {_quote(value)}."
        return f"Changed {key} in {subject} from {_quote(before)} to {_quote(value)}."

    def _configmap_subject(self, configmap: str, key: str) -> str:
        # fullmatch: `$` in re.match would let a trailing newline through.
        if len(configmap) > 253 or not re.fullmatch(DNS_1123_SUBDOMAIN, configmap) or not re.fullmatch(CONFIG_KEY, key):
            raise ExecutorError(f"{configmap!r} / {key!r} is not a ConfigMap name and key (names are lower-case "
                                "letters, digits, '-' and '.'; keys letters, digits, '-', '_' and '.').",
                                state=UNCHANGED.text, effect=UNCHANGED.effect)
        return f"ConfigMap {self._target.namespace}/{configmap}"

    async def _read_configmap(self, configmap: str, subject: str) -> V1ConfigMap:
        namespace = self._target.namespace
        return await self._call(f"read {subject}", lambda core: core.read_namespaced_config_map(
            configmap, namespace, _request_timeout=REQUEST_TIMEOUT), api="core", subject=subject)

    @staticmethod
    def _refuse_binary(found: V1ConfigMap, key: str, subject: str) -> None:
        if key in (found.binary_data or {}):
            raise ExecutorError(f"{key} in {subject} holds binary data; only text keys can be read or set here.",
                                state=UNCHANGED.text, effect=UNCHANGED.effect)

    # -- reading -----------------------------------------------------------------------------------------------

    async def _read(self, state: TargetState = UNCHANGED) -> V1Deployment:
        target = self._target
        return await self._call(f"read {target.subject}", lambda api: api.read_namespaced_deployment(
            target.deployment, target.namespace, _request_timeout=REQUEST_TIMEOUT), state=state)

    async def _history(self, deployment: V1Deployment) -> list[_ReplicaSet]:
        """The deployment's ReplicaSets that carry a revision, newest first (what `kubectl rollout history` lists)."""
        return await self._call(f"list the ReplicaSets of {self._target.subject}",
                                lambda api: self._history_blocking(api, deployment))

    def _history_blocking(self, api: AppsV1Api, deployment: V1Deployment) -> list[_ReplicaSet]:
        found = []
        for rs in self._controlled_blocking(api, deployment):
            meta = _meta(rs)
            number = _revision_of(meta)
            if number is None:
                continue
            template = api.api_client.sanitize_for_serialization(rs.spec.template) or {}
            (template.get("metadata") or {}).get("labels", {}).pop(TEMPLATE_HASH, None)
            found.append(_ReplicaSet(number, template, dict(meta.annotations or {}), self._image(template),
                                     meta.creation_timestamp))
        return sorted(found, key=lambda rs: rs.number, reverse=True)

    def _controlled_blocking(self, api: AppsV1Api, deployment: V1Deployment) -> list[V1ReplicaSet]:
        listed = api.list_namespaced_replica_set(self._target.namespace, label_selector=_selector_of(deployment),
                                                 _request_timeout=REQUEST_TIMEOUT)
        # The selector may match another deployment's ReplicaSets too; kubectl keeps those this one controls.
        return [rs for rs in listed.items
                if any(o.uid == _meta(deployment).uid and o.controller for o in _meta(rs).owner_references or [])]

    def _owned_blocking(self, api: AppsV1Api, deployment: V1Deployment) -> set[str]:
        return {str(_meta(rs).uid) for rs in self._controlled_blocking(api, deployment)}

    def _image(self, template: dict[str, Any]) -> str:
        chosen = self._pick((template.get("spec") or {}).get("containers") or [])
        return str(chosen.get("image", "")) if chosen else f"(no container {self._target.container})"

    def _pick(self, containers: list[dict[str, Any]]) -> dict[str, Any] | None:
        wanted = self._target.container
        return next((c for c in containers if wanted is None or c.get("name") == wanted), None)

    def _container_of(self, deployment: V1Deployment) -> tuple[str, str]:
        """The target container's name and image in the deployment's pod template."""
        spec = deployment.spec.template.spec
        containers = [{"name": c.name, "image": c.image or ""} for c in (spec.containers if spec else None) or []]
        chosen = self._pick(containers)
        if chosen is None:
            names = ", ".join(c["name"] for c in containers) or "none"
            raise TargetNotFound(f"{self._target.subject} has no container {self._target.container} "
                                 f"(its containers: {names}).", state=UNCHANGED.text, effect=UNCHANGED.effect)
        return str(chosen["name"]), str(chosen["image"])

    def _choose(self, history: list[_ReplicaSet], current: int, to: str | None) -> _ReplicaSet:
        subject = self._target.subject
        known = ", ".join(str(rs.number) for rs in history) or "none"
        unchanged = f"unchanged: {subject} is still at revision {current}"
        if to is None:
            older = [rs for rs in history if rs.number < current]
            if not older:
                raise ExecutorError(f"{subject} has no revision before {current} to roll back to. "
                                    f"Revisions: {known}.", state=unchanged, effect=Effect.UNTOUCHED)
            return older[0]
        number = _revision_number(to)
        if number == current:
            raise ExecutorError(f"{subject} is already at revision {current}; name an earlier one. "
                                f"Revisions: {known}.", state=unchanged, effect=Effect.UNTOUCHED)
        chosen = next((rs for rs in history if rs.number == number), None)
        if chosen is None:
            raise ExecutorError(f"{subject} has no revision {number}. Revisions: {known}.", state=unchanged,
                                effect=Effect.UNTOUCHED)
        return chosen

    def _refuse_paused(self, deployment: V1Deployment, doing: str) -> None:
        # As kubectl: a paused deployment would never roll out, so the wait could only time out.
        if deployment.spec.paused:
            raise ExecutorError(f"Cannot {doing} {self._target.subject}: it is paused. Resume it first "
                                f"(kubectl rollout resume deployment/{self._target.deployment} "
                                f"-n {self._target.namespace}).", state=UNCHANGED.text, effect=UNCHANGED.effect)

    # -- waiting -----------------------------------------------------------------------------------------------

    async def _wait(self, started: float, *, changed: bool = True) -> tuple[_Rollout, float, int | None]:
        """Poll like `kubectl rollout status`; returns the finished rollout, seconds taken and the new revision."""
        deadline = started + self._target.rollout_timeout
        # The patch (if any) went through before the wait: a failure here leaves what it changed.
        effect = Effect.CHANGED if changed else Effect.UNTOUCHED
        unknown = TargetState(f"{self._target.subject} was changed; how far its rollout got is unknown" if changed
                              else f"{UNCHANGED.text}; how far {self._target.subject} is from available is unknown",
                              effect)
        while True:
            deployment = await self._read(state=unknown)
            rollout = _Rollout.of(self._target.subject, deployment)
            if rollout.done:
                return rollout, self._clock.monotonic() - started, _revision_of(deployment.metadata)
            if rollout.stalled:
                raise ExecutorError(f"The rollout of {self._target.subject} exceeded its progress deadline.",
                                    state=rollout.describe(), effect=effect)
            if self._clock.monotonic() >= deadline:
                raise ExecutorError(f"The rollout of {self._target.subject} did not finish within "
                                    f"{self._target.rollout_timeout:g} s.", state=rollout.describe(), effect=effect)
            await self._clock.sleep(self._target.poll_interval)

    # -- talking to the API server -----------------------------------------------------------------------------

    @overload
    async def _call(self, doing: str, function: Callable[[AppsV1Api], T], *, api: Literal["apps"] = "apps",
                    subject: str | None = None, state: TargetState = UNCHANGED, write: bool = False) -> T: ...

    @overload
    async def _call(self, doing: str, function: Callable[[CoreV1Api], T], *, api: Literal["core"],
                    subject: str | None = None, state: TargetState = UNCHANGED, write: bool = False) -> T: ...

    async def _call(self, doing: str, function: Callable[[Any], T], *, api: Literal["apps", "core"] = "apps",
                    subject: str | None = None, state: TargetState = UNCHANGED, write: bool = False) -> T:
        """Run a blocking call of the apps/v1 or core/v1 API in a thread, turning its failures into the executor's
        errors; `subject` is what a 404 or a failed write is about (default: the deployment). A read's failure
        leaves `state` (untouched, unless the step changed something before); a write's depends on the answer."""
        subject = subject or self._target.subject
        maybe = (TargetState(f"unknown: {subject} may have been changed; look at it before trying again",
                             Effect.UNKNOWN) if write else state)
        try:
            return await asyncio.to_thread(self._blocking, function, api)
        except ApiException as exc:
            # The server answered: a write it refused changed nothing; one that failed inside it may have.
            after = UNCHANGED if write and (exc.status or 500) < 500 else maybe
            if exc.status == 404:
                raise TargetNotFound(self._scrub(f"There is no {subject} in the cluster at "
                                                 f"{self._where()}."), state=after.text, effect=after.effect) from exc
            raise ExecutorError(self._scrub(f"Could not {doing}: {self._explain(exc)}"), state=after.text,
                                effect=after.effect) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            reason = re.sub(r"^(<[^>]*>|\w+\([^)]*\)): ", "", str(getattr(exc, "reason", None) or exc))
            raise ExecutorError(self._scrub(f"Could not {doing}: cannot reach the Kubernetes API at "
                                            f"{self._where()} ({reason})."), state=maybe.text,
                                effect=maybe.effect) from exc

    def _blocking(self, function: Callable[[Any], T], api: Literal["apps", "core"]) -> T:
        # Made on first use, in a worker thread: loading a kubeconfig reads files and may run an auth plugin.
        if self._client is None:
            self._client = ApiClient(self._configuration())
        return function(AppsV1Api(self._client) if api == "apps" else CoreV1Api(self._client))

    def _configuration(self) -> Configuration:
        target, config = self._target, Configuration()
        try:
            if target.api_url is not None:
                config.host = target.api_url
            elif self._environ.get("KUBERNETES_SERVICE_HOST"):
                InClusterConfigLoader(SERVICE_TOKEN_FILENAME, SERVICE_CERT_FILENAME,
                                      environ=dict(self._environ)).load_and_set(config)
            else:
                load_kube_config(config_file=self._environ.get("KUBECONFIG", "~/.kube/config"),
                                 client_configuration=config, persist_config=False)
        except ConfigException as exc:
            reason = str(exc).rstrip(".")
            raise ExecutorError(f"No Kubernetes API to talk to for {target.subject}: {reason}. Set api_url, run "
                                "opsbot inside the cluster, or give it a kubeconfig.", state=UNCHANGED.text,
                                effect=UNCHANGED.effect) from exc
        if not target.verify_tls:
            config.verify_ssl = False
        if target.token_env is not None:
            token = self._environ.get(target.token_env)
            if not token:
                raise ExecutorError(f"environment variable {target.token_env} is not set (the bearer token for "
                                    f"{target.subject})", state=UNCHANGED.text, effect=UNCHANGED.effect)
            self._token = token
            # "authorization" is the key both the old and the new client generations read.
            config.api_key, config.api_key_prefix = {"authorization": token}, {"authorization": "Bearer"}
            config.refresh_api_key_hook = None
        return config

    def _where(self) -> str:
        if self._client is not None:
            return str(self._client.configuration.host)
        return self._target.api_url or "the configured cluster"

    def _explain(self, exc: ApiException) -> str:
        message = _status_message(exc.body)
        if exc.status == 401:
            source = f"the token in {self._target.token_env}" if self._target.token_env else "the kubeconfig"
            return f"the Kubernetes API refused the credentials (401 Unauthorized); check {source}"
        if exc.status == 403:
            return f"not allowed (403 Forbidden): {message}"
        return f"the Kubernetes API answered {exc.status} {exc.reason}" + (f": {message}" if message else "")

    def _scrub(self, text: str) -> str:
        # Belt and braces: nothing above quotes the token, but a server may echo a header back.
        return text.replace(self._token, "[token]") if self._token else text


def _exit_code(status: str | None, where: str, output: OutputTail) -> int:
    """The exit code a finished exec's Status says: Success is 0, NonZeroExitCode carries it in its causes. Any
    other failure means the command did not run as asked (not found, container gone)."""
    try:
        loaded: Any = json.loads(status) if status else {"status": "Success"}
    except ValueError:
        loaded = None
    parsed: dict[str, Any] = loaded if isinstance(loaded, dict) else {
        "status": "Failure", "message": f"the API server ended the exec with {str(status)[:200]!r}"}
    if parsed.get("status") == "Success":
        return 0
    causes = (parsed.get("details") or {}).get("causes") or []
    code = next((c.get("message") for c in causes if c.get("reason") == "ExitCode"), None)
    if code is not None and str(code).isdigit():
        return int(code)
    ran = output.stdout or output.stderr
    raise ExecutorError(f"The command could not run in {where}: {str(parsed.get('message', ''))[:300]}",
                        state=f"unknown: the command may have run in {where}" if ran else UNCHANGED.text,
                        effect=Effect.UNKNOWN if ran else Effect.UNTOUCHED)


def _close(client: ApiClient) -> None:
    client.close()
    client.rest_client.pool_manager.clear()  # older clients' close() leaves the connections open


def _status_message(body: Any) -> str:
    """The `message` of a Kubernetes Status answer, shortened; the raw body if it is not one."""
    try:
        parsed = json.loads(body) if isinstance(body, (str, bytes)) else None
    except ValueError:
        parsed = None
    text = parsed.get("message", "") if isinstance(parsed, dict) else str(body or "")
    return str(text)[:300]


def _meta(obj: V1Deployment | V1ReplicaSet | V1Pod | V1ConfigMap) -> V1ObjectMeta:
    return obj.metadata or V1ObjectMeta()  # the API always sends it; the newer client's models type it optional


def _revision_of(meta: V1ObjectMeta | None) -> int | None:
    value = ((meta.annotations if meta else None) or {}).get(REVISION, "")
    return int(value) if str(value).isdigit() else None


def _current(deployment: V1Deployment, history: list[_ReplicaSet]) -> int:
    """The deployment's own revision; before the controller has written it, the newest ReplicaSet's."""
    own = _revision_of(deployment.metadata)
    return own if own is not None else max((rs.number for rs in history), default=0)


def _revision_number(to: str) -> int:
    text = to.strip().lower().removeprefix("revision").strip()
    if not text.isdigit() or int(text) < 1:
        raise ExecutorError(f"{to!r} is not a revision number; Kubernetes revisions are 1, 2, 3…", state=UNCHANGED.text,
                            effect=UNCHANGED.effect)
    return int(text)


def _replicas(count: int) -> str:
    return f"{count} replica" if count == 1 else f"{count} replicas"


def _availability(rollout: _Rollout, seconds: float) -> str:
    if rollout.desired == 0:
        return f"no replica remains after {seconds:.1f} s"
    return f"{_replicas(rollout.desired)} available in {seconds:.1f} s"


def _raw(response: object) -> urllib3.HTTPResponse:
    """With `_preload_content=False` the client returns the raw urllib3 response, though it types every call as
    returning the decoded body."""
    return cast(urllib3.HTTPResponse, response)


def _selector_of(deployment: V1Deployment) -> str | None:
    match_labels = deployment.spec.selector.match_labels or {}
    return ",".join(f"{key}={value}" for key, value in sorted(match_labels.items())) or None


def _is_tag(image: str) -> bool:
    return re.fullmatch(IMAGE_TAG, image) is not None


def _image_reference(image: str) -> str:
    if not re.fullmatch(IMAGE_REFERENCE, image):
        raise ExecutorError(f"{image!r} is not an image reference or tag (such as registry.example/api:2.0 or 2.0).",
                            state=UNCHANGED.text, effect=UNCHANGED.effect)
    return image


def _with_tag(current: str, tag: str) -> str:
    """`tag` on the repository of `current`: registry:5000/api:1.0 or api@sha256:… becomes registry:5000/api:<tag>."""
    name = current.split("@", 1)[0]
    if name.rfind(":") > name.rfind("/"):  # a colon before the last slash is a registry's port, not a tag
        name = name[:name.rfind(":")]
    return f"{name}:{tag}"


def _quote(value: str) -> str:
    return json.dumps(value if len(value) <= 60 else value[:59] + "…", ensure_ascii=False)
