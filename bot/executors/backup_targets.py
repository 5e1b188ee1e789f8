"""The catalog's `backup:` blocks (postgres, mysql, redis, directory): the models only, so reading a catalog never
imports a backup executor or its client. The executors that act on them are `bot.executors.*_backup`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.env_names import EnvName
from bot.scheduling.cron import CronSchedule


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


class PostgresBackupTarget(ToolBackupTarget):
    """The catalog's `backup:` block for a PostgreSQL service."""

    type: Literal["postgres"]
    dsn_env: EnvName = Field(description="environment variable holding postgresql://user:pass@host:port/db")
    pg_dump: str = Field(default="pg_dump", min_length=1)
    pg_restore: str = Field(default="pg_restore", min_length=1)


class MysqlBackupTarget(ToolBackupTarget):
    """The catalog's `backup:` block for a MySQL or MariaDB database."""

    type: Literal["mysql"]
    dsn_env: EnvName = Field(description="environment variable holding mysql://user:pass@host:port/db")
    mysqldump: str = Field(default="mysqldump", min_length=1)
    mysql: str = Field(default="mysql", min_length=1)


class RedisBackupTarget(ToolBackupTarget):
    """The catalog's `backup:` block for a Redis server (the whole server: an RDB holds every database)."""

    type: Literal["redis"]
    url_env: EnvName = Field(description="environment variable holding redis://[user:pass@]host:port (rediss:// for TLS)")
    redis_cli: str = Field(default="redis-cli", min_length=1)


def _inside(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


class DirectoryBackupTarget(BackupTargetBase):
    """The catalog's `backup:` block for files on the bot's host (archived in-process: no tool, no timeout)."""

    type: Literal["directory"]
    paths: list[Path] = Field(min_length=1)

    @field_validator("paths")
    @classmethod
    def _absolute(cls, paths: list[Path]) -> list[Path]:
        for path in paths:
            if not path.is_absolute():
                raise ValueError(f"{path} is not an absolute path")
        return [Path(os.path.normpath(p)) for p in paths]

    @model_validator(mode="after")
    def _apart(self) -> DirectoryBackupTarget:
        # A restore replaces each path wholesale: nested paths would undo each other, and backups kept
        # inside a backed-up path would be deleted by restoring it.
        if not self.directory.is_absolute():
            raise ValueError(f"directory {self.directory} is not an absolute path")
        for i, path in enumerate(self.paths):
            if path == Path(path.anchor):
                raise ValueError(f"{path} is a filesystem root")
            for other in self.paths[i + 1:]:
                if _inside(path, other) or _inside(other, path):
                    raise ValueError(f"{path} and {other} overlap")
            if _inside(self.directory, path) or _inside(path, self.directory):
                raise ValueError(f"the backup directory {self.directory} overlaps {path}")
        return self
