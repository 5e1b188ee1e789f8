"""Read-only looks at a Kubernetes target's pods and what metrics.k8s.io says they use, for the kubernetes-pods check.

Uses the Kubernetes executor's client, configuration and error handling; never changes anything in the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kubernetes.client import CoreV1Api, CustomObjectsApi, V1Pod
from kubernetes.client.exceptions import ApiException
from kubernetes.utils.quantity import parse_quantity

from bot.executors.kubernetes import REQUEST_TIMEOUT, KubernetesWorkload, _meta


@dataclass(frozen=True)
class Usage:
    """What one pod uses now (all its containers): CPU in cores, memory in bytes."""

    cpu: Decimal
    memory: Decimal


class KubernetesPods(KubernetesWorkload):
    """The target deployment's pods (or those a label selector picks) and their usage. Only reads."""

    async def pods(self, selector: str | None = None) -> tuple[list[V1Pod], int | None]:
        """The pods by name, and the replicas the deployment asks for (None when `selector` picks the pods)."""
        if selector is None:
            deployment = await self._read()
            replicas = deployment.spec.replicas if deployment.spec else None
            return await self._pods(deployment), 1 if replicas is None else int(replicas)
        namespace = self._target.namespace
        listed = await self._call(
            f"list the pods matching {selector} in namespace {namespace}",
            lambda core: core.list_namespaced_pod(namespace, label_selector=selector,
                                                  _request_timeout=REQUEST_TIMEOUT),
            api="core", subject=f"namespace {namespace}")
        return sorted(listed.items, key=lambda pod: str(_meta(pod).name)), None

    async def usage(self) -> dict[str, dict[str, Usage]] | None:
        """Pod name → container name → usage, from metrics.k8s.io for the namespace; None when the cluster does not
        serve that API (no metrics-server: the API server answers 404)."""
        namespace = self._target.namespace

        def read(core: CoreV1Api) -> dict[str, Any] | None:
            try:
                return CustomObjectsApi(core.api_client).list_namespaced_custom_object(
                    "metrics.k8s.io", "v1beta1", namespace, "pods", _request_timeout=REQUEST_TIMEOUT)
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise

        listed = await self._call(f"read the pod metrics of namespace {namespace}", read, api="core")
        if listed is None:
            return None
        return {str((item.get("metadata") or {}).get("name")): {
                    str(c.get("name")): Usage(cpu=parse_quantity((c.get("usage") or {}).get("cpu", "0")),
                                              memory=parse_quantity((c.get("usage") or {}).get("memory", "0")))
                    for c in item.get("containers") or []}
                for item in listed.get("items") or []}


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
