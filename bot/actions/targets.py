"""Which executor acts on a service: built from the service's `target:` and `backup:` in the catalog."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.actions.models import ActionKind
from bot.context import Context
from bot.errors import OpsbotError
from bot.executors.base import Backups, Workload

if TYPE_CHECKING:
    from bot.catalog import BackupTarget


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


def workload_for(ctx: Context, service: str, kind: ActionKind) -> Workload:
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


def backup_target(ctx: Context, service: str, kind: ActionKind) -> BackupTarget:
    """The service's `backup:`; NoTarget when it has none."""
    target = ctx.catalog.service(service).backup
    if target is None:
        raise NoTarget(service, kind)
    return target


def backups_for(ctx: Context, service: str, kind: ActionKind) -> Backups:
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
