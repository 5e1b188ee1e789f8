"""Which database engine a connection URL is for, and whether a socket can use it: shared by the `sql` check and
`/ops query` (`bot.queries`), so the query command does not import the check kind.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

POSTGRES_SCHEMES = ("postgresql", "postgres")
MYSQL_SCHEMES = ("mysql", "mariadb")


def url_engine(url: str) -> Literal["postgres", "mysql"] | None:
    try:
        scheme = urlsplit(url.strip()).scheme
    except ValueError:
        return None
    if scheme in POSTGRES_SCHEMES:
        return "postgres"
    if scheme in MYSQL_SCHEMES:
        return "mysql"
    return None


def engine_scheme(engine: str) -> str:
    return "postgresql://" if engine == "postgres" else "mysql://"


def valid_url(url: str) -> bool:
    """One host and, if any, a port a socket can use: urlsplit only notices a bad port when asked for it."""
    try:
        port = urlsplit(url.strip()).port
    except ValueError:
        return False
    return port != 0
