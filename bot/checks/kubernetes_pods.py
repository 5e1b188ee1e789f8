"""Kubernetes-pods check: the service's deployment's pods (or those a selector picks) running and ready, not
restarting within a window, and optionally their CPU and memory against their limits (metrics.k8s.io).

Reading the cluster is `bot.executors.kubernetes_pods`; this module only judges what it reads.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from bot.checks.base import CheckDeps, CheckSpec, Probe, Status, Thresholds, limit_note
from bot.executors.base import ExecutorError, TargetNotFound

if TYPE_CHECKING:
    from kubernetes.client import V1Pod

    from bot.executors.kubernetes_pods import Usage

SELECTOR = r"^[A-Za-z0-9_./!=, -]+$"  # equality-based label selectors: a=b, a!=b, a, !a; comma-separated


class KubernetesPodsCheck(CheckSpec):
    type: Literal["kubernetes-pods"]
    selector: str | None = Field(default=None, max_length=500, pattern=SELECTOR,
                                 description="label selector; None: the deployment's own pods")
    min_ready: int | None = Field(default=None, ge=0,
                                  description="None: the deployment's replicas (1 with a selector)")
    restarts: Thresholds = Thresholds(warning=1, critical=3)
    window_minutes: float = Field(default=60, gt=0, le=60 * 24 * 31)
    cpu_percent: Thresholds | None = None
    memory_percent: Thresholds | None = None

    def default_label(self) -> str:
        return f"pods {self.selector}" if self.selector else "pods"

    def catalog_errors(self, service: str, catalog: Any) -> list[str]:
        if getattr(catalog.services[service].target, "type", None) != "kubernetes":
            needs = "(api_url, token_env, namespace)"
            return [f"kubernetes-pods needs the service's `target:` to be a kubernetes deployment {needs}"]
        return []

    async def probe(self, deps: CheckDeps) -> Probe:
        if getattr(deps.target, "type", None) != "kubernetes":
            return Probe(Status.ERROR, f"service {deps.service} has no kubernetes target")
        # Imported here: the Kubernetes executor imports bot.checks.base, which loads every check kind.
        from bot.executors.kubernetes_pods import KubernetesPods

        reader = KubernetesPods(deps.target, deps.environ, deps.clock)
        wants_usage = self.cpu_percent is not None or self.memory_percent is not None
        try:
            pods, replicas = await reader.pods(self.selector)
            usage = await reader.usage() if wants_usage and pods else {}
        except TargetNotFound as exc:
            return Probe(Status.CRITICAL, str(exc))
        except ExecutorError as exc:
            return Probe(Status.CRITICAL, str(exc).removeprefix("Could not ").rstrip("."))
        finally:
            await reader.close()
        return self._judge(pods, replicas, usage, deps.clock.now())

    def _judge(self, pods: list[V1Pod], replicas: int | None, usage: dict[str, dict[str, Usage]] | None,
               now: datetime) -> Probe:
        minimum = self.min_ready if self.min_ready is not None else (replicas if replicas is not None else 1)
        findings: list[tuple[Status, str]] = []
        ready = 0
        for pod in pods:
            problem = _not_ready(pod)
            if problem is None:
                ready += 1
            else:
                findings.append((Status.WARNING, problem))
        if ready < minimum:
            findings = [(Status.CRITICAL, text) for _, text in findings]
        findings += self._restarts(pods, now)
        notes = self._usage(pods, usage, findings)
        noun = "pod" if len(pods) == 1 else "pods"
        summary = f"{ready} of {len(pods)} {noun} ready"
        if ready < minimum:
            findings.append((Status.CRITICAL, f"{summary} (minimum {minimum})"))
            summary = ""
        elif not pods:
            summary = "no pods (scaled to 0)"
        worst = Status.worst([status for status, _ in findings])
        ordered = [text for _, text in sorted(findings, key=lambda f: -f[0].rank)]
        return Probe(worst, "; ".join(part for part in [*ordered, summary, *notes] if part))

    def _restarts(self, pods: list[V1Pod], now: datetime) -> list[tuple[Status, str]]:
        since = now - timedelta(minutes=self.window_minutes)
        counted: list[tuple[str, int, datetime]] = []
        for pod in pods:
            for container in (pod.status.container_statuses if pod.status else None) or []:
                last = container.last_state.terminated if container.last_state else None
                # kubectl's "RESTARTS 5 (3m ago)": the count, when the last one falls inside the window.
                if container.restart_count and last is not None and last.finished_at and last.finished_at >= since:
                    counted.append((f"{pod.metadata.name}/{container.name}", container.restart_count,
                                    last.finished_at))
        total = sum(count for _, count, _ in counted)
        status = self.restarts.grade(total)
        if status is Status.OK:
            return []
        parts = [f"{name} restarted {_times(count)}, last {_ago(now - at)} ago" for name, count, at in counted]
        window = f"{self.window_minutes:g} min"
        limit = limit_note(status, self.restarts).strip()[1:-1]
        return [(status, ", ".join(parts) + f" (within {window}; {limit})")]

    def _usage(self, pods: list[V1Pod], usage: dict[str, dict[str, Usage]] | None,
               findings: list[tuple[Status, str]]) -> list[str]:
        """Grade each pod's CPU and memory against its limits into `findings`; return notes for the reason."""
        if usage is None:
            return ["metrics.k8s.io is not served here: CPU and memory not judged"]
        # Imported here for the reason given in probe().
        from bot.executors.kubernetes_pods import share

        notes = []
        for resource, word, limits in (("cpu", "CPU", self.cpu_percent), ("memory", "memory", self.memory_percent)):
            if limits is None:
                continue
            shares = {pod.metadata.name: share(pod, usage.get(pod.metadata.name, {}), resource) for pod in pods}
            known = {name: value for name, value in shares.items() if value is not None}
            if not known:
                notes.append(f"no {word} limits (or no metrics) to compare with")
                continue
            for name, value in known.items():
                status = limits.grade(value)
                if status is not Status.OK:
                    note = limit_note(status, limits, " %")
                    findings.append((status, f"{name} {word} at {value:.0f} % of its limit{note}"))
            notes.append(f"{word} at most {max(known.values()):.0f} % of limits")
        return notes


def _not_ready(pod: V1Pod) -> str | None:
    """Why the pod is not running and ready, in kubectl's words; None when it is."""
    status, name = pod.status, pod.metadata.name
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


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def _ago(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min"
