"""What a log line is about — the Slack request, its retry, the person, the run, the incident, the scheduled job —
carried through async tasks in one contextvar. Not responsible for formatting (`bot.logs`) nor for tracing.

asyncio copies the context into every task it creates, so a request's fields follow the work it spawns (the
request's `handle()` task, the run an approval starts) without being passed by hand.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

if TYPE_CHECKING:
    from slack_bolt.request.async_request import AsyncBoltRequest
    from slack_bolt.response import BoltResponse


@dataclass(frozen=True)
class LogContext:
    request_id: str | None = None  # the Socket Mode envelope id, the Events API event id, or one made up per request
    retry: int | None = None  # Slack's retry number of this delivery (X-Slack-Retry-Num), when it is a retry
    user: str | None = None
    run_id: int | None = None
    incident: str | None = None  # the incident key, INC-42
    job: str | None = None  # the scheduled occurrence or chore

    def fields(self) -> dict[str, str | int]:
        """The fields that are set, in declaration order."""
        return {f.name: value for f in fields(self) if (value := getattr(self, f.name)) is not None}


class Fields(TypedDict, total=False):
    """Which of LogContext's fields a binding changes."""

    request_id: str | None
    retry: int | None
    user: str | None
    run_id: int | None
    incident: str | None
    job: str | None


_EMPTY = LogContext()
_CURRENT: ContextVar[LogContext | None] = ContextVar("opsbot_log_context", default=None)


def current() -> LogContext:
    return _CURRENT.get() or _EMPTY


@contextmanager
def bound(**changes: Unpack[Fields]) -> Iterator[LogContext]:
    """These fields for the lines logged inside the block (and by the tasks it starts); restored after."""
    token = _CURRENT.set(replace(current(), **changes))
    try:
        yield current()
    finally:
        _CURRENT.reset(token)


def annotate(**changes: Unpack[Fields]) -> None:
    """These fields for the rest of the current task: for a request's task once it learns what it is about (the
    run or incident it loaded). Code running in a long-lived task binds with `bound` around it instead."""
    _CURRENT.set(replace(current(), **changes))


def begin_request(request_id: str | None, retry: int | None = None, user: str | None = None) -> None:
    """A fresh context for one inbound request, in the task that serves it (nothing of an earlier one stays)."""
    _CURRENT.set(LogContext(request_id=request_id or new_request_id(), retry=retry, user=user))


def new_request_id() -> str:
    return "r-" + secrets.token_hex(6)


# --- the Slack request path: both doors ----------------------------------------------------------------------


async def bind_envelope(_client: Any, message: dict[Any, Any], _raw: str | None) -> None:
    """A Socket Mode message listener: the Slack client runs these before the Bolt handler in the same task, so
    the envelope id and retry attempt are the request's context from its first log line."""
    envelope = message.get("envelope_id")
    retry = message.get("retry_attempt")
    begin_request(envelope if isinstance(envelope, str) else None, retry if isinstance(retry, int) and retry else None)


async def bind_slack_request(req: AsyncBoltRequest, next_: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:
    """Bolt global middleware, for HTTP and Socket Mode alike (Socket Mode mirrors the retry into the same
    header): the request id (the envelope id `bind_envelope` bound, else the Events API `event_id`, else a new
    one), the retry number and the user."""
    body = req.body
    event_id = body.get("event_id")
    retry = _retry_num(req.headers.get("x-slack-retry-num"))
    begin_request(current().request_id or (event_id if isinstance(event_id, str) else None),
                  retry if retry is not None else current().retry, user_of(body))
    return await next_()


def _retry_num(values: Sequence[str] | None) -> int | None:
    value = values[0] if values else None
    return int(value) if value is not None and value.isdigit() and 0 < int(value) < 100 else None


def user_of(body: dict[str, Any]) -> str | None:
    """Who a Slack request comes from: a command's `user_id`, an interaction's `user.id`, an event's `event.user`."""
    user, event = body.get("user_id"), body.get("event")
    if isinstance(body.get("user"), dict):
        user = body["user"].get("id")
    elif isinstance(event, dict):
        user = user or event.get("user")
    return user if isinstance(user, str) and user else None
