"""The check kinds, keyed by the `type:` a catalog entry gives.

To add a kind: one module here with a `CheckSpec` subclass, then add it to `Check` below.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from bot.checks.backup_freshness import BackupFreshnessCheck
from bot.checks.base import CheckDeps, CheckSpec, Probe, Status, Thresholds
from bot.checks.containers import ContainersCheck
from bot.checks.disk import DiskCheck
from bot.checks.http import HttpCheck
from bot.checks.http_json import HttpJsonCheck
from bot.checks.kubernetes_pods import KubernetesPodsCheck
from bot.checks.log_errors import LogErrorsCheck
from bot.checks.memcached import MemcachedCheck
from bot.checks.memory import MemoryCheck
from bot.checks.mysql import MysqlCheck
from bot.checks.postgres import PostgresCheck
from bot.checks.prometheus import PrometheusCheck
from bot.checks.rabbitmq import RabbitmqCheck
from bot.checks.redis import RedisCheck
from bot.checks.sql import SqlCheck
from bot.checks.tcp import TcpCheck

Check = Annotated[
    (HttpCheck | TcpCheck | PostgresCheck | RedisCheck | DiskCheck
     | HttpJsonCheck | MemoryCheck | PrometheusCheck | BackupFreshnessCheck
     | ContainersCheck | LogErrorsCheck | KubernetesPodsCheck
     | SqlCheck | MysqlCheck | MemcachedCheck | RabbitmqCheck),
    Field(discriminator="type"),
]

__all__ = ["Check", "CheckDeps", "CheckSpec", "Probe", "Status", "Thresholds"]
