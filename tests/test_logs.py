"""Log redaction: tokens, URL passwords and configured secrets never reach a log line."""

from __future__ import annotations

import logging

from bot.logs import RedactingFormatter, redact


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
