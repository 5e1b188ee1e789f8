"""What the `sql` check may run, judged from the query's text before anything connects: one statement that reads.

A READ ONLY transaction (the check's second line of defence) stops table writes only. It does not stop
`COPY … TO PROGRAM` (a shell on the database host), `SELECT … INTO OUTFILE`, ending other sessions, changing
settings, taking locks or reading server files, so the text is refused here, at catalog load, before any of that.

PostgreSQL and MySQL split a query into strings, names and comments differently (`#`, nested `/* */`, backticks,
dollar quoting, backslashes), and a word hidden in what one engine reads as a comment is code to the other. So the
text is read the way its engine reads it; when the engine is not known yet (`dsn_env`: the URL is only read when
the check runs), the query must pass both readings. Anything whose reading is unclear is refused rather than
guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

Dialect = Literal["postgres", "mysql"]
DIALECTS: tuple[Dialect, ...] = ("postgres", "mysql")
_NAMES = {"postgres": "PostgreSQL", "mysql": "MySQL"}

FIRST_WORDS = ("SELECT", "WITH", "VALUES", "TABLE", "SHOW")
ALLOWED = "a check's query is one read-only SELECT, WITH, VALUES, TABLE or SHOW statement returning a number"

# Words refused anywhere outside quotes, with what they would do.
_WORDS = {
    "INTO": "`INTO` is not allowed: SELECT … INTO writes a file (INTO OUTFILE, INTO DUMPFILE), a table or variables",
    "OUTFILE": "`INTO OUTFILE` is not allowed: it writes a file on the database host",
    "DUMPFILE": "`INTO DUMPFILE` is not allowed: it writes a file on the database host",
    "COPY": "`COPY` is not allowed: it reads and writes files and runs programs on the database host",
    "UESCAPE": "`UESCAPE` is not allowed: Unicode escapes can spell any name, past this check's list",
}
_SEQUENCES = {
    ("TO", "PROGRAM"): "`TO PROGRAM` is not allowed: it runs a shell command on the database host",
    ("FOR", "UPDATE"): "locking reads (FOR UPDATE, FOR SHARE, LOCK IN SHARE MODE) are not allowed: a check takes no locks",
    ("FOR", "SHARE"): "locking reads (FOR UPDATE, FOR SHARE, LOCK IN SHARE MODE) are not allowed: a check takes no locks",
    ("FOR", "NO", "KEY"): "locking reads (FOR NO KEY UPDATE) are not allowed: a check takes no locks",
    ("FOR", "KEY", "SHARE"): "locking reads (FOR KEY SHARE) are not allowed: a check takes no locks",
    ("LOCK", "IN", "SHARE"): "locking reads (FOR UPDATE, FOR SHARE, LOCK IN SHARE MODE) are not allowed: a check takes no locks",
}
# Functions with effects a READ ONLY transaction does not stop (or that reach past the database), by what they do.
_FUNCTIONS = {
    "ends or signals other sessions": {"pg_terminate_backend", "pg_cancel_backend", "pg_log_backend_memory_contexts"},
    "changes settings or server state": {
        "set_config", "pg_reload_conf", "pg_rotate_logfile", "pg_switch_wal", "pg_promote", "pg_backup_start",
        "pg_backup_stop", "pg_start_backup", "pg_stop_backup", "pg_wal_replay_pause", "pg_wal_replay_resume",
        "pg_import_system_collations", "pg_replication_slot_advance",
    },
    "takes locks that outlive the query": {"get_lock", "release_lock", "release_all_locks"},
    "reads or writes files on the database host": {
        "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "pg_logdir_ls", "load_file", "lowrite",
    },
    "runs commands or other queries": {"dblink", "sys_exec", "sys_eval", "benchmark"},
}
_PREFIXES = {
    "pg_advisory": "takes locks that outlive the query",
    "pg_try_advisory": "takes locks that outlive the query",
    "pg_stat_reset": "changes settings or server state",
    "pg_create_": "changes settings or server state",
    "pg_drop_": "changes settings or server state",
    "pg_copy_": "changes settings or server state",
    "pg_replication_origin_": "changes settings or server state",
    "pg_file_": "reads or writes files on the database host",
    "lo_": "reads or writes files on the database host",
    "dblink": "runs commands or other queries",
    "query_to_xml": "runs commands or other queries",
}
_WORD = re.compile(r"[\w$]+")
_DOLLAR_TAG = re.compile(r"\$(?:[^\W\d]\w*)?\$")


@dataclass(frozen=True)
class _Token:
    kind: Literal["code", "string", "name", "comment"]
    text: str  # as written, quotes and all
    start: int

    def name(self) -> str:
        """A quoted name's letters, so `"pg_terminate_backend"(…)` is still that function."""
        quote = self.text[0]
        return self.text[1:-1].replace(quote * 2, quote)


def superuser_warning(dsn: str | None) -> list[str]:
    """`check-config`'s word on an inline DSN that logs in as a superuser (MySQL's client default is root too)."""
    if dsn is None:
        return []
    try:
        parts = urlsplit(dsn.strip())
    except ValueError:
        return []
    user = unquote(parts.username or "")
    if user not in ("root", "postgres") and not (user == "" and parts.scheme in ("mysql", "mariadb")):
        return []
    return [(f"`dsn` logs in as {user or 'root (no user given)'}, a superuser; give checks a monitoring role instead "
             "(PostgreSQL: pg_monitor with default_transaction_read_only = on; MySQL: SELECT and PROCESS only)")]


def check(query: str, dialects: tuple[Dialect, ...] = DIALECTS) -> str:
    """The statement to send (up to its closing `;`), or ValueError saying what is refused and what is allowed."""
    statement = ""
    for dialect in dialects:
        try:
            statement = _check(query, dialect)
        except _Unclear as exc:
            hint = f" (read as {_NAMES[dialect]})" if len(dialects) > 1 else ""
            raise ValueError(f"{exc}{hint}") from None
    return statement


class _Unclear(ValueError):
    """Text the engine might read otherwise than this module does: refused, whatever it means."""


def _check(query: str, dialect: Dialect) -> str:
    text = query.replace("\r\n", "\n")
    if "\\" in text:
        raise ValueError("a backslash is not allowed: PostgreSQL and MySQL read it differently inside quotes "
                         "(write chr(92) or CHAR(92) if the query needs one)")
    if "\r" in text or "\x00" in text:
        raise ValueError("the query contains a carriage return or NUL on its own; use plain newlines")
    tokens, end = _statement(_tokens(text, dialect))
    _first_word(tokens)
    words = [(word.upper(), token.kind) for token in tokens if token.kind in ("code", "name")
             for word in (_WORD.findall(token.text) if token.kind == "code" else [token.name()])]
    code_words = [word for word, kind in words if kind == "code"]
    for word in code_words:
        if word in _WORDS:
            raise ValueError(f"{_WORDS[word]}; {ALLOWED}")
    for sequence, message in _SEQUENCES.items():
        if _contains(code_words, sequence):
            raise ValueError(f"{message}; {ALLOWED}")
    for word, _ in words:
        what = _side_effect(word.lower())
        if what:
            raise ValueError(f"`{word.lower()}` is not allowed: it {what}; {ALLOWED}")
    return text[:end].strip()


def _first_word(tokens: list[_Token]) -> None:
    for token in tokens:
        if token.kind == "comment":
            continue
        if token.kind != "code":
            raise ValueError(f"the query starts with a quoted string or name; {ALLOWED}")
        stripped = token.text.strip()
        if not stripped or set(stripped) <= set("( \n\t"):
            continue
        head = stripped.lstrip("( \n\t")
        match = _WORD.match(head)
        found = match.group(0).upper() if match else head[:1]
        if found in FIRST_WORDS:
            return
        raise ValueError(f"the query starts with `{found}`; {ALLOWED}")
    raise ValueError(f"the query has no statement; {ALLOWED}")


def _side_effect(name: str) -> str | None:
    for what, names in _FUNCTIONS.items():
        if name in names:
            return what
    for prefix, what in _PREFIXES.items():
        if name.startswith(prefix):
            return what
    return None


def _contains(words: list[str], sequence: tuple[str, ...]) -> bool:
    size = len(sequence)
    return any(tuple(words[i:i + size]) == sequence for i in range(len(words) - size + 1))


def _statement(tokens: list[_Token]) -> tuple[list[_Token], int]:
    """The tokens up to the first `;` outside quotes and comments, and where that `;` is; after it only comments
    and blanks may follow (aiomysql sends several statements in one string, so this is the guard for both)."""
    for index, token in enumerate(tokens):
        if token.kind == "code" and ";" in token.text:
            head, _, tail = token.text.partition(";")
            after = [tail, *(later.text for later in tokens[index + 1:] if later.kind != "comment")]
            if "".join(after).strip(" \n\t\f\v;"):
                raise ValueError("the query must be one statement: a `;` outside quotes may only end it")
            return [*tokens[:index], _Token("code", head, token.start)], token.start + len(head)
    return tokens, sum(len(token.text) for token in tokens)


def _tokens(text: str, dialect: Dialect) -> list[_Token]:
    """Split the text as `dialect` reads it into code, '…' strings, quoted names and comments."""
    tokens: list[_Token] = []
    code_start = i = 0
    n = len(text)

    def flush(upto: int) -> None:
        if upto > code_start:
            tokens.append(_Token("code", text[code_start:upto], code_start))

    while i < n:
        char = text[i]
        end: int | None = None
        kind: Literal["string", "name", "comment"] = "string"
        if char == "'":
            end = _quoted(text, i, "'")
        elif char == '"':
            end, kind = _quoted(text, i, '"'), "name"
        elif char == "`" and dialect == "mysql":
            end, kind = _quoted(text, i, "`"), "name"
        elif _line_comment(text, i, dialect):
            end, kind = _line_end(text, i), "comment"
        elif text.startswith("/*", i):
            end, kind = _block_comment(text, i, dialect), "comment"
        elif char == "$" and dialect == "postgres":
            end = _dollar_quoted(text, i)
        if end is None:
            i += 1
            continue
        flush(i)
        tokens.append(_Token(kind, text[i:end], i))
        code_start = i = end
    flush(n)
    return tokens


def _quoted(text: str, start: int, quote: str) -> int:
    i = start + 1
    while True:
        i = text.find(quote, i)
        if i < 0:
            what = {"'": "'…' string", '"': '"…" name or string', "`": "`…` name"}[quote]
            raise _Unclear(f"the query has an unterminated {what}")
        if text.startswith(quote * 2, i):
            i += 2
            continue
        return i + 1


def _line_comment(text: str, i: int, dialect: Dialect) -> bool:
    if dialect == "mysql":
        # MySQL reads `--` as a comment only before a blank (`1--1` is arithmetic there), and `#` always.
        return text[i] == "#" or (text.startswith("--", i) and (i + 2 == len(text) or text[i + 2] in " \t\n\f\v"))
    return text.startswith("--", i)


def _line_end(text: str, start: int) -> int:
    end = text.find("\n", start)
    return len(text) if end < 0 else end


def _block_comment(text: str, start: int, dialect: Dialect) -> int:
    if dialect == "mysql":
        if text.startswith(("/*!", "/*+", "/*M!", "/*m!"), start):
            raise ValueError("MySQL executable comments (/*! … */, /*M! … */, /*+ … */) are not allowed: what is in "
                             f"them runs; {ALLOWED}")
        end = text.find("*/", start + 2)
        if end < 0:
            raise _Unclear("the query has an unterminated /* comment")
        return end + 2
    depth, i = 0, start  # PostgreSQL's block comments nest
    while i < len(text):
        if text.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif text.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    raise _Unclear("the query has an unterminated /* comment")


def _dollar_quoted(text: str, start: int) -> int | None:
    """PostgreSQL's $tag$…$tag$ string, or None for a `$` inside a name; a `$` right after a number is unclear."""
    before = start
    while before > 0 and (text[before - 1].isalnum() or text[before - 1] in "_$"):
        before -= 1
    if before < start:
        if text[before].isdigit():
            raise _Unclear("a `$` right after a number is not allowed (PostgreSQL may read a $…$ string there)")
        return None  # part of a name such as `a$b`
    match = _DOLLAR_TAG.match(text, start)
    if not match:
        return None  # `$1`: a parameter, which the server refuses (there are none)
    close = text.find(match.group(0), match.end())
    if close < 0:
        raise _Unclear("the query has an unterminated $…$ string")
    return close + len(match.group(0))
