"""Which executor acts on a service, built from the service's `target:` and `backup:` in the catalog, and which
capabilities (`bot.executors.base`) each target type offers — the one place that knows target types.

Not responsible for what the executors do, nor for which step needs what (each step kind's traits say).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

from bot.errors import OpsbotError
from bot.executors.base import (
    Backups,
    ConfigValues,
    DeployHistory,
    Deploys,
    Effect,
    Execs,
    ExecutorError,
    Logs,
    PreviewsScale,
    Prunes,
    Recreates,
    Restarts,
    RollsBack,
    Scales,
    StartsStops,
    Workload,
)
from bot.runs.models import ActionKind

if TYPE_CHECKING:
    from bot.catalog import BackupTarget, Catalog
    from bot.clock import Clock
    from bot.executors.demo import DemoWorkloads

# What each target type's executor can do. Read at catalog load (so a step a target cannot take is refused before
# anything runs) without importing the client libraries; tests/test_step_kinds.py holds it to the real classes.
CAPABILITIES: Mapping[str, frozenset[type]] = {
    "docker": frozenset({Restarts, RollsBack, Deploys, Scales, StartsStops, Logs, Execs, PreviewsScale, Recreates,
                         Prunes}),
    "kubernetes": frozenset({Restarts, RollsBack, Deploys, Scales, Logs, ConfigValues, Execs}),
    "demo": frozenset({Restarts, RollsBack, Deploys, Scales, Logs}),
}
CAPABILITY_WORDS: Mapping[type, str] = {
    Restarts: "restart", RollsBack: "roll back", Deploys: "deploy an image", Scales: "scale",
    StartsStops: "start and stop", Logs: "read logs", ConfigValues: "set ConfigMap values",
    Execs: "run a command inside a container", PreviewsScale: "say what a scale would change",
    Recreates: "recreate its containers from a fresh pull of their image",
    Prunes: "prune unused images, containers and volumes from its host",
}


class TargetDeps(Protocol):
    """What building an executor reads (the bot's `Context` has it all)."""

    @property
    def catalog(self) -> Catalog: ...

    @property
    def store(self) -> DeployHistory: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def environ(self) -> Mapping[str, str]: ...

    @property
    def demo_workloads(self) -> DemoWorkloads | None: ...


class NoTarget(OpsbotError):
    def __init__(self, service: str, kind: ActionKind) -> None:
        stored = kind in (ActionKind.BACKUP, ActionKind.RESTORE)
        key, kinds = ("backup", "postgres, mysql, redis or directory") if stored else ("target", "docker, kubernetes or demo")
        super().__init__(
            f"`{service}` cannot be {_past(kind)} by opsbot: its catalog entry has no `{key}:` ({kinds}). "
            f"Add one under services.{service} and restart the bot."
        )


def _past(kind: ActionKind) -> str:
    return {"restart": "restarted", "backup": "backed up", "restore": "restored", "rollback": "rolled back"}[kind.value]


class DemoAppsAbsent(OpsbotError):
    """A `demo` target, in a process that runs no demo apps (`opsbot serve`)."""

    def __init__(self, service: str) -> None:
        super().__init__(
            f"`{service}`'s target is a demo app, which only `opsbot dev` runs. Give services.{service} a docker "
            "or kubernetes `target:` to act on it here."
        )


def offers(target_type: str, capability: type) -> bool:
    return capability in CAPABILITIES.get(target_type, frozenset())


def words(capability: type) -> str:
    return CAPABILITY_WORDS.get(capability, capability.__name__)


def where(deps: TargetDeps, service: str | None) -> str:
    """The service's target as a plan line ends: " (Docker container api)"; "" when it has none."""
    target = deps.catalog.services[service].target if service is not None else None
    if target is None:
        return ""
    if target.type == "docker":
        return f" (Docker {target.subject})"
    if target.type == "demo":
        return f" ({target.subject})"
    return f" (Kubernetes {target.subject})"


def workload_for(ctx: TargetDeps, service: str, kind: ActionKind) -> Workload:
    target = ctx.catalog.service(service).target
    if target is None:
        raise NoTarget(service, kind)
    if target.type == "demo":
        if ctx.demo_workloads is None:
            raise DemoAppsAbsent(service)
        return ctx.demo_workloads.workload(service, target)
    if target.type == "docker":
        from bot.executors.docker import DockerWorkload

        return DockerWorkload(service, target, ctx.store, ctx.clock)
    from bot.executors.kubernetes import KubernetesWorkload

    return KubernetesWorkload(target, ctx.environ, ctx.clock)


@asynccontextmanager
async def capable(deps: TargetDeps, service: str, *capabilities: type) -> AsyncIterator[Any]:
    """The service's workload, checked to offer one of `capabilities` (the caller annotates which it uses), closed
    afterwards. Catalog validation refuses a step whose target lacks it, so this failing means a changed catalog."""
    workload = workload_for(deps, service, ActionKind.RESTART)
    try:
        if not any(isinstance(workload, capability) for capability in capabilities):
            wanted = " or ".join(words(c) for c in capabilities)
            raise ExecutorError(f"{service}'s target cannot {wanted}", state="unchanged: nothing was done",
                                effect=Effect.UNTOUCHED)
        yield workload
    finally:
        await close(workload)


def backup_target(ctx: TargetDeps, service: str, kind: ActionKind) -> BackupTarget:
    """The service's `backup:`; NoTarget when it has none."""
    target = ctx.catalog.service(service).backup
    if target is None:
        raise NoTarget(service, kind)
    return target


def backups_for(ctx: TargetDeps, service: str, kind: ActionKind) -> Backups:
    target = backup_target(ctx, service, kind)
    if target.type == "postgres":
        from bot.executors.postgres_backup import PostgresBackups

        return PostgresBackups(service, target, ctx.environ, ctx.clock)
    if target.type == "mysql":
        from bot.executors.mysql_backup import MysqlBackups

        return MysqlBackups(service, target, ctx.environ, ctx.clock)
    if target.type == "redis":
        from bot.executors.redis_backup import (
            NOT_TOUCHED,
            RedisBackups,
            RestoreUnsupported,
            manual_restore,
        )

        if kind is ActionKind.RESTORE:
            # Refused here, before any plan, approval or safety backup: the actions flow and runbook restore
            # steps both ask for the executor first.
            raise RestoreUnsupported(manual_restore(None, target.directory), state=NOT_TOUCHED.text,
                                     effect=NOT_TOUCHED.effect)
        return RedisBackups(service, target, ctx.environ, ctx.clock)
    from bot.executors.directory_backup import DirectoryBackups

    return DirectoryBackups(service, target, ctx.clock)


async def close(executor: object) -> None:
    """Executors that hold a client (Docker, Kubernetes) expose `close()`."""
    closer = getattr(executor, "close", None)
    if closer is not None:
        await closer()
