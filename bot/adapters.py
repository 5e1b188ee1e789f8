"""Which adapter modules (and so which client libraries) a catalog needs, imported when the catalog names their kind.

Reading a catalog imports only the models; the code that talks to Redis, Kubernetes, Docker, RabbitMQ, memcached, MySQL,
PostgreSQL (checks; the store's backend is picked by `bot.store.create_store`) or the host's memory lives in the modules
below and is imported by `load` at start-up (the composition root), for the check kinds and target types the catalog
uses (and Redis when REDIS_URL is set), so a replica without a Kubernetes target never holds the Kubernetes client.
Runbook steps name their kind too (`step:<kind>`). Not responsible for what the modules do; `module` hands one to its
caller (importing it if a path outside the composition root, such as `opsbot check-config` or a test, reaches it
first). Some libraries load on first use through `module` instead, since whether they are needed shows only once the
catalog is read or a request comes: Jinja2 (bot/incidents/templates.py), croniter (bot/scheduling/cron.py), and
ctypes for start-up's last step (bot/app.py `settle_heap`).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from types import MappingProxyType, ModuleType

# A check kind (`check:<type>`), a target type (`target:<type>`), a runbook step kind (`step:<kind>`) or a setting in
# use (`settings:<name>`) → the modules that hold its library code.
MODULES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "settings:redis": ("bot.redis_locks",),  # REDIS_URL is set: leases on Redis
    "check:redis": ("bot.checks.redis_probe",),
    "check:rabbitmq": ("bot.checks.rabbitmq_probe",),
    "check:memcached": ("bot.checks.memcached_probe",),
    "check:containers": ("bot.checks.containers_probe",),
    "check:postgres": ("bot.checks.postgres_probe",),
    "check:mysql": ("bot.checks.mysql_probe",),
    # Its DSN may name either engine, or come from the environment at run time: both clients are ready.
    "check:sql": ("bot.checks.mysql_probe", "bot.checks.postgres_probe"),
    "check:memory": ("psutil",),
    "check:log-errors": (),  # its target's executor (below) reads the logs
    "check:kubernetes-pods": ("bot.executors.kubernetes", "bot.executors.kubernetes_pods"),
    "target:docker": ("bot.executors.docker",),
    "step:sql": ("bot.executors.databases",),
    "step:terminate-queries": ("bot.executors.databases",),
    "step:flush-cache": ("bot.executors.caches",),
    "target:kubernetes": ("bot.executors.kubernetes", "bot.executors.kubernetes_pods"),
})


def needed(kinds: Iterable[str]) -> list[str]:
    """The modules for `kinds` (`check:<type>` / `target:<type>`), each once, in a stable order."""
    return sorted({name for kind in kinds for name in MODULES.get(kind, ())})


def load(kinds: Iterable[str]) -> list[str]:
    """Import the modules `kinds` need (at start-up, so no request pays for an import); returns their names."""
    names = needed(kinds)
    for name in names:
        importlib.import_module(name)
    return names


def module(name: str) -> ModuleType:
    """An adapter module by name: already imported by `load` when the catalog names its kind."""
    return importlib.import_module(name)
