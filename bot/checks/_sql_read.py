"""What one read-only SQL statement returned: its columns and its first rows (bounded), shared by the `sql` check
and named queries (`bot.queries`).

Not responsible for connecting or for the READ ONLY transaction (`postgres_probe`, `mysql_probe`), nor for judging
the text (`_sql_guard`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SqlRows:
    columns: tuple[str, ...]  # names as the server gave them
    types: tuple[str, ...]  # each column's type name, as the server calls it
    rows: tuple[tuple[Any, ...], ...]  # at most the limit asked for
    more: bool  # the statement returned more rows than the limit (they were not read)

    def first_value(self) -> tuple[Any, str, bool]:
        """The sql check's reading: (first column of the first row, its type's name, no row at all)."""
        column = self.types[0] if self.types else "nothing"
        return (self.rows[0][0] if self.rows and self.rows[0] else None), column, not self.rows
