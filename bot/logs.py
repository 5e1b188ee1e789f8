"""Logging set-up: text or JSON lines, each with its request/run/incident context, every line passed through a
redactor so tokens and passwords never reach a log. Not responsible for what the context holds (`bot.log_context`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Literal
from urllib.parse import unquote

from bot.log_context import current

if TYPE_CHECKING:
    from bot.catalog import Catalog
    from bot.settings import Settings

LogFormat = Literal["text", "json"]
# Tracing is optional: when on, it hands in where the current trace and span ids come from; None when none.
TraceIds = Callable[[], tuple[str, str] | None]

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

_PATTERNS = [
    re.compile(r"xox[abposer]-[A-Za-z0-9-]+"),  # Slack bot/user/config tokens
    re.compile(r"xapp-[A-Za-z0-9-]+"),  # Slack app-level tokens
    re.compile(r"(?<=://)([^/\s:@]+):([^/\s@]+)@"),  # user:password@ in a URL
]
_URL_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/:@\s]*:([^@/]*)@")
# The context's fields as the text format shows them, compactly.
_SHORT = {"request_id": "req", "retry": "retry", "user": "user", "run_id": "run", "incident": "inc", "job": "job",
          "trace_id": "trace", "span_id": "span"}


class RedactingFormatter(logging.Formatter):
    """The text format: the line, then its context as `[req=… user=… run=…]`, redacted as a whole."""

    def __init__(self, fmt: str = TEXT_FORMAT, secrets: Iterable[str] = (), *, trace_ids: TraceIds | None = None,
                 with_context: bool = True) -> None:
        super().__init__(fmt)
        # Longest first, so a secret that contains another is removed whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)
        self._trace_ids, self._with_context = trace_ids, with_context

    def context(self) -> dict[str, str | int]:
        fields = current().fields()
        ids = self._trace_ids() if self._trace_ids is not None else None
        if ids is not None:
            fields["trace_id"], fields["span_id"] = ids
        return fields

    def redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = self.context() if self._with_context else {}
        if fields:
            suffix = " ".join(f"{_SHORT.get(name, name)}={value}" for name, value in fields.items())
            first, newline, rest = text.partition("\n")  # after the message, before a traceback
            text = f"{first} [{suffix}]{newline}{rest}"
        return self.redact(text)


class JsonFormatter(RedactingFormatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, event, the context's fields, and the
    exception's text when there is one. Each value is redacted before encoding, so escaping cannot hide a secret."""

    def __init__(self, secrets: Iterable[str] = (), *, trace_ids: TraceIds | None = None) -> None:
        super().__init__("%(message)s", secrets, trace_ids=trace_ids)

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str | int] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for name, value in self.context().items():
            line.setdefault(name, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        redacted = {name: self.redact(value) if isinstance(value, str) else value for name, value in line.items()}
        return json.dumps(redacted, ensure_ascii=False, default=str)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    text = _PATTERNS[0].sub("xox?-[redacted]", text)
    text = _PATTERNS[1].sub("xapp-[redacted]", text)
    return _PATTERNS[2].sub(r"\1:[redacted]@", text)


def secret_values(known: Iterable[str | None], environ: Mapping[str, str], env_names: Iterable[str]) -> list[str]:
    """Every secret value the process knows, for the redactor: tokens and URLs from the settings (`known`), the
    values of the catalog's `*_env` variables, and the password part of each URL on its own, as written and
    percent-decoded (a client's error may quote either)."""
    values = [value for value in known if value] + [environ.get(name, "") for name in env_names]
    passwords: list[str] = []
    for value in values:
        match = _URL_PASSWORD.match(value)
        if match and match.group(1):
            passwords += [match.group(1), unquote(match.group(1))]
    return list(dict.fromkeys(value for value in values + passwords if value))


def log_secrets(settings: Settings, catalog: Catalog, environ: Mapping[str, str]) -> list[str]:
    """What `opsbot serve` redacts: the tokens, the signing secret, the database and Redis URLs (with their
    passwords alone), and every secret variable the catalog names."""
    known = [settings.slack_bot_token, settings.slack_signing_secret, settings.slack_app_token, settings.redis_url]
    return secret_values([settings.database_url, *(value.get_secret_value() for value in known if value is not None)],
                         environ, [env for _, env in catalog.secret_envs()])


def formatter(fmt: LogFormat, secrets: Iterable[str] = (), *, trace_ids: TraceIds | None = None) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter(secrets, trace_ids=trace_ids)
    return RedactingFormatter(TEXT_FORMAT, secrets, trace_ids=trace_ids)


def configure_logging(level: str, secrets: Iterable[str] = (), *, fmt: LogFormat = "text", stream: IO[str] | None = None,
                      trace_ids: TraceIds | None = None) -> logging.Handler:
    """Send every logger's lines, formatted and redacted, to `stream` (stderr); returns the handler."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter(fmt, secrets, trace_ids=trace_ids))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log is one line per Slack request: useful at DEBUG, noise otherwise.
    logging.getLogger("aiohttp.access").setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
    return handler
