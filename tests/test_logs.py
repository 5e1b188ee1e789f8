"""Logs: redaction (tokens, URL passwords and configured secrets never reach a line), the JSON and text formats,
and the request/run/incident context carried through tasks."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from datetime import datetime, timedelta

import pytest

from bot.catalog_loading import parse_catalog
from bot.errors import ConfigError
from bot.log_context import LogContext, annotate, begin_request, bound, current
from bot.logs import JsonFormatter, RedactingFormatter, configure_logging, log_secrets, redact
from bot.settings import Settings, load_settings


def test_tokens_and_url_passwords_are_redacted() -> None:
    line = "auth xoxb-123-456-abcDEF app xapp-1-A1-xyz dsn postgresql://app:hunter2@db:5432/app"
    assert redact(line) == "auth xox?-[redacted] app xapp-[redacted] dsn postgresql://app:[redacted]@db:5432/app"


def test_configured_secrets_are_redacted_even_inside_tracebacks() -> None:
    formatter = RedactingFormatter("%(message)s", secrets=["signing-secret-value"])
    try:
        raise RuntimeError("bad signature with signing-secret-value")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed: %s", ("signing-secret-value",), None)
        import sys

        record.exc_info = sys.exc_info()
    text = formatter.format(record)
    assert "signing-secret-value" not in text
    assert "failed: [redacted]" in text and "RuntimeError: bad signature with [redacted]" in text


def emit(formatter: logging.Formatter, message: str, *args: object, exc: BaseException | None = None) -> str:
    record = logging.LogRecord("bot.actions", logging.WARNING, __file__, 1, message, args,
                               (type(exc), exc, exc.__traceback__) if exc is not None else None)
    return formatter.format(record)


def test_a_json_line_has_utc_time_level_logger_event_and_the_context_fields() -> None:
    with bound(request_id="r-1", retry=2, user="U0ALICE", run_id=7, incident="INC-3"):
        line = json.loads(emit(JsonFormatter(), "step %s failed", 2))
    assert line["time"].endswith("Z") and datetime.fromisoformat(line["time"]).utcoffset() == timedelta(0)
    assert {k: v for k, v in line.items() if k != "time"} == {
        "level": "warning", "logger": "bot.actions", "event": "step 2 failed", "request_id": "r-1", "retry": 2,
        "user": "U0ALICE", "run_id": 7, "incident": "INC-3"}
    assert set(json.loads(emit(JsonFormatter(), "outside")).keys()) == {"time", "level", "logger", "event"}


def test_json_lines_redact_secrets_that_escaping_would_hide_in_the_message_args_and_exception_text() -> None:
    secret = 'pa"ss\\wörd-42'  # JSON escapes the quote and the backslash: redacting the encoded line would miss it
    formatter = JsonFormatter([secret])
    try:
        raise ConnectionError(f"could not connect to postgresql://app:{secret}@db/app with xoxb-1-2-abc")
    except ConnectionError as exc:
        text = emit(formatter, "connecting with %s", secret, exc=exc)
    line = json.loads(text)
    assert secret not in text and secret not in json.dumps(line, ensure_ascii=False)
    assert line["event"] == "connecting with [redacted]"
    assert "ConnectionError: could not connect to postgresql://app:[redacted]@db/app with xox?-[redacted]" in line["exception"]
    assert "\n" not in text, "one object per line, a traceback included"


def test_the_text_format_shows_the_context_compactly_before_a_traceback() -> None:
    formatter = RedactingFormatter(secrets=["hunter2-secret"])
    try:
        raise RuntimeError("boom hunter2-secret")
    except RuntimeError as exc:
        with bound(request_id="r-9", user="U0BOB", run_id=4, job="digest:daily@2026-12-03T09:00Z"):
            text = emit(formatter, "it failed", exc=exc)
    first, _, rest = text.partition("\n")
    assert first.endswith("WARNING bot.actions: it failed [req=r-9 user=U0BOB run=4 job=digest:daily@2026-12-03T09:00Z]")
    assert rest.startswith("Traceback") and "RuntimeError: boom [redacted]" in rest


def test_trace_and_span_ids_come_from_the_tracing_hook_when_one_is_given() -> None:
    line = json.loads(emit(JsonFormatter(trace_ids=lambda: ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")), "x"))
    assert (line["trace_id"], line["span_id"]) == ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    assert "trace_id" not in json.loads(emit(JsonFormatter(trace_ids=lambda: None), "x"))


async def test_the_context_follows_the_tasks_a_request_starts_and_stays_in_its_own_task() -> None:
    seen: dict[str, LogContext] = {}

    async def request(name: str, user: str) -> None:
        begin_request(f"r-{name}", user=user)

        async def run() -> None:
            await asyncio.sleep(0)
            seen[f"{name} run"] = current()

        spawned = asyncio.create_task(run())  # a request's work outlives it in a task of its own
        annotate(run_id=len(name))
        await spawned
        seen[name] = current()

    await asyncio.gather(request("a", "U0ALICE"), request("bb", "U0BOB"))
    assert seen["a run"] == LogContext(request_id="r-a", user="U0ALICE")  # copied when it was started
    assert seen["a"] == LogContext(request_id="r-a", user="U0ALICE", run_id=1)
    assert seen["bb"] == LogContext(request_id="r-bb", user="U0BOB", run_id=2)
    assert current() == LogContext(), "nothing leaks into the task that started them"
    with bound(job="chore: pruning"):
        annotate(incident="INC-1")
        assert current().fields() == {"incident": "INC-1", "job": "chore: pruning"}
    assert current() == LogContext(), "bound restores what was there, whatever was annotated inside"


def test_the_secrets_to_redact_are_every_token_url_password_and_catalog_secret_variable() -> None:
    settings = Settings(slack_bot_token="xoxb-bot-token-1", slack_signing_secret="signing-secret-1",
                        slack_app_token="xapp-app-token-1", database_url="postgresql://app:p%40ss-db-1@db:5432/app",
                        redis_url="redis://:redis-pass-1@cache:6379/0")
    catalog = parse_catalog("""
services:
  api:
    environment: production
    checks:
      - {type: http, url: "http://api:8080/health", headers_env: {Authorization: API_AUTH}}
      - {type: postgres, dsn_env: API_DSN}
    backup: {type: postgres, dsn_env: BACKUP_DSN, directory: /var/backups}
runbooks:
  tidy:
    description: tidy
    services: [api]
    steps:
      - {kind: sql, service: api, dsn_env: RUNBOOK_DSN, statement: VACUUM ANALYZE}
""")
    environ = {"API_AUTH": "Bearer header-secret-1", "API_DSN": "postgresql://mon:check-pass-1@db/app",
               "BACKUP_DSN": "postgresql://dump:backup-pass-1@db/app", "RUNBOOK_DSN": "postgresql://rb:runbook-pass-1@db/app",
               "UNRELATED": "not-a-secret-value"}
    secrets = set(log_secrets(settings, catalog, environ))
    expected = {"xoxb-bot-token-1", "signing-secret-1", "xapp-app-token-1", "p%40ss-db-1", "p@ss-db-1", "redis-pass-1",
                "Bearer header-secret-1", "check-pass-1", "backup-pass-1", "runbook-pass-1", *environ.values()} - {
                "not-a-secret-value"}
    assert expected <= secrets and "not-a-secret-value" not in secrets
    line = JsonFormatter(secrets).format(logging.LogRecord("x", logging.INFO, __file__, 1, "%s", (" ".join(expected),), None))
    assert not any(secret in line for secret in expected)


def test_log_format_is_text_or_json_and_anything_else_is_refused_naming_both() -> None:
    base = {"slack_bot_token": "xoxb-1", "slack_signing_secret": "s"}
    assert isinstance(load_settings(Settings, **base), Settings) and load_settings(Settings, **base).log_format == "text"  # type: ignore[attr-defined]
    assert load_settings(Settings, **base, log_format=" JSON ").log_format == "json"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"^LOG_FORMAT .*'text' or 'json'; expected text \(the default\) or json"):
        load_settings(Settings, **base, log_format="yaml")


def test_configure_logging_writes_json_lines_with_the_context_to_the_stream() -> None:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    stream = io.StringIO()
    try:
        configure_logging("INFO", ["signing-secret-1"], fmt="json", stream=stream)
        with bound(request_id="r-7"):
            logging.getLogger("bot.test").info("verified with %s", "signing-secret-1")
        logging.getLogger("bot.test").debug("below the level")
    finally:
        root.handlers[:] = saved
        root.setLevel(level)
    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["event"] == "verified with [redacted]" and line["request_id"] == "r-7" and line["level"] == "info"
