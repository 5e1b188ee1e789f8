"""The door of `/slack/events`: Slack's signature checked on the raw bytes first, then the body parsed, then Bolt.

Not responsible for what a request means (Bolt routes it to handlers/) nor for the payload's fields (each
listener validates its own); only for "is this from Slack, and is it a request at all".
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.error import BoltUnhandledRequestError
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.internals import parse_body
from slack_bolt.response import BoltResponse

from bot.errors import StoreUnavailable, store_down
from bot.metrics import MeasuredApp

log = logging.getLogger(__name__)

# Slack's rule: a request whose timestamp is more than five minutes from now is refused (a replay).
MAX_AGE_SECONDS = 300
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SIGNATURE_HEADER = "X-Slack-Signature"
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


class Refusal(enum.Enum):
    """Why a request is not accepted as Slack's; each is a 401."""

    MISSING = "no X-Slack-Signature or X-Slack-Request-Timestamp header"
    MALFORMED = "the signature or timestamp header is not in Slack's format (v0=<64 hex digits>, Unix seconds)"
    STALE = "the request timestamp is more than 5 minutes from now"
    WRONG = "the signature does not match the body"


class BodyProblem(enum.Enum):
    """Why a correctly signed body is not a request; each is a 400."""

    NOT_UTF8 = "the body is not UTF-8"
    NOT_AN_OBJECT = "the body is neither a JSON object nor a form (with a JSON object as `payload`)"
    UNREADABLE = "the body's fields are not of the types Slack sends"


# What Bolt raises reading a field of another type than Slack's (`body["actions"][0]` of a dict, `.get` of a list).
_UNREADABLE = (ValueError, TypeError, AttributeError, KeyError, IndexError)


@dataclass(frozen=True)
class Parsed:
    text: str


def check_signature(secret: bytes, raw: bytes, timestamps: list[str], signatures: list[str], now: float) -> Refusal | None:
    """None when `raw` was signed with `secret` within five minutes of `now` (Slack's v0 scheme); else why not.

    Works on the bytes as they arrived, before anything parses them, and compares in constant time.
    """
    if not timestamps or not signatures:
        return Refusal.MISSING
    if len(timestamps) > 1 or len(signatures) > 1:
        return Refusal.MALFORMED  # which one would count is ambiguous: refuse rather than guess
    timestamp, signature = timestamps[0], signatures[0]
    if not _TIMESTAMP.fullmatch(timestamp) or not _SIGNATURE.fullmatch(signature):
        return Refusal.MALFORMED
    if abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        return Refusal.STALE
    expected = "v0=" + hmac.new(secret, b"v0:" + timestamp.encode() + b":" + raw, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return Refusal.WRONG
    return None


def parse(raw: bytes, content_type: str | None) -> Parsed | BodyProblem:
    """The body as Bolt will read it, refused here if Bolt could not: Slack sends UTF-8, whatever the header says."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return BodyProblem.NOT_UTF8
    try:
        body: object = parse_body(text, content_type)  # typed a dict, but a JSON array or string comes back as is
    except ValueError:  # json.JSONDecodeError is one
        return BodyProblem.NOT_AN_OBJECT
    if not isinstance(body, dict):
        return BodyProblem.NOT_AN_OBJECT
    return Parsed(text)


def slack_events(bolt: AsyncApp, signing_secret: str, wall_clock: Callable[[], float]) -> Callable[[web.Request],
                                                                                                   Awaitable[web.Response]]:
    """The aiohttp handler of `/slack/events`. `wall_clock` is real Unix time: Slack's timestamps are."""
    secret = signing_secret.encode()
    metrics = bolt.metrics if isinstance(bolt, MeasuredApp) else None  # refusals never reach Bolt: counted here

    async def handle(request: web.Request) -> web.Response:
        raw = await request.read()
        refusal = check_signature(
            secret, raw, request.headers.getall(TIMESTAMP_HEADER, []), request.headers.getall(SIGNATURE_HEADER, []), wall_clock()
        )
        if refusal is not None:
            # Anyone can send these: one quiet line each, never a traceback.
            log.info("refused a request to %s: %s", request.path, refusal.value)
            if metrics is not None:
                metrics.slack_requests.labels("other", "refused").inc()
            return web.Response(status=401, text=f"Not signed by Slack: {refusal.value}.\n")
        parsed = parse(raw, request.content_type)
        bolt_request = None
        if isinstance(parsed, Parsed):
            try:
                bolt_request = AsyncBoltRequest(body=parsed.text, query=request.query_string, headers=_single(request))
            except _UNREADABLE:
                parsed = BodyProblem.UNREADABLE  # Bolt reads team/enterprise ids when it builds the request
        if bolt_request is None:
            problem = parsed if isinstance(parsed, BodyProblem) else BodyProblem.UNREADABLE
            log.warning("a signed request to %s could not be read: %s", request.path, problem.value)
            if metrics is not None:
                metrics.slack_requests.labels("other", "unreadable").inc()
            return web.Response(status=400, text=f"Bad request: {problem.value}.\n")
        try:
            answer = await bolt.async_dispatch(bolt_request)
        except _UNREADABLE as exc:
            # Bolt reads fields itself (the first of `actions`, `view`, …) before any listener, and again when it
            # reports an error: a payload of other types fails there, even in its error handler. A Slack change or
            # a bug, not a fault of ours to trace back: one line, and a 400 naming the problem.
            log.warning("a signed request to %s did not fit Bolt (%s): %s", request.path, type(exc).__name__,
                        BodyProblem.UNREADABLE.value)
            return web.Response(status=400, text=f"Bad request: {BodyProblem.UNREADABLE.value}.\n")
        return await to_aiohttp_response(answer)

    return handle


class QuietBadHttp(logging.Filter):
    """aiohttp logs a request its parser refuses (a NUL in a header, a broken request line) as an error with a
    traceback; the client got its 400 and anyone can send those, so it becomes one line at INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], HttpProcessingError) and (record.exc_info[1].code or 500) < 500:
            record.msg, record.args = "refused a malformed HTTP request: %s", (record.exc_info[1].message,)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def quiet_bad_http() -> None:
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, QuietBadHttp) for f in server_log.filters):
        server_log.addFilter(QuietBadHttp())


def _single(request: web.Request) -> dict[str, str | Sequence[str]]:
    # One value per header, the first, as the signature check read them; Bolt would otherwise keep the last.
    headers: dict[str, str | Sequence[str]] = {}
    for name, value in request.headers.items():
        headers.setdefault(name.lower(), value)
    return headers


async def answer_failure(error: Exception, body: object, response: BoltResponse | None) -> BoltResponse | None:
    """Bolt's global error handler: whatever fails inside Bolt (a payload it cannot route, a listener that raised
    before acking) is answered in one line, logged in one line, and never a 5xx or a traceback. `response` is None
    when the listener had acked already: Slack has its answer, so only the log line is left."""
    kind = "request"
    if isinstance(body, dict):
        kind = str(body.get("type") or ("slash_command" if "command" in body else "request"))
    if response is None:
        if not store_down(error):
            log.warning("a %s failed after it was answered: %s", kind, type(error).__name__)
        return None
    if isinstance(error, BoltUnhandledRequestError):
        log.info("no listener takes a %s; answered and dropped", kind)
        return BoltResponse(status=200, body="")
    if store_down(error):
        if kind == "event_callback":
            # Not acknowledged, so Slack delivers the event again once the store is back.
            return BoltResponse(status=503, body="", headers={"Retry-After": "60"})
        text = StoreUnavailable.user_text
    else:
        log.warning("a %s could not be handled: %s", kind, type(error).__name__)
        text = "opsbot could not read this request (it is not in a form opsbot knows); nothing was done."
    if kind == "slash_command":
        return BoltResponse(status=200, body=json.dumps({"response_type": "ephemeral", "text": text}),
                            headers={"content-type": "application/json"})
    return BoltResponse(status=200, body="")
