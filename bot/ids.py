"""Typed ids: the one parser for a number a person typed or a button carries (run, backup, incident, entry ids).

Not responsible for what a missing id means: each caller raises its own clear error (a usage line, a stale button).
"""

from __future__ import annotations

import re

# Both stores keep ids in signed 64-bit integers (SQLite INTEGER, PostgreSQL bigint).
ID_LIMIT = 2**63
_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")


def parse_id(text: str) -> int | None:
    """The id `text` spells in ASCII digits, below 2**63; None for anything else.

    `str.isdigit()` accepts `²` and `①`, which `int()` refuses, and `int()` accepts `١٢` and `1_000`:
    neither is an id. Leading zeros are allowed (`007` is 7); signs, spaces and separators are not.
    """
    if not _ASCII_DIGITS.fullmatch(text):
        return None
    number = int(text)
    return number if number < ID_LIMIT else None
