"""The check kinds, keyed by the `type:` a catalog entry gives, each imported only when a catalog names it
(`bot.catalog_kinds` builds the catalog's union of them).

To add a kind: one module here with a `CheckSpec` subclass, then a line in `KINDS` below.
"""

from __future__ import annotations

import importlib

from bot.checks.base import CheckDeps, CheckSpec, Probe, Status, Thresholds

# type → (module beside this one, its model). The order is the one the catalog's errors list them in.
KINDS: dict[str, tuple[str, str]] = {
    "http": ("http", "HttpCheck"),
    "tcp": ("tcp", "TcpCheck"),
    "postgres": ("postgres", "PostgresCheck"),
    "redis": ("redis", "RedisCheck"),
    "disk": ("disk", "DiskCheck"),
    "http-json": ("http_json", "HttpJsonCheck"),
    "memory": ("memory", "MemoryCheck"),
    "prometheus": ("prometheus", "PrometheusCheck"),
    "backup-freshness": ("backup_freshness", "BackupFreshnessCheck"),
    "containers": ("containers", "ContainersCheck"),
    "log-errors": ("log_errors", "LogErrorsCheck"),
    "kubernetes-pods": ("kubernetes_pods", "KubernetesPodsCheck"),
    "sql": ("sql", "SqlCheck"),
    "mysql": ("mysql", "MysqlCheck"),
    "memcached": ("memcached", "MemcachedCheck"),
    "rabbitmq": ("rabbitmq", "RabbitmqCheck"),
}


def model(kind: str) -> type[CheckSpec]:
    """The model of one check `type:`, its module imported on first use; KeyError for a type no kind has."""
    module, name = KINDS[kind]
    found: type[CheckSpec] = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    return found


__all__ = ["KINDS", "CheckDeps", "CheckSpec", "Probe", "Status", "Thresholds", "model"]
