"""Which host a check talks to, and the gates that bound how many checks of one request hit one host at once.

Not responsible for running checks (`bot.health`) nor for their timeouts: only for the bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from bot.checks._dsn import DsnSource
from bot.checks.base import CheckDeps, CheckSpec
from bot.errors import MissingSecret


def target_host(spec: CheckSpec, deps: CheckDeps) -> str:
    """The host `spec` connects to (lower-cased, without port), read from its URL, DSN, host or address field.

    Checks with no address of their own (disk and memory of this host, the Docker daemon, the Kubernetes API of the
    service's target, the backup ledger) share one gate per kind, e.g. `kind:containers`.
    """
    source: object = spec  # the kinds that connect by URL mix DsnSource into their CheckSpec
    try:
        if isinstance(source, DsnSource):
            return _hostname(source.connection_url(deps)) or f"kind:{_kind(spec)}"
    except MissingSecret:
        return f"kind:{_kind(spec)}"  # the check fails at once, saying which variable is missing
    for name in ("url", "api_url", "docker_host"):
        value = getattr(spec, name, None)
        if value:
            return _hostname(str(value)) or f"kind:{_kind(spec)}"
    host = getattr(spec, "host", None)
    if isinstance(host, str) and host:
        return host.lower()
    address = getattr(spec, "address", None)  # host:port, as memcached's
    if isinstance(address, str) and address:
        return address.rsplit(":", 1)[0].strip("[]").lower()
    return f"kind:{_kind(spec)}"


def _kind(spec: CheckSpec) -> str:
    return str(getattr(spec, "type", type(spec).__name__))


def _hostname(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


class HostGates:
    """At most `per_host` checks at once against any one host, and at most `total` in all."""

    def __init__(self, per_host: int, total: int) -> None:
        self.per_host = per_host
        self._total = asyncio.Semaphore(total)
        self._hosts: dict[str, asyncio.Semaphore] = {}

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        gate = self._hosts.setdefault(host, asyncio.Semaphore(self.per_host))
        async with gate, self._total:
            yield
