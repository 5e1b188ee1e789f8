"""mysql:// (and mariadb://) URLs taken apart, with no client library: the checks, the MySQL backups and the
statement runner (`bot.executors.databases`, which holds pymysql) share it."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit


@dataclass(frozen=True)
class MysqlConnection:
    """mysql://user:password@host:port/database taken apart; the password never reaches a repr or a message."""

    host: str
    port: int
    database: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    def where(self) -> str:
        return f"{self.host}:{self.port}/{self.database}"

    def secrets(self) -> list[str]:
        return secret_forms(self.password)


def parse_mysql_dsn(dsn: str, *, require_database: bool = True) -> MysqlConnection:
    """Split mysql:// (or mariadb://) URLs; errors describe the problem, never the value. A check of the server
    itself (`require_database=False`) may leave the database out."""
    try:
        parts = urlsplit(dsn.strip())
        port = parts.port
    except ValueError:
        raise ValueError("the MySQL DSN is not a mysql:// URL (one host, numeric port)") from None
    if parts.scheme not in ("mysql", "mariadb"):
        raise ValueError("the MySQL DSN is not a mysql:// or mariadb:// URL")
    if parts.query:
        raise ValueError("the MySQL DSN must not carry query parameters")
    database = unquote(parts.path.lstrip("/"))
    if require_database and not database:
        raise ValueError("the MySQL DSN names no database")
    return MysqlConnection(
        host=parts.hostname or "localhost",
        port=port or 3306,
        database=database,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def secret_forms(password: str | None) -> list[str]:
    """The password as given and URL-quoted: both are scrubbed from messages."""
    return [password, quote(password, safe="")] if password else []
