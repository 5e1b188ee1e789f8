"""The store's contract: what the domain may ask of storage, whatever the backend.

Backends: `bot.store.sqlite` (embedded default) and `bot.store.postgres`. Both pass tests/test_store.py.
"""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from typing import Protocol

from bot.audit import AuditEntry
from bot.health import HealthRun


class Store(Protocol):
    async def open(self) -> None:
        """Connect (pools, files). Called once from the app's start-up hook."""

    async def close(self) -> None: ...

    async def migrate(self) -> list[int]:
        """Apply pending migrations; returns the versions applied now (empty when up to date)."""

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers a query."""

    async def save_health_run(self, run: HealthRun) -> int:
        """Store a run with its results; returns the run's id."""

    async def get_health_run(self, run_id: int) -> HealthRun | None: ...

    async def health_runs_since(self, since: datetime, limit: int = 500) -> list[HealthRun]:
        """Runs started at or after `since`, newest first, with their results."""

    async def record_audit(self, entry: AuditEntry) -> int: ...

    async def audit_entries(self, *, since: datetime | None = None, limit: int = 100) -> list[AuditEntry]:
        """Newest first."""

    async def claim(self, key: str, at: datetime) -> bool:
        """Record an idempotency key; True the first time it is claimed, False ever after."""


def migrations(backend: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) for a backend, in order, from bot/store/migrations/<backend>/NNNN_name.sql."""
    folder = resources.files("bot.store") / "migrations" / backend
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append((int(number), rest.removesuffix(".sql"), entry.read_text(encoding="utf-8")))
    return sorted(found)
