"""SQL a runbook holds — a ```sql block, or statements typed into a `psql` session — as statements with their lines,
each a `query` step (it reads) or an `sql` step (it changes), on the database service the runbook names.

Not responsible for which service that is (the caller passes it) nor for judging the SQL (the catalog's step kinds
do: one statement, no backslash, read-only for a query).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.importing.model import HIGH, Found, Sure, manual
from bot.importing.pipeline import env_name
from bot.importing.variables import SHELL_TEXT

_KEYWORDS = re.compile(r"^(select|with|values|table|show|explain|describe|insert|update|delete|merge|create|drop|alter|"
                       r"truncate|grant|revoke|analyze|analyse|vacuum|reindex|cluster|refresh|optimize|repair|check|"
                       r"set|reset|comment|call|do|lock|kill)\b", re.IGNORECASE)
_READS = re.compile(r"^(select|with|values|table|show|explain(?!\s+analy[sz]e)|describe)\b", re.IGNORECASE)
# A SELECT that calls one of these changes something: an sql step, not a read-only query.
SIDE_EFFECTS = re.compile(r"\b(pg_terminate_backend|pg_cancel_backend|pg_reload_conf|pg_rotate_logfile|setval|nextval|"
                          r"\w+_reset)\s*\(", re.IGNORECASE)
_TERMINATE = re.compile(r"^select\s+pg_terminate_backend\s*\(\s*pid\s*\)\s+from\s+pg_stat_activity\b.*?"
                        r"(?:query_start|xact_start|state_change)\s*<\s*now\(\)\s*-\s*interval\s*'(\d+)\s*"
                        r"(minutes?|min|hours?|seconds?)'", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"(?<![\w:])(\?|\$\d+|:[A-Za-z_]\w*)(?!\w)")


@dataclass(frozen=True)
class SqlStatement:
    first_line: int
    last_line: int
    text: str  # without comments, as one statement (no trailing `;`)
    written: str  # as written, comments and all

    @property
    def is_sql(self) -> bool:
        return bool(_KEYWORDS.match(self.text))


def split(code: str, first_line: int) -> list[SqlStatement]:
    """The statements of SQL text: split at `;` outside quotes, `--` and `/* */` comments left out of `text`."""
    found: list[SqlStatement] = []
    text: list[str] = []
    written: list[str] = []
    line, start = first_line, None
    index, quote = 0, ""
    while index < len(code):
        char = code[index]
        if quote:
            text.append(char)
            if char == quote:
                quote = ""
        elif code.startswith("--", index) or (code.startswith("#", index) and not "".join(text).strip()):
            end = code.find("\n", index)
            end = len(code) if end < 0 else end
            written.append(code[index:end])
            index = end
            continue
        elif code.startswith("/*", index):
            end = code.find("*/", index + 2)
            end = len(code) if end < 0 else end + 2
            line += code[index:end].count("\n")
            written.append(code[index:end])
            index = end
            continue
        elif char in "'\"`":
            quote = char
            text.append(char)
        elif char == ";":
            if "".join(text).strip():
                found.append(SqlStatement(start or line, line, " ".join("".join(text).split()),
                                          ("".join(written) + ";").strip()))
            text, written, start = [], [], None
            index += 1
            continue
        else:
            text.append(char)
        if not char.isspace() and start is None and not quote:
            start = line
        if char == "\n":
            line += 1
        written.append(char)
        index += 1
    if "".join(text).strip():
        found.append(SqlStatement(start or line, line, " ".join("".join(text).split()), "".join(written).strip()))
    return found


def step(statement: SqlStatement, service: str, engine: str, sure: Sure = HIGH) -> Found:
    """A query step for a statement that reads, an sql step for one that changes; manual when it has placeholders."""
    if not statement.is_sql:
        return manual("not an SQL statement")
    if _PLACEHOLDER.search(re.sub(r"'[^']*'", "''", statement.text)):
        return manual("the statement has placeholders (`?`, `$1`, `:name`) for values a person fills in")
    if SHELL_TEXT.search(statement.text):
        return manual("the statement holds `$` or a backtick (a shell variable or command, dollar quoting, MySQL's "
                      "quoted names): a person reads it and runs it")
    return Found((step_of(statement.text, service, engine),), sure=sure)


def step_of(text: str, service: str, engine: str) -> dict[str, object]:
    """`query` for a statement that reads, `terminate-queries` for the classic "kill long-running queries", else
    `sql`."""
    terminate = _TERMINATE.match(text) if engine == "postgres" else None
    if terminate:
        amount, unit = int(terminate.group(1)), terminate.group(2).lower()
        minutes = amount * 60 if unit.startswith("hour") else amount / 60 if unit.startswith("sec") else amount
        return {"kind": "terminate-queries", "service": service, "older_than_minutes": minutes,
                "dsn_env": env_name(service)}
    kind = "query" if _READS.match(text) and not SIDE_EFFECTS.search(text) else "sql"
    return {"kind": kind, "service": service, "statement": text, "engine": engine, "dsn_env": env_name(service)}
