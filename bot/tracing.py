"""Tracing as a port: the `Tracer` the core opens spans with (a Slack request, a health run and its checks, a run and
its steps), the no-op one used when tracing is off, and the start-up switch. Not responsible for OpenTelemetry itself
(`bot.tracing_otel`, imported only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set and the `otel` extra is installed).

Off, nothing of OpenTelemetry is imported and a span is one shared object whose methods do nothing.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from bot.logs import TraceIds

log = logging.getLogger(__name__)

Attribute = str | int | float | bool
Attributes = Mapping[str, Attribute]

EXTRA = "otel"
MISSING_EXTRA = ("OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed (no module %s): tracing is "
                 "off. Install it with: pip install 'opsbot[otel]'")
# What a span may be named after: a slash command, an action_id, a view's callback_id, an event type. Anything else
# (a malformed or hostile payload) names no span; the kind alone does.
_NAME = re.compile(r"/?[A-Za-z0-9_.:-]{1,80}")


class Span(Protocol):
    def set(self, attributes: Attributes) -> None:
        """Add attributes learnt while the span runs (a check's status, a step's outcome)."""


class Tracer(Protocol):
    @property
    def on(self) -> bool: ...

    def span(self, name: str, attributes: Attributes | None = None) -> AbstractContextManager[Span]:
        """A span, current inside the block (and in the tasks it starts); an exception leaving it marks it failed."""

    def annotate(self, attributes: Attributes) -> None:
        """Add attributes to the span current now (a run's final state, set where the run ends)."""


class _NoSpan:
    """The span and its context manager at once, shared: entering it allocates nothing."""

    def set(self, attributes: Attributes) -> None:
        return None

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        return None


_NO_SPAN = _NoSpan()


class NoTracer:
    """Tracing off: every span is the same do-nothing object."""

    on = False

    def span(self, name: str, attributes: Attributes | None = None) -> AbstractContextManager[Span]:
        return _NO_SPAN

    def annotate(self, attributes: Attributes) -> None:
        return None


NO_TRACER: Tracer = NoTracer()


@dataclass(frozen=True)
class Tracing:
    """What start-up made of the tracing settings: the tracer to pass in, where logs read the current trace and span
    ids from (None when off, so a log line pays nothing), and what to call at shut-down (flushes what is buffered)."""

    tracer: Tracer = NO_TRACER
    trace_ids: TraceIds | None = None
    shutdown: Callable[[], None] = lambda: None


TRACING_OFF = Tracing()


def start_tracing(endpoint: str | None, service_name: str) -> Tracing:
    """Tracing to the OTLP/HTTP collector at `endpoint` (its traces go to `<endpoint>/v1/traces`), with the aiohttp,
    asyncpg and redis instrumentations; off when no endpoint is set. When set but the `otel` extra is not installed,
    one warning line names the extra, and the bot runs without tracing."""
    if not endpoint:
        return TRACING_OFF
    try:
        otel = importlib.import_module("bot.tracing_otel")
    except ImportError as exc:
        log.warning(MISSING_EXTRA, exc.name or "opentelemetry")
        return TRACING_OFF
    tracing: Tracing = otel.start_otlp(endpoint, service_name)
    return tracing


# --- the Slack request span: both doors -----------------------------------------------------------------------


def slack_request_name(body: Any) -> str | None:
    """What names a Slack request's span: the command, the first action's `action_id`, the view's `callback_id`,
    the event's type, or the shortcut's `callback_id` — never a user, channel or free text."""
    if not isinstance(body, dict):
        return None
    candidates: list[Any] = [body.get("command"), body.get("callback_id")]
    actions, view, event = body.get("actions"), body.get("view"), body.get("event")
    if isinstance(actions, list) and actions and isinstance(actions[0], dict):
        candidates.insert(0, actions[0].get("action_id"))
    if isinstance(view, dict):
        candidates.append(view.get("callback_id"))
    if isinstance(event, dict):
        candidates.append(event.get("type"))
    return next((c for c in candidates if isinstance(c, str) and _NAME.fullmatch(c)), None)


def slack_span(body: Any, kind: str) -> tuple[str, dict[str, Attribute]]:
    """The name and attributes of a Slack request's span: its kind and, when it has one, its command or action id."""
    name = slack_request_name(body)
    if name is None:
        return f"slack {kind}", {"slack.kind": kind}
    return f"slack {kind} {name}", {"slack.kind": kind, "slack.name": name}
