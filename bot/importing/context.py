"""What the whole runbook says about its services, for reading one command: the application, which service runs
which database, the compose project and the Kubernetes namespace; and which service a URL or a host means.

Built from a first reading of the file (`draft`); not responsible for naming one command's service (`services`).
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bot.importing.services import Resolved, Services

# Ports a service listens on by default: `curl localhost:11434` is Ollama unless the runbook says otherwise.
WELL_KNOWN_PORTS: Mapping[int, str] = {
    5432: "postgres", 3306: "mysql", 6379: "redis", 11211: "memcached", 5672: "rabbitmq", 15672: "rabbitmq",
    9090: "prometheus", 9093: "alertmanager", 3000: "grafana", 9200: "elasticsearch", 5601: "kibana",
    9000: "minio", 11434: "ollama", 27017: "mongodb", 8500: "consul", 2379: "etcd", 9092: "kafka",
}
# Services a team runs but does not write: a command naming one of them is not about "the application".
INFRASTRUCTURE = frozenset({
    "postgres", "postgresql", "pg", "db", "database", "mysql", "mariadb", "redis", "memcached", "rabbitmq", "nginx",
    "traefik", "caddy", "haproxy", "minio", "ollama", "prometheus", "alertmanager", "grafana", "elasticsearch",
    "kibana", "logstash", "mongodb", "mongo", "kafka", "zookeeper", "etcd", "consul", "vault", "cache", "queue",
    "proxy", "backup", "backup-job", "cron", "worker", "celery", "scheduler", "stack", "host",
})
# The database tools, by engine: the service a tool runs in is that engine's service.
ENGINES: Mapping[str, str] = {
    "psql": "postgres", "pg_isready": "postgres", "pg_dump": "postgres", "pg_dumpall": "postgres",
    "pg_restore": "postgres", "createdb": "postgres", "dropdb": "postgres", "vacuumdb": "postgres",
    "mysql": "mysql", "mysqldump": "mysql", "mysqladmin": "mysql", "mariadb": "mysql", "mariadb-dump": "mysql",
    "redis-cli": "redis", "rabbitmqctl": "rabbitmq",
}
_HOST_SUFFIX = re.compile(r"[-_]host$")  # `redis-host`: the host of redis


@dataclass(frozen=True)
class Context:
    source: str
    services: Services = field(default_factory=lambda: Services(()))
    app: str | None = None  # the application: the most named service that is not infrastructure
    engines: Mapping[str, str] = field(default_factory=dict)  # engine → the service its tools run in
    project: str | None = None  # the compose project, when a command names it (-p, or -f's directory)
    namespace: str | None = None  # the Kubernetes namespace most commands name
    named_services: tuple[str, ...] = ()  # every service the first reading found, in order
    backup_directories: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # directory → its services
    backup_scripts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # a script it holds → what it backs up

    def script(self, command: str) -> tuple[str, ...]:
        """The services a script the runbook holds backs up, when `command` runs it (`bash /srv/backup.sh`)."""
        if command in self.backup_scripts:
            return self.backup_scripts[command]
        name = command.rsplit("/", 1)[-1]
        found = [services for path, services in self.backup_scripts.items() if path.rsplit("/", 1)[-1] == name]
        return found[0] if len(found) == 1 else ()

    def named(self, name: str) -> Resolved:
        """A service a command names: a container, compose service, pod, deployment or host."""
        bare = _HOST_SUFFIX.sub("", name) if not self.services.known else name
        return self.services.resolve(bare)

    def for_engine(self, engine: str, host: str | None) -> Resolved:
        """The service a database tool talks to: its `-h` host when written out, else where that engine runs."""
        if host and "$" not in host and not _local(host):
            return self.named(host)
        if engine in self.engines:
            return self.services.resolve(self.engines[engine])
        resolved = self.services.resolve(engine)
        why = f"no host written out: taken as the {engine} service"
        return Resolved(resolved.service, resolved.why or why) if resolved.service else resolved

    def database(self, engine: str | None) -> tuple[Resolved, str]:
        """The database SQL text is for (an engine from its block's language, else the one the runbook uses)."""
        engines = [name for name in ("postgres", "mysql") if name in self.engines]
        if engine is None and len(engines) != 1:
            why = "the runbook uses both PostgreSQL and MySQL" if engines else "no database service is named"
            return Resolved(None, why), "postgres"
        chosen = engine or engines[0]
        return self.for_engine(chosen, None), chosen

    def for_url(self, url: str) -> Resolved:
        """The service a URL reaches: a service's own host name, else a well-known port or path, else the app."""
        try:
            parts = urlsplit(url)
            host, port = parts.hostname or "", parts.port
        except ValueError:
            return Resolved(None, f"{url!r} is not a URL")
        if host and not _local(host) and "." not in host:
            return self.named(host)
        if port is not None and port in WELL_KNOWN_PORTS:
            resolved = self.services.resolve(WELL_KNOWN_PORTS[port])
            return Resolved(resolved.service, resolved.why or f"port {port} is {WELL_KNOWN_PORTS[port]}'s")
        for segment in parts.path.split("/"):
            if segment in INFRASTRUCTURE and segment in WELL_KNOWN_PORTS.values():
                resolved = self.services.resolve(segment)
                return Resolved(resolved.service, resolved.why or f"its path names {segment}")
        if self.app is not None:
            return Resolved(self.app, f"{host or url} taken as the application, {self.app}")
        resolved = self.services.resolve("app")
        return Resolved(resolved.service, resolved.why or f"{host or url} taken as the application (`app`)")


def _local(host: str) -> bool:
    if host in ("localhost", "0.0.0.0"):  # noqa: S104 - a host name read from a runbook, not a bind address
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def application(named: Iterable[str]) -> str | None:
    """The most often named service that is not infrastructure (first named wins a tie)."""
    counts = Counter(name for name in named if not _infrastructure(name))
    return counts.most_common(1)[0][0] if counts else None


def _infrastructure(name: str) -> bool:
    parts = set(re.split(r"[-_]", name))
    return name in INFRASTRUCTURE or bool(parts & INFRASTRUCTURE)


def most_common(values: Iterable[str | None]) -> str | None:
    counts = Counter(value for value in values if value)
    return counts.most_common(1)[0][0] if counts else None
