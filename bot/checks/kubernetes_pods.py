"""Kubernetes-pods check: the service's deployment's pods (or those a selector picks) running and ready, not
restarting, and optionally their CPU and memory against their limits and the nodes' against their allocatable
(metrics.k8s.io).

Restarts are judged as growth of each container's restart count since a baseline an earlier run recorded
(`bot.checks._counts`); a container seen for the first time counts once if its last restart falls in the window.
Pods that belong to no deployment (a StatefulSet's postgres-0) are checked with `selector:` and the check's own
`namespace`/`api_url`/`token_env`, read exactly as a kubernetes target's. Reading the cluster is
`bot.executors.kubernetes_pods`; this module only judges what it reads.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.checks._counts import ago, baseline, plural
from bot.checks._percent import PercentThresholds
from bot.checks.base import (
    CheckDeps,
    CheckSpec,
    Probe,
    Status,
    Thresholds,
    limit_note,
    percent,
)
from bot.executors.base import ExecutorError, TargetNotFound
from bot.executors.kubernetes_target import KubernetesTarget

if TYPE_CHECKING:
    from kubernetes.client import V1Pod

    from bot.executors.kubernetes_pods import NodeUsage, Usage

SELECTOR = r"^[A-Za-z0-9_./!=, -]+$"  # equality-based label selectors: a=b, a!=b, a, !a; comma-separated
OWN_TARGET = ("namespace", "api_url", "token_env", "verify_tls")  # a kubernetes target's fields the check may carry
NO_DEPLOYMENT = "pods"  # what the own target names as its deployment: never read, a selector picks the pods


class NodeLimits(BaseModel):
    """Each node's usage (metrics.k8s.io) against its allocatable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    cpu_percent: PercentThresholds | None = None
    memory_percent: PercentThresholds | None = None

    @model_validator(mode="after")
    def _something(self) -> NodeLimits:
        if self.cpu_percent is None and self.memory_percent is None:
            raise ValueError("give `cpu_percent`, `memory_percent` or both")
        return self


class KubernetesPodsCheck(CheckSpec):
    """Each pod Running and Ready; fewer ready than `min_ready` is critical. Restarts since an earlier run ("3
    restarts in the last 12 min"); on a first run, 1 per container whose last restart is within `window_minutes`
    ("40 restarts in total, the last 10 min ago"). Pod (of limits) and node (of allocatable) CPU and memory from
    metrics.k8s.io when asked; metrics unavailable (404, 503, 403) are noted, not failed. Without a kubernetes
    target (a StatefulSet's pods): `selector` plus `namespace`, `api_url`, `token_env`, `verify_tls`, read as a
    kubernetes target's are."""

    type: Literal["kubernetes-pods"]
    selector: str | None = Field(default=None, max_length=500, pattern=SELECTOR,
                                 description="label selector; None: the deployment's own pods")
    min_ready: int | None = Field(default=None, ge=0,
                                  description="None: the deployment's replicas (1 with a selector)")
    restarts: Thresholds = Field(default=Thresholds(warning=1, critical=3),
                                 description="restarts since an earlier run (first run: 1 a container restarted within "
                                             "window_minutes)")
    window_minutes: float = Field(default=60, gt=0, le=60 * 24 * 31)
    cpu_percent: PercentThresholds | None = None
    memory_percent: PercentThresholds | None = None
    nodes: NodeLimits | None = None
    # Only for a service without a kubernetes target; validated by KubernetesTarget itself (see _own_target).
    namespace: str | None = None
    api_url: str | None = None
    token_env: str | None = None
    verify_tls: bool | None = None

    @model_validator(mode="after")
    def _target_fields(self) -> KubernetesPodsCheck:
        if any(getattr(self, name) is not None for name in OWN_TARGET):
            self.own_target()
        return self

    def own_target(self) -> KubernetesTarget:
        """The check's own `namespace`/`api_url`/`token_env`/`verify_tls` as a kubernetes target, with its defaults and
        validation (so they mean exactly what a target's do)."""
        given = {name: getattr(self, name) for name in OWN_TARGET if getattr(self, name) is not None}
        try:
            return KubernetesTarget(type="kubernetes", deployment=NO_DEPLOYMENT, **given)
        except ValidationError as exc:
            raise ValueError("; ".join(f"{'.'.join(str(part) for part in error['loc'])}: "
                                       f"{error['msg'].removeprefix('Value error, ')}"
                                       for error in exc.errors())) from None

    def default_label(self) -> str:
        return f"pods {self.selector}" if self.selector else "pods"

    def secret_envs(self) -> list[str]:
        return [self.token_env] if self.token_env else []

    def catalog_errors(self, service: str, catalog: Any) -> list[str]:
        own = [name for name in OWN_TARGET if getattr(self, name) is not None]
        if getattr(catalog.services[service].target, "type", None) == "kubernetes":
            if own:
                return [(f"{', '.join(own)}: the service's kubernetes target says where its pods are; give them "
                        "only for a service without one")]
            return []
        if self.selector is None:
            return [("kubernetes-pods needs the service's `target:` to be a kubernetes deployment, or a `selector:` "
                    "(with `namespace`, `api_url`, `token_env` as a kubernetes target's)")]
        return []

    async def probe(self, deps: CheckDeps) -> Probe:
        if getattr(deps.target, "type", None) == "kubernetes":
            target = deps.target
        elif self.selector is not None:
            target = self.own_target()
        else:
            return Probe(Status.ERROR, f"service {deps.service} has no kubernetes target")
        # Imported here, not at the top: it loads the Kubernetes client, which only a catalog with this check needs.
        from bot.executors.kubernetes_pods import KubernetesPods, Unavailable

        reader = KubernetesPods(target, deps.environ, deps.clock)
        wants_usage = self.cpu_percent is not None or self.memory_percent is not None
        notes: list[str] = []
        usage: dict[str, dict[str, Usage]] | None = None
        nodes: list[NodeUsage] | None = None
        try:
            pods, replicas = await reader.pods(self.selector)
            if wants_usage and pods:
                try:
                    usage = await reader.usage()
                except Unavailable as exc:
                    notes.append(f"{exc}: CPU and memory not judged")
            if self.nodes is not None:
                try:
                    nodes = await reader.nodes()
                except Unavailable as exc:
                    notes.append(f"{exc}: node usage not judged")
        except TargetNotFound as exc:
            return Probe(Status.CRITICAL, str(exc))
        except ExecutorError as exc:
            return Probe(Status.CRITICAL, str(exc).removeprefix("Could not ").rstrip("."))
        finally:
            await reader.close()
        return self._judge(pods, replicas, usage, nodes, notes, deps)

    def _judge(self, pods: list[V1Pod], replicas: int | None, usage: dict[str, dict[str, Usage]] | None,
               nodes: list[NodeUsage] | None, notes: list[str], deps: CheckDeps) -> Probe:
        minimum = self.min_ready if self.min_ready is not None else (replicas if replicas is not None else 1)
        ready, not_ready = 0, []
        for pod in pods:
            problem = _not_ready(pod)
            if problem is None:
                ready += 1
            else:
                not_ready.append(problem)
        short = ready < minimum
        findings = [Probe(Status.CRITICAL if short else Status.WARNING, text) for text in not_ready]
        restarts = self._restarts(pods, deps)
        if restarts is not None:
            findings.append(restarts)
        usage_notes = self._usage(pods, usage, findings) if usage is not None else []
        node_notes = self._nodes(nodes, findings) if nodes is not None else []
        noun = "pod" if len(pods) == 1 else "pods"
        summary = f"{ready} of {len(pods)} {noun} ready"
        if short:
            findings.append(Probe(Status.CRITICAL, f"{summary} (minimum {minimum})"))
            summary = ""
        elif not pods:
            summary = "no pods (scaled to 0)"
        ordered = sorted(findings, key=lambda finding: -finding.status.rank)
        return Probe.combine([*ordered, *(Probe(Status.OK, text) for text in
                                         [summary, *usage_notes, *node_notes, *notes] if text)])

    def _restarts(self, pods: list[V1Pod], deps: CheckDeps) -> Probe | None:
        """Restarts since an earlier run, per container; on a container's first run, 1 if its last restart falls
        within the window (its restart count is for its whole life, so it cannot tell when the others were)."""
        now = deps.clock.now()
        since = now - timedelta(minutes=self.window_minutes)
        parts, total, first_seen = [], 0, False
        for pod in pods:
            for container in (pod.status.container_statuses if pod.status else None) or []:
                count = int(container.restart_count or 0)
                name = f"{_pod_name(pod)}/{container.name}"
                uid = pod.metadata.uid if pod.metadata else None
                key = ("kubernetes-pods", deps.service or "", self.label, str(uid or _pod_name(pod)), container.name)
                earlier = baseline(deps, key, count)
                if earlier is not None:
                    grown = count - earlier.value if count >= earlier.value else count
                    if grown:
                        total += grown
                        parts.append(f"{name}: {plural(grown, 'restart')} in {earlier.since(now)}")
                    continue
                last = container.last_state.terminated if container.last_state else None
                finished = last.finished_at if last is not None else None
                if count and finished is not None and finished >= since:
                    total, first_seen = total + 1, True
                    parts.append(f"{name}: {plural(count, 'restart')} in total, the last {ago(now - finished)} ago")
        status = self.restarts.grade(total)
        if status is Status.OK:
            return None
        limit = limit_note(status, self.restarts).strip()[1:-1]
        counted = f"{total} within {self.window_minutes:g} min; " if first_seen else ""
        return Probe(status, ", ".join(parts) + f" ({counted}{limit})")

    def _usage(self, pods: list[V1Pod], usage: dict[str, dict[str, Usage]], findings: list[Probe]) -> list[str]:
        """Grade each pod's CPU and memory against its limits into `findings`; return notes for the reason."""
        # Imported here for the reason given in probe(): the Kubernetes client.
        from bot.executors.kubernetes_pods import share

        notes = []
        for resource, word, limits in (("cpu", "CPU", self.cpu_percent), ("memory", "memory", self.memory_percent)):
            if limits is None:
                continue
            shares = {_pod_name(pod): share(pod, usage.get(_pod_name(pod), {}), resource) for pod in pods}
            known = {name: value for name, value in shares.items() if value is not None}
            if not known:
                notes.append(f"no {word} limits (or no metrics) to compare with")
                continue
            for name, value in known.items():
                status = limits.grade(value)
                if status is not Status.OK:
                    note = limit_note(status, limits, " %")
                    findings.append(Probe(status, f"{name} {word} at {value:.0f} % of its limit{note}"))
            notes.append(f"{word} at most {max(known.values()):.0f} % of limits")
        return notes

    def _nodes(self, nodes: list[NodeUsage], findings: list[Probe]) -> list[str]:
        """Grade each node's CPU and memory against its allocatable into `findings`; return a note for the reason."""
        assert self.nodes is not None
        if not nodes:
            return ["no node metrics to compare with"]
        most = []
        for resource, word, limits in (("cpu", "CPU", self.nodes.cpu_percent),
                                       ("memory", "memory", self.nodes.memory_percent)):
            if limits is None:
                continue
            values = {node.name: percent(float(getattr(node.used, resource)), float(getattr(node.allocatable, resource)))
                      for node in nodes}
            for name, value in values.items():
                status = limits.grade(value)
                if status is not Status.OK:
                    note = limit_note(status, limits, " %")
                    findings.append(Probe(status, f"node {name} {word} at {value:.0f} % of allocatable{note}"))
            most.append(f"{word} at most {max(values.values()):.0f} %")
        return [f"nodes: {', '.join(most)} of allocatable"]


def _pod_name(pod: V1Pod) -> str:
    """A listed pod always has metadata with a name; the client's models type both as optional."""
    return (pod.metadata.name if pod.metadata else None) or ""


def _not_ready(pod: V1Pod) -> str | None:
    """Why the pod is not running and ready, in kubectl's words; None when it is."""
    status, name = pod.status, _pod_name(pod)
    phase = (status.phase if status else None) or "Unknown"
    ready = any(c.type == "Ready" and c.status == "True" for c in (status.conditions if status else None) or [])
    if phase == "Running" and ready:
        return None
    why = []
    for container in (status.container_statuses if status else None) or []:
        state = container.state
        if state and state.waiting and state.waiting.reason:
            why.append(f"{container.name}: {state.waiting.reason}")
        elif state and state.terminated:
            code = state.terminated.exit_code
            why.append(f"{container.name}: {state.terminated.reason or 'terminated'} (code {code})")
    detail = f" ({', '.join(why)})" if why else ""
    if phase == "Failed":
        return f"{name} failed{detail or (' (' + status.reason + ')' if status and status.reason else '')}"
    if phase == "Running":
        return f"{name} running but not ready{detail}"
    return f"{name} {phase.lower()}{detail}"
