"""Read-only looks at a Kubernetes target's pods, its nodes, and what metrics.k8s.io says they use, for the
kubernetes-pods check.

Uses the Kubernetes executor's client, configuration and error handling; never changes anything in the cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from kubernetes.client import CoreV1Api, CustomObjectsApi, V1Pod
from kubernetes.client.exceptions import ApiException
from kubernetes.utils.quantity import parse_quantity

from bot.executors.kubernetes import REQUEST_TIMEOUT, KubernetesWorkload, _meta

T = TypeVar("T")


@dataclass(frozen=True)
class Usage:
    """What one pod uses now (all its containers): CPU in cores, memory in bytes."""

    cpu: Decimal
    memory: Decimal


@dataclass(frozen=True)
class NodeUsage:
    """What one node uses now against what it can give pods (its allocatable): CPU in cores, memory in bytes."""

    name: str
    used: Usage
    allocatable: Usage


class Unavailable(Exception):
    """The API server refused or failed a read the check can do without (metrics.k8s.io with no metrics-server (404)
    or metrics-server down (503); nodes without the RBAC to list them (403)): its HTTP status, for a note."""

    def __init__(self, what: str, status: int | None) -> None:
        self.what, self.status = what, status
        super().__init__(f"{what} unavailable ({status})")


class KubernetesPods(KubernetesWorkload):
    """The target deployment's pods (or those a label selector picks) and their usage. Only reads."""

    async def pods(self, selector: str | None = None) -> tuple[list[V1Pod], int | None]:
        """The pods by name, and the replicas the deployment asks for (None when `selector` picks the pods)."""
        if selector is None:
            deployment = await self._read()
            replicas = deployment.spec.replicas
            return await self._pods(deployment), 1 if replicas is None else int(replicas)
        namespace = self._target.namespace
        listed = await self._call(
            f"list the pods matching {selector} in namespace {namespace}",
            lambda core: core.list_namespaced_pod(namespace, label_selector=selector,
                                                  _request_timeout=REQUEST_TIMEOUT),
            api="core", subject=f"namespace {namespace}")
        return sorted(listed.items, key=lambda pod: str(_meta(pod).name)), None

    async def usage(self) -> dict[str, dict[str, Usage]]:
        """Pod name → container name → usage, from metrics.k8s.io for the namespace. Raises `Unavailable` when the API
        server answers that read with an error (no metrics-server, metrics-server down, no RBAC for it)."""
        namespace = self._target.namespace

        def read(core: CoreV1Api) -> dict[str, Any]:
            return _optional("metrics.k8s.io", lambda: _json_object(
                CustomObjectsApi(core.api_client).list_namespaced_custom_object(
                    "metrics.k8s.io", "v1beta1", namespace, "pods", _request_timeout=REQUEST_TIMEOUT)))

        listed = await self._call(f"read the pod metrics of namespace {namespace}", read, api="core")
        return {str((item.get("metadata") or {}).get("name")): {
                    str(c.get("name")): _usage(c.get("usage")) for c in item.get("containers") or []}
                for item in listed.get("items") or []}

    async def nodes(self) -> list[NodeUsage]:
        """Every node metrics.k8s.io reports and the API lists, by name. Raises `Unavailable` as `usage` does (listing
        nodes needs cluster-wide RBAC a namespaced token may not have)."""

        def read(core: CoreV1Api) -> tuple[Any, dict[str, Any]]:
            listed = _optional("nodes", lambda: core.list_node(_request_timeout=REQUEST_TIMEOUT))
            metrics = _optional("metrics.k8s.io", lambda: _json_object(
                CustomObjectsApi(core.api_client).list_cluster_custom_object(
                    "metrics.k8s.io", "v1beta1", "nodes", _request_timeout=REQUEST_TIMEOUT)))
            return listed, metrics

        listed, metrics = await self._call("read the nodes and their metrics", read, api="core")
        used = {str((item.get("metadata") or {}).get("name")): _usage(item.get("usage")) for item in
                metrics.get("items") or []}
        found = []
        for node in listed.items:
            name = str(_meta(node).name)
            allocatable = (node.status.allocatable if node.status else None) or {}
            if name in used and allocatable:
                found.append(NodeUsage(name, used[name], _usage(allocatable)))
        return sorted(found, key=lambda node: node.name)


def _json_object(value: object) -> dict[str, Any]:
    """A custom resource list as the API answers it: a JSON object (the client types custom objects as `object`)."""
    return value if isinstance(value, dict) else {}


def _optional(what: str, read: Callable[[], T]) -> T:
    """`read()`, its API error turned into `Unavailable`: what it reads is a note in the reason, not a failure."""
    try:
        return read()
    except ApiException as exc:
        raise Unavailable(what, exc.status) from exc


def _usage(quantities: dict[str, Any] | None) -> Usage:
    return Usage(cpu=parse_quantity((quantities or {}).get("cpu", "0")),
                 memory=parse_quantity((quantities or {}).get("memory", "0")))


def share(pod: V1Pod, usage: dict[str, Usage], resource: str) -> float | None:
    """Percent of the pod's `resource` ("cpu" or "memory") limits in use, over the containers that set a limit;
    None when none does (nothing to compare with)."""
    used = limit = Decimal(0)
    for container in (pod.spec.containers if pod.spec else None) or []:
        set_limits = (container.resources.limits if container.resources else None) or {}
        if resource in set_limits and container.name in usage:
            limit += parse_quantity(set_limits[resource])
            used += getattr(usage[container.name], resource)
    return float(100 * used / limit) if limit else None
