"""Containers check: every container of a compose project (or carrying given labels) running, healthy and not
restarting over and over. Reads through docker-py only; acting on containers is the Docker executor's job.

Restarts are judged as growth of each container's restart count since a baseline an earlier run recorded
(`bot.checks._counts`), keyed by service, check and container.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from bot import adapters
from bot.checks._counts import baseline, times
from bot.checks.base import CheckDeps, CheckSpec, Probe, Status, Thresholds, limit_note
from bot.executors.docker_target import DockerTarget

if TYPE_CHECKING:
    from docker.models.containers import Container

PROJECT_LABEL = "com.docker.compose.project"


class ContainersCheck(CheckSpec):
    """Every matching container, stopped ones included, is running, healthy where it has a healthcheck and not
    restarting; restart-count growth since an earlier run is graded and named with its interval; containers removed
    while listing are skipped; fewer than `expect` running is critical."""

    type: Literal["containers"]
    project: str | None = Field(default=None, min_length=1, description="compose project (its containers' label)")
    labels: dict[str, str] | None = Field(default=None, description="or: every container carrying all of these")
    docker_host: str | None = Field(default=None, min_length=1,
                                    description="None: the service's docker target's, else DOCKER_HOST or the default")
    expect: int | None = Field(default=None, ge=1, description="at least this many containers running")
    restarts: Thresholds = Field(default=Thresholds(warning=1, critical=3),
                                 description="restarts of a container since an earlier run")

    @model_validator(mode="after")
    def _one_selector(self) -> ContainersCheck:
        if (self.project is None) == (self.labels is None):
            raise ValueError("give exactly one of `project` (a compose project) or `labels`")
        if self.labels is not None and not self.labels:
            raise ValueError("`labels` needs at least one label")
        return self

    @property
    def selector(self) -> dict[str, str]:
        return {PROJECT_LABEL: self.project} if self.project is not None else dict(self.labels or {})

    def default_label(self) -> str:
        return f"containers {self.project}" if self.project else "containers"

    def host(self, deps: CheckDeps) -> str | None:
        if self.docker_host:
            return self.docker_host
        return deps.target.docker_host if isinstance(deps.target, DockerTarget) else None

    async def probe(self, deps: CheckDeps) -> Probe:
        host = self.host(deps)
        # docker-py is imported only for a catalog with a containers check or a Docker target (`bot.adapters`).
        found: list[Container] | Probe = await adapters.module("bot.checks.containers_probe").found(self, host, deps)
        if isinstance(found, Probe):
            return found
        wanted = ", ".join(f"{key}={value}" for key, value in self.selector.items())
        if not found:
            return Probe(Status.CRITICAL, f"no containers labelled {wanted}")
        findings = [self._judge(container, deps) for container in found]
        running = sum(container.status == "running" for container in found)
        if self.expect is not None and running < self.expect:
            findings.append(Probe(Status.CRITICAL, f"only {running} running (expected at least {self.expect})"))
        problems = sorted((f for f in findings if f.status is not Status.OK), key=lambda f: -f.status.rank)
        if not problems:
            return Probe(Status.OK, f"{len(found)} container{'s' if len(found) != 1 else ''} running")
        return Probe.combine([*problems, Probe(Status.OK, f"{running} of {len(found)} running")])

    def _judge(self, container: Container, deps: CheckDeps) -> Probe:
        attrs: dict[str, Any] = container.attrs
        state = attrs.get("State") or {}
        name, status = container.name, state.get("Status") or container.status
        count = int(attrs.get("RestartCount") or 0)
        # By id: a container recreated under the same name (a deploy) starts counting again from 0.
        earlier = baseline(deps, ("containers", deps.service or "", self.label, str(container.id)), count)
        policy = (attrs.get("HostConfig") or {}).get("RestartPolicy") or {}
        gave_up = policy.get("Name") == "on-failure" and 0 < int(policy.get("MaximumRetryCount") or 0) <= count
        will_restart = policy.get("Name") in ("always", "unless-stopped", "on-failure") and not gave_up
        # Docker says "restarting" between a crash and the next start; podman says "stopped" (or "exited").
        between = status in ("exited", "stopped") and count > 0 and will_restart
        if status == "restarting" or state.get("Restarting") or between:
            return Probe(Status.CRITICAL, f"{name} is restarting (restarted {times(count)} so far)")
        if status in ("exited", "dead"):
            return Probe(Status.CRITICAL, f"{name} {status} (code {state.get('ExitCode')})")
        if status != "running":
            return Probe(Status.CRITICAL, f"{name} is {status}")
        health = (state.get("Health") or {}).get("Status") or ""
        if health == "unhealthy":
            streak = (state.get("Health") or {}).get("FailingStreak") or 0
            failed = f", its healthcheck failed {times(streak)} in a row" if streak else ""
            return Probe(Status.CRITICAL, f"{name} is unhealthy{failed}")
        grown = max(0, count - earlier.value) if earlier is not None else 0
        graded = self.restarts.grade(grown) if grown else Status.OK
        if graded is not Status.OK:
            assert earlier is not None
            interval = earlier.since(deps.clock.now())
            return Probe(graded, f"{name} restarted {times(grown)} in {interval}{limit_note(graded, self.restarts)}")
        if health == "starting":
            return Probe(Status.WARNING, f"{name} is running, its healthcheck still starting")
        return Probe(Status.OK, f"{name} running")
