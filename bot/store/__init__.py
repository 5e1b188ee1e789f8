"""Storage: one `Store` protocol, two backends, chosen from DATABASE_URL by `create_store`."""

from __future__ import annotations

from bot.store.base import Store


def create_store(database_url: str) -> Store:
    """The one place a backend is picked (used by the composition root and `opsbot migrate`)."""
    if database_url.startswith(("postgresql://", "postgres://")):
        from bot.store.postgres import PostgresStore

        return PostgresStore(database_url)
    from pathlib import Path

    from bot.store.sqlite import SqliteStore

    return SqliteStore(Path(database_url.removeprefix("sqlite:///")))


__all__ = ["Store", "create_store"]
