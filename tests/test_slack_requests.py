"""`/slack/events`'s door: the signature is checked on the raw bytes before anything parses them.

Unsigned or wrongly signed requests are 401, signed bodies that are not requests are 400, and neither leaves a
traceback or an error in the log. Driven through the real app on a port (SQLite store, the fake Slack).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.client
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.slack_requests import BodyProblem, Parsed, Refusal, check_signature, parse
from playground.payloads import SIGNING_SECRET, sign, slash_command
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings, start_bot

SECRET = SIGNING_SECRET.encode()
CATALOG = """
services:
  web:
    environment: production
    checks:
      - type: http
        url: http://127.0.0.1:9/
"""


def signed(raw: bytes, timestamp: int | None = None, secret: bytes = SECRET) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret, b"v0:" + ts.encode() + b":" + raw, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


# --- the check itself, on bytes -----------------------------------------------------------------------------

NOW = 1_800_000_000


def _good(raw: bytes = b"token=x") -> tuple[str, str]:
    headers = signed(raw, NOW)
    return headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]


@pytest.mark.parametrize(
    ("timestamps", "signatures", "expected"),
    [
        ([], [_good()[1]], Refusal.MISSING),
        ([_good()[0]], [], Refusal.MISSING),
        (["abc"], [_good()[1]], Refusal.MALFORMED),
        (["١٨٠٠٠٠٠٠٠٠"], [_good()[1]], Refusal.MALFORMED),  # digits int() reads, but not Slack's
        ([" 1800000000"], [_good()[1]], Refusal.MALFORMED),
        (["1_800_000_000"], [_good()[1]], Refusal.MALFORMED),
        ([_good()[0]], ["v0=" + "é" * 64], Refusal.MALFORMED),  # slack_sdk's compare_digest raised on this
        ([_good()[0]], [_good()[1].upper()], Refusal.MALFORMED),
        ([_good()[0]], ["v1=" + _good()[1][3:]], Refusal.MALFORMED),
        ([_good()[0], _good()[0]], [_good()[1]], Refusal.MALFORMED),
        ([str(NOW - 301)], [signed(b"token=x", NOW - 301)["X-Slack-Signature"]], Refusal.STALE),
        ([str(NOW + 301)], [signed(b"token=x", NOW + 301)["X-Slack-Signature"]], Refusal.STALE),
        ([_good()[0]], ["v0=" + "0" * 64], Refusal.WRONG),
        ([_good()[0]], [signed(b"token=x", NOW, b"another secret")["X-Slack-Signature"]], Refusal.WRONG),
        ([_good()[0]], [_good()[1]], None),
        ([str(NOW - 299)], [signed(b"token=x", NOW - 299)["X-Slack-Signature"]], None),
    ],
)
def test_signature_check_on_raw_bytes(timestamps: list[str], signatures: list[str], expected: Refusal | None) -> None:
    assert check_signature(SECRET, b"token=x", timestamps, signatures, NOW) == expected


def test_a_signature_covers_every_byte() -> None:
    ts, sig = _good(b"token=x")
    assert check_signature(SECRET, b"token=y", [ts], [sig], NOW) is Refusal.WRONG


@pytest.mark.parametrize(
    ("raw", "content_type", "expected"),
    [
        (b"{garbage", "application/json", BodyProblem.NOT_AN_OBJECT),
        (b"\xff\xfe\x00", "application/json", BodyProblem.NOT_UTF8),
        (b"[1, 2]", "application/json", BodyProblem.NOT_AN_OBJECT),
        (b'"text"', "application/json", BodyProblem.NOT_AN_OBJECT),
        (b"payload=%7Bnot+json", "application/x-www-form-urlencoded", BodyProblem.NOT_AN_OBJECT),
        (b"payload=%5B1%5D", "application/x-www-form-urlencoded", BodyProblem.NOT_AN_OBJECT),
        (b'{"type": "event_callback"}', "application/json", Parsed('{"type": "event_callback"}')),
        (b"command=%2Fops&text=help", "application/x-www-form-urlencoded", Parsed("command=%2Fops&text=help")),
    ],
)
def test_body_is_parsed_as_bolt_reads_it_or_refused(raw: bytes, content_type: str, expected: object) -> None:
    assert parse(raw, content_type) == expected


# --- through the real app -------------------------------------------------------------------------------------


@pytest.fixture
async def bot(slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path) -> AsyncIterator[RunningBot]:
    running, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'opsbot.db'}"), CATALOG, slack, http)
    yield running
    await runner.cleanup()


def faults(records: list[logging.LogRecord]) -> list[str]:
    """Log lines a refused request must not leave: tracebacks and errors."""
    return [f"{r.name}: {r.getMessage()}" for r in records if r.exc_info or r.levelno >= logging.ERROR]


async def post_raw(bot: RunningBot, raw: bytes, headers: dict[str, str]) -> tuple[int, str]:
    async with bot.http.post(f"{bot.url}/slack/events", data=raw, headers=headers) as response:
        return response.status, await response.text()


def _command(text: str = "help") -> bytes:
    return slash_command("/ops", text, user="U0ALICE", channel="C0OPS", response_url="http://127.0.0.1:9/r")[0].encode()


JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
UNSIGNED = [
    ("garbage json", b"{garbage", JSON),
    ("non-utf8", b"\xff\xfe\xfd", JSON),
    ("unknown charset", b'{"type": "event_callback"}', {"Content-Type": "application/json; charset=klingon"}),
    ("timestamp abc", b"{garbage", {**JSON, "X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": "v0=" + "0" * 64}),
    ("empty headers", _command(), {**FORM, "X-Slack-Request-Timestamp": "", "X-Slack-Signature": ""}),
    ("wrong signature", _command(), {**FORM, **signed(_command(), secret=b"guess")}),
    ("stale", _command(), {**FORM, **signed(_command(), int(time.time()) - 400)}),
    ("from the future", _command(), {**FORM, **signed(_command(), int(time.time()) + 400)}),
    ("huge timestamp", _command(), {**FORM, "X-Slack-Request-Timestamp": "9" * 400, "X-Slack-Signature": "v0=" + "0" * 64}),
    ("empty body", b"", JSON),
]


@pytest.mark.parametrize(("raw", "headers"), [(raw, headers) for _, raw, headers in UNSIGNED],
                         ids=[name for name, *_ in UNSIGNED])
async def test_unauthenticated_requests_are_401_before_anything_parses_them(
    bot: RunningBot, raw: bytes, headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    status, text = await post_raw(bot, raw, headers)
    assert status == 401 and "Not signed by Slack" in text
    await bot.settle()
    assert faults(caplog.records) == []
    assert await bot.ctx.store.audit_entries() == []


async def test_a_non_ascii_signature_header_is_401(bot: RunningBot, caplog: pytest.LogCaptureFixture) -> None:
    # aiohttp's client refuses to send such a header, so this goes over a plain socket.
    raw = _command()
    ts = str(int(time.time()))
    status, _ = await asyncio.to_thread(_post_bytes, bot.url, raw, [("Content-Type", b"application/x-www-form-urlencoded"),
                                                                    ("X-Slack-Request-Timestamp", ts.encode()),
                                                                    ("X-Slack-Signature", "v0=é".encode() * 20)])
    assert status == 401
    assert faults(caplog.records) == []


SIGNED_GARBAGE = [
    ("garbage json", b"{garbage", "application/json"),
    ("non-utf8 json", b'{"a": "\xff"}', "application/json"),
    ("non-utf8 form", b"payload=\xff\xfe", "application/x-www-form-urlencoded"),
    ("json array", b"[1, 2, 3]", "application/json"),
    ("form payload not json", b"payload=%7Bnope", "application/x-www-form-urlencoded"),
    ("form payload a list", b"payload=%5B%5D", "application/x-www-form-urlencoded"),
    ("odd team types", json.dumps({"type": "event_callback", "team": 5, "authorizations": [7], "enterprise": []}).encode(),
     "application/json"),
]


@pytest.mark.parametrize(("raw", "content_type"), [(raw, ct) for _, raw, ct in SIGNED_GARBAGE],
                         ids=[n for n, *_ in SIGNED_GARBAGE])
async def test_a_signed_body_that_is_not_a_request_is_400_without_a_traceback(
    bot: RunningBot, raw: bytes, content_type: str, caplog: pytest.LogCaptureFixture
) -> None:
    status, text = await post_raw(bot, raw, {"Content-Type": content_type, **signed(raw)})
    assert status in (200, 400), text
    if status == 400:
        assert text.startswith("Bad request: ")
    await bot.settle()
    assert faults(caplog.records) == []


async def test_an_unknown_charset_on_a_signed_command_is_read_as_utf8(bot: RunningBot) -> None:
    raw = _command("help")
    status, _ = await post_raw(bot, raw, {"Content-Type": "application/x-www-form-urlencoded; charset=klingon", **signed(raw)})
    assert status == 200


async def test_a_signed_request_opsbot_has_no_listener_for_is_answered_200(bot: RunningBot,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    raw = json.dumps({"type": "something_new", "token": "x"}).encode()
    status, _ = await post_raw(bot, raw, {"Content-Type": "application/json", **signed(raw)})
    assert status == 200
    assert faults(caplog.records) == []


async def test_a_signed_command_still_works(bot: RunningBot) -> None:
    body, content_type = slash_command("/ops", "help", user="U0ALICE", channel="C0OPS", response_url=bot.slack.response_url())
    status, text = await post_raw(bot, body.encode(), {"Content-Type": content_type, **sign(body)})
    assert status == 200 and "/ops health" in text


# --- any bytes, any headers: never a 5xx (a property, against one bot running on its own loop) ----------------


def _post_bytes(url: str, raw: bytes, headers: list[tuple[str, bytes]]) -> tuple[int, bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=20)
    try:
        conn.putrequest("POST", "/slack/events", skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(raw)))
        conn.endheaders(raw)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class ThreadedBot:
    """The real app on a loop of its own thread, so a synchronous hypothesis test can post to it."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.loop = directory, asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.log = _Collect()

    def __enter__(self) -> ThreadedBot:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(60)
        logging.getLogger().addHandler(self.log)
        return self

    async def _start(self) -> None:
        self.slack = FakeSlack()
        await self.slack.start()
        self.http = aiohttp.ClientSession()
        settings_ = make_settings(self.slack, f"sqlite:///{self.directory / 'opsbot.db'}")
        self.bot, self.runner = await start_bot(settings_, CATALOG, self.slack, self.http)

    def __exit__(self, *_: object) -> None:
        logging.getLogger().removeHandler(self.log)
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    async def _stop(self) -> None:
        await self.runner.cleanup()
        await self.http.close()
        await self.slack.stop()

    def post(self, raw: bytes, headers: list[tuple[str, bytes]]) -> int:
        return _post_bytes(self.bot.url, raw, headers)[0]

    def settle(self) -> None:
        asyncio.run_coroutine_threadsafe(self.bot.settle(), self.loop).result(60)


@pytest.fixture(scope="module")
def threaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedBot]:
    with ThreadedBot(tmp_path_factory.mktemp("threaded")) as running:
        yield running


# database=None: examples are not stored in the working tree; the printed falsifying example replays a failure.
PROPERTY = settings(max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
_header_bytes = st.binary(max_size=90).filter(lambda b: b"\r" not in b and b"\n" not in b)
_content_types = st.one_of(
    st.sampled_from([b"application/json", b"application/x-www-form-urlencoded", b"text/plain",
                     b"application/json; charset=klingon",
                     b"application/x-www-form-urlencoded; charset=latin-1", b"multipart/form-data; boundary=x", b""]),
    _header_bytes,
)
_bodies = st.one_of(
    st.binary(max_size=600),
    st.text(max_size=300).map(str.encode),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                 lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                 max_leaves=12).map(lambda value: json.dumps(value).encode()),
    st.dictionaries(st.sampled_from(["payload", "command", "text", "type", "token"]), st.text(max_size=40), max_size=4)
    .map(lambda form: urlencode(form).encode()),
)


@PROPERTY
@given(raw=_bodies, content_type=_content_types,
       timestamp=st.one_of(st.none(), _header_bytes, st.just(str(int(time.time())).encode())),
       signature=st.one_of(st.none(), _header_bytes, st.just(b"v0=" + b"0" * 64)))
def test_any_unsigned_request_is_refused_never_a_5xx(threaded: ThreadedBot, raw: bytes, content_type: bytes,
                                                   timestamp: bytes | None, signature: bytes | None) -> None:
    headers = [("Content-Type", content_type)]
    headers += [("X-Slack-Request-Timestamp", timestamp)] if timestamp is not None else []
    headers += [("X-Slack-Signature", signature)] if signature is not None else []
    before = len(threaded.log.records)
    assert threaded.post(raw, headers) in (400, 401)  # 400: aiohttp's parser refused a header byte first
    assert faults(threaded.log.records[before:]) == []


@PROPERTY
@given(raw=_bodies, content_type=_content_types)
def test_any_signed_body_is_answered_200_or_400_never_a_5xx(threaded: ThreadedBot, raw: bytes, content_type: bytes) -> None:
    before = len(threaded.log.records)
    headers = [("Content-Type", content_type)] + [(name, value.encode()) for name, value in signed(raw).items()]
    assert threaded.post(raw, headers) in (200, 400)
    threaded.settle()
    assert faults(threaded.log.records[before:]) == []


# --- Bolt's global error handler ---------------------------------------------------------------------------------


async def test_the_error_handler_answers_a_command_in_words_and_an_event_for_redelivery() -> None:
    from slack_bolt.response import BoltResponse

    from bot.errors import StoreUnavailable
    from bot.slack_requests import answer_failure

    down = StoreUnavailable("PostgreSQL did not answer (OSError)")
    command = await answer_failure(down, {"command": "/ops", "text": "help"}, BoltResponse(status=500))
    assert command is not None and command.status == 200
    assert json.loads(command.body) == {"response_type": "ephemeral", "text": StoreUnavailable.user_text}
    event = await answer_failure(down, {"type": "event_callback"}, BoltResponse(status=500))
    assert event is not None and event.status == 503  # not acknowledged: Slack delivers it again later
    broken = await answer_failure(KeyError("actions"), {"type": "block_actions"}, BoltResponse(status=500))
    assert broken is not None and broken.status == 200
    # After the ack Slack has its answer; Bolt would refuse a response then, so there is none.
    assert await answer_failure(KeyError("view"), {"type": "view_submission"}, None) is None
