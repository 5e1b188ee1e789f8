"""Store outages: which backend errors mean "the database cannot be reached", and a log that says so once per outage.

Not responsible for answering anyone: backends raise `StoreUnavailable`, the reply layer words it.
"""

from __future__ import annotations

import logging
import sqlite3
import sys

log = logging.getLogger("bot.store")

# Decided by type and SQLSTATE, never by a message's words. Class 08 is "connection exception"; 57P01–57P05 are
# the server shutting down, restarting, starting, its database dropped, the session timed out; 53300 is "too many
# connections"; 3D000 a database that no longer exists (dropped while we were connected).
_PG_STATES = frozenset({"57P01", "57P02", "57P03", "57P04", "57P05", "53300", "3D000"})
# OSError covers refused and reset sockets; asyncpg's InterfaceError a connection or pool closed under us; TimeoutError
# a pool with no connection to give, or a server that does not answer within command_timeout. InternalClientError
# ("cannot switch to state …; another operation is in progress") is what asyncpg raises for a pooled connection the
# server terminated while it sat idle (opsbot never shares a connection between two operations otherwise).
_OS_TYPES = (OSError, TimeoutError)

# SQLite's primary result codes (the low byte of an extended code) for a file that cannot be used right now.
_SQLITE_CODES = frozenset({
    sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_READONLY,
})


def postgres_unreachable(exc: BaseException) -> bool:
    if isinstance(exc, _OS_TYPES):
        return True
    # asyncpg is imported only with the PostgreSQL store or a PostgreSQL check (`bot.adapters`); before it is, no
    # error can be one of its own, so a SQLite replica never loads it to answer this.
    asyncpg = sys.modules.get("asyncpg")
    if asyncpg is None:
        return False
    if isinstance(exc, (asyncpg.InterfaceError, asyncpg.InternalClientError)):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        state = str(getattr(exc, "sqlstate", "") or "")
        return state.startswith("08") or state in _PG_STATES
    return False


def sqlite_unreachable(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and isinstance(code, int) and code & 0xFF in _SQLITE_CODES


class QuietPoolRetries(logging.Filter):
    """asyncpg's pool logs a warning with a traceback each time it fails to reconnect its idle connections; during
    an outage that is one traceback every few seconds. `OutageLog` says it once; these are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and record.exc_info[1] is not None and postgres_unreachable(record.exc_info[1]))


def quiet_pool_retries() -> None:
    pool_log = logging.getLogger("asyncpg.pool")
    if not any(isinstance(f, QuietPoolRetries) for f in pool_log.filters):
        pool_log.addFilter(QuietPoolRetries())


class OutageLog:
    """One warning when the store stops answering, one info line when it answers again; silence in between,
    however many requests fail meanwhile."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.down = False

    def failed(self, cause: BaseException) -> None:
        if not self.down:
            self.down = True
            log.warning("%s cannot be reached (%s): requests are refused until it answers again",
                        self.what, type(cause).__name__)

    def answered(self) -> None:
        if self.down:
            self.down = False
            log.info("%s answers again", self.what)
