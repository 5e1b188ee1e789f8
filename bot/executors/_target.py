"""What every backup kind's `backup:` catalog block shares (where files go, retention, schedule, tool timeout,
environment variable names), and deleting one backup file within its directory. Each kind adds its own fields."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from bot.executors.base import Artifact, Effect, ExecutorError, TargetState
from bot.scheduling.cron import CronSchedule

FILE_LEFT = TargetState("nothing was changed; the backup file was left as it is", Effect.UNTOUCHED)


def _env_name(value: str) -> str:
    # Imported here, not at the top: the bot.checks package imports the database executors, which import this.
    from bot.checks.base import ENV_NAME

    if not re.match(ENV_NAME, value):
        raise ValueError(f"{value!r} is not an environment variable name")
    return value


# The name of an environment variable that holds a secret (a DSN, a URL with a password): never the value.
EnvName = Annotated[str, AfterValidator(_env_name)]


class BackupTargetBase(BaseModel):
    """Where the backups of a service are kept, how long, and when the scheduler takes one."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    directory: Path
    retention_days: int = Field(default=30, ge=1)
    keep_min: int = Field(default=3, ge=1)
    schedule: CronSchedule | None = Field(default=None, description="when the scheduler takes a backup, e.g. \"0 2 * * *\"")


class ToolBackupTarget(BackupTargetBase):
    """A backup taken by an external program (pg_dump, mysqldump, redis-cli), stopped after `timeout` seconds."""

    timeout: float = Field(default=3600, gt=0)


def within(path: Path, directory: Path) -> bool:
    return path.resolve().parent == directory.resolve()


async def delete_within(directory: Path, artifact: Artifact) -> None:
    """Remove a backup file (already gone is fine), refusing one outside `directory`: retention hands in paths
    from the store, and a wrong row must not delete some other file."""
    if not within(artifact.path, directory):
        raise ExecutorError(f"{artifact.path} is not in {directory}; not deleted", state=FILE_LEFT.text,
                            effect=FILE_LEFT.effect)
    await asyncio.to_thread(artifact.path.unlink, missing_ok=True)
