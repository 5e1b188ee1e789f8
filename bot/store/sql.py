"""The primitives shared queries are written against; each backend implements them.

SQL uses `?` placeholders (the PostgreSQL backend numbers them); times go through `_enc`/`_dec`
(ISO text in SQLite, timestamptz in PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

Statement = tuple[str, Sequence[Any]]


class SqlBase:
    # Transactions the audit log's group commit may have in flight at once (`bot/store/group_commit.py`).
    _group_writers = 1

    async def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def _execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        raise NotImplementedError

    async def _atomic(self, statements: Sequence[Statement]) -> list[list[dict[str, Any]]]:
        """Run statements in one transaction; returns each one's rows (for RETURNING)."""
        raise NotImplementedError

    def _enc(self, value: datetime | None) -> Any:
        raise NotImplementedError

    def _dec(self, value: Any) -> datetime | None:
        raise NotImplementedError

    def _at(self, value: Any) -> datetime:
        """A time from a NOT NULL column."""
        decoded = self._dec(value)
        if decoded is None:
            raise ValueError("a NOT NULL time column was read as NULL")
        return decoded

    async def _insert(self, table: str, row: dict[str, Any]) -> int:
        columns, marks = ", ".join(row), ", ".join("?" for _ in row)
        [rows] = await self._atomic([(f"INSERT INTO {table} ({columns}) VALUES ({marks}) RETURNING id", list(row.values()))])
        return int(rows[0]["id"])
