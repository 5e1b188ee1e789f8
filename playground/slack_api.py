"""A fake Slack: the Web API methods the bot calls, file upload URLs, response_url endpoints, and Socket Mode.

A real aiohttp server the real slack_sdk client talks to. It answers with Slack's envelopes and error codes,
refuses blocks and views Slack would refuse, records every call, and can be told to fail the next calls. It also
delivers signed requests to the bot (`deliver`), and its `weather` (off by default) makes it misbehave as Slack does:
duplicates, events re-sent with X-Slack-Retry-Num after a late acknowledgement, Web API calls answered 429.
What the workspace holds (channels, messages, pins, users, files, views) and its rules are in `workspace`.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import BodyPartReader, WSMsgType, web

from playground.payloads import sign
from playground.workspace import BOT_USER, INCIDENTS, OPS, Workspace

__all__ = ["BOT_USER", "INCIDENTS", "OPS", "Call", "Delivery", "FakeSlack", "Weather"]

_VIEW_METHODS = ("views.open", "views.push", "views.update")


@dataclass
class Call:
    method: str  # Web API method, "response_url" or "upload" (a file upload URL)
    args: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)
    path: str = ""


@dataclass
class Weather:
    """Switchable misbehaviour, all off by default: how Slack delivers requests to the bot (`deliver`) and how its
    Web API answers. Decisions are drawn from `rng`, so a seeded run replays."""

    duplicate: float = 0.0  # chance a delivery is sent twice at once (a double click; an event sent again)
    ack_timeout: float = 3.0  # Slack gives up waiting for the bot's acknowledgement after this long
    retries: int = 3  # an event not acknowledged in time (or answered 5xx) is re-sent this often, X-Slack-Retry-Num 1…
    rate_limit: float = 0.0  # chance a Web API call is answered 429 with Retry-After
    retry_after: int = 1
    rng: random.Random = field(default_factory=random.Random)


@dataclass(frozen=True)
class Delivery:
    """What became of one request Slack delivered: each attempt's status (0: no answer within the ack timeout, or no
    connection) and body."""

    attempts: tuple[tuple[int, str], ...]

    @property
    def acked(self) -> bool:
        return any(status == 200 for status, _ in self.attempts)

    @property
    def acks(self) -> int:
        """How many attempts the bot acknowledged (a duplicate acknowledged twice counts twice)."""
        return sum(status == 200 for status, _ in self.attempts)

    @property
    def answers(self) -> list[str]:
        return [body for status, body in self.attempts if status == 200 and body]


class FakeSlack(Workspace):
    def __init__(self) -> None:
        super().__init__()
        self.weather = Weather()
        self._client: aiohttp.ClientSession | None = None
        self.calls: list[Call] = []
        # Per method, what the next calls get: a failure, or None to let one through.
        self._failures: dict[str, deque[tuple[int, dict[str, Any], dict[str, str]] | None]] = defaultdict(deque)
        self._before: dict[str, deque[Callable[[], Awaitable[None]]]] = defaultdict(deque)
        self._changed = asyncio.Condition()
        self.version = 0  # grows with every change a page may want to show
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.sockets: list[web.WebSocketResponse] = []
        self.socket_acks: dict[str, dict[str, Any]] = {}

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0, routes: Any = None) -> None:
        """Serve on host:port (a free port by default); `routes(app)` may add more (the playground's page)."""
        app = web.Application()
        app.router.add_post("/api/{method}", self._web_api)
        app.router.add_get("/api/{method}", self._web_api)  # slack_sdk sends some read methods as GET
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/respond/{key}", self._response_url)
        app.router.add_get("/socket", self._socket)
        if routes is not None:
            routes(app)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._client = aiohttp.ClientSession()

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
        for ws in self.sockets:
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, key: str | None = None) -> str:
        return f"http://127.0.0.1:{self.port}/respond/{key or uuid.uuid4().hex}"

    def upload_url(self, file_id: str) -> str:
        return f"http://127.0.0.1:{self.port}/upload/{file_id}"

    # --- test controls -----------------------------------------------------------------------------

    def fail_next(self, method: str, *, status: int = 200, error: str | None = None, retry_after: int | None = None,
                  times: int = 1, after: int = 0) -> None:
        """Make `times` calls of `method` fail, once `after` more have gone through: an HTTP status
        (429, 500…) or an `ok: false` error. `method` may also be "response_url" or "upload" (give those a status)."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = {"ok": False, "error": error or ("ratelimited" if status == 429 else "fatal_error")}
        for _ in range(after):
            self._failures[method].append(None)
        for _ in range(times):
            self._failures[method].append((status, body, headers))

    def before_answering(self, method: str, hook: Callable[[], Awaitable[None]]) -> None:
        """Await `hook` before answering the next call of `method`: a test makes something happen at that exact
        point of the bot's work (its store goes away after Slack made a channel, say)."""
        self._before[method].append(hook)

    def _rate_limited(self, method: str) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        weather = self.weather
        if method == "apps.connections.open" or not weather.rate_limit or weather.rng.random() >= weather.rate_limit:
            return None
        return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(weather.retry_after)}

    def _take_failure(self, method: str) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        queued = self._failures.get(method)
        return queued.popleft() if queued else None

    def of(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        """Wait until `method` has been called `count` times; returns those calls."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: len(self.of(method)) >= count), timeout)
            except TimeoutError:
                raise AssertionError(
                    f"expected {count} {method} call(s) within {timeout} s, got {len(self.of(method))}: "
                    f"{[c.method for c in self.calls]}"
                ) from None
        return self.of(method)[:count]

    # --- delivering requests to the bot ---------------------------------------------------------------

    async def deliver(self, url: str | Sequence[str], body: str, content_type: str, *, event: bool = False) -> Delivery:
        """POST a signed request to the bot as Slack would under `weather`: maybe twice at once; an event
        (`event=True`) not acknowledged within the ack timeout, or answered 5xx, is re-sent with X-Slack-Retry-Num.
        Slack never re-sends a command or an interaction: a person sees the timeout and may try again. Several URLs
        stand for replicas behind a load balancer: each attempt goes to one of them."""
        weather = self.weather
        urls = [url] if isinstance(url, str) else list(url)
        copies = 2 if weather.duplicate and weather.rng.random() < weather.duplicate else 1
        sent = await asyncio.gather(*(self._deliver_once(urls, body, content_type, event=event) for _ in range(copies)))
        return Delivery(tuple(attempt for attempts in sent for attempt in attempts))

    async def _deliver_once(self, urls: list[str], body: str, content_type: str, *, event: bool) -> list[tuple[int, str]]:
        attempts: list[tuple[int, str]] = []
        for attempt in range((self.weather.retries if event else 0) + 1):
            retry = {"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_timeout"} if attempt else {}
            answered = await self._post(self.weather.rng.choice(urls), body,
                                        {"Content-Type": content_type, **sign(body), **retry})
            attempts.append(answered)
            if 0 < answered[0] < 500:  # answered: a 4xx is a refusal Slack does not retry
                break
        return attempts

    async def _post(self, url: str, body: str, headers: dict[str, str]) -> tuple[int, str]:
        assert self._client is not None, "start() first"
        try:
            async with self._client.post(url, data=body.encode(), headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=self.weather.ack_timeout)) as response:
                return response.status, await response.text(errors="replace")
        except (aiohttp.ClientError, TimeoutError):
            return 0, ""

    # --- Web API -----------------------------------------------------------------------------------

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self.version += 1
            self._changed.notify_all()

    async def touch(self) -> None:
        """Something changed outside a Web API call (a person acted): wake the pages."""
        async with self._changed:
            self.version += 1
            self._changed.notify_all()

    async def changed_since(self, version: int, timeout: float) -> int:
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self.version != version), timeout)
            except TimeoutError:
                pass
            return self.version

    async def _web_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _read_args(request)
        if method != "apps.connections.open" and not request.headers.get("Authorization", "").startswith("Bearer xoxb-"):
            return web.json_response({"ok": False, "error": "not_authed"})
        if self._before.get(method):
            await self._before[method].popleft()()
        failure = self._take_failure(method) or self._rate_limited(method)
        if failure is not None:
            status, body, headers = failure
            await self._record(Call(method + "!failed", args, dict(request.headers)))
            return web.json_response(body, status=status, headers=headers)
        answer = _refusal(method, args) or self._answer(method, args)
        await self._record(Call(method if answer["ok"] else method + "!failed", args, dict(request.headers)))
        return web.json_response(answer)

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "url": "https://fake.slack/", "team": "Fake", "user": "opsbot",
                    "team_id": "T0001", "user_id": BOT_USER, "bot_id": "B0001"}
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"}
        return self.answer(method, args)

    async def _upload(self, request: web.Request) -> web.Response:
        """The upload URL files.getUploadURLExternal hands out; slack_sdk POSTs the raw bytes, curl -F a form."""
        file_id = request.match_info["file_id"]
        content = await _read_upload(request)
        call = Call("upload", {"file_id": file_id, "size": len(content)}, dict(request.headers), path=request.path)
        failure = self._take_failure("upload")
        if failure is not None or not self.receive_upload(file_id, content):
            status, _, headers = failure or (404, {}, {})
            await self._record(Call("upload!failed", call.args, call.headers, path=call.path))
            return web.Response(status=status, text="upload failed", headers=headers)
        await self._record(call)
        return web.Response(text=f"OK - {len(content)}")

    async def _response_url(self, request: web.Request) -> web.Response:
        args = await request.json()
        failure = self._take_failure("response_url")
        if failure is not None:
            status, _, headers = failure
            await self._record(Call("response_url!failed", args, dict(request.headers), path=request.path))
            return web.Response(status=status, text="fatal_error", headers=headers)
        problem = _block_problem(args.get("blocks"))
        if problem:
            return web.Response(status=400, text="invalid_blocks")
        await self._record(Call("response_url", args, dict(request.headers), path=request.path))
        self.respond(request.match_info["key"], args)
        return web.Response(text="ok")

    # --- Socket Mode -------------------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0001"}})
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                data = json.loads(msg.data)
                if "envelope_id" in data:
                    async with self._changed:
                        self.socket_acks[data["envelope_id"]] = data
                        self._changed.notify_all()
        return ws

    async def wait_for_socket(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.sockets:
            if time.monotonic() > deadline:
                raise AssertionError("the bot never opened a Socket Mode connection")
            await asyncio.sleep(0.02)

    async def push(self, envelope_type: str, payload: dict[str, Any], timeout: float = 5.0, *,
                   retry_attempt: int = 0) -> dict[str, Any]:
        """Send an envelope the way Slack does and wait for the bot's acknowledgement (with the envelope's id)."""
        envelope_id = uuid.uuid4().hex
        retry = {"retry_attempt": retry_attempt, "retry_reason": "timeout"} if retry_attempt else {}
        await self.sockets[-1].send_json(
            {"envelope_id": envelope_id, "type": envelope_type, "payload": payload,
             "accepts_response_payload": envelope_type != "events_api", **retry}
        )
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: envelope_id in self.socket_acks), timeout)
        return self.socket_acks[envelope_id]


async def _read_args(request: web.Request) -> dict[str, Any]:
    # slack_sdk sends some methods' arguments in the query string, even with POST.
    args: dict[str, Any] = dict(request.query)
    if request.method == "GET":
        return args
    if request.content_type == "application/json":
        return {**args, **await request.json()}
    args.update(parse_qsl(await request.text(), keep_blank_values=True))
    for key in ("blocks", "attachments", "view"):
        if isinstance(args.get(key), str):
            args[key] = json.loads(args[key])
    return args


async def _read_upload(request: web.Request) -> bytes:
    if not request.content_type.startswith("multipart/"):
        return await request.read()
    reader = await request.multipart()
    async for part in reader:
        if isinstance(part, BodyPartReader) and (part.filename or part.name == "file"):
            return bytes(await part.read())
    return b""


def _refusal(method: str, args: dict[str, Any]) -> dict[str, Any] | None:
    """Slack's answer to a payload it refuses whatever the workspace holds: invalid blocks, or an invalid view."""
    problem = _block_problem(args.get("blocks"))
    if problem:
        return {"ok": False, "error": "invalid_blocks", "errors": [problem]}
    if method in _VIEW_METHODS:
        problem = _view_problem(args.get("view"))
        if problem:
            messages = [f"[ERROR] {problem}"]
            return {"ok": False, "error": "invalid_arguments", "response_metadata": {"messages": messages}}
    return None


def _block_problem(blocks: Any, *, limit: int = 50, pointer: str = "/blocks") -> str | None:
    """The subset of Slack's block validation the bot's messages (at most 50 blocks) and modals (100) must pass."""
    if blocks is None:
        return None
    if not isinstance(blocks, list):
        return "blocks must be a list"
    if len(blocks) > limit:
        return f"no more than {limit} items allowed [json-pointer:{pointer}] (got {len(blocks)})"
    for index, block in enumerate(blocks):
        text = (block.get("text") or {}).get("text", "")
        if block.get("type") == "section" and len(text) > 3000:
            return f"must be less than 3001 characters [json-pointer:{pointer}/{index}/text/text]"
        if block.get("type") == "header" and len(text) > 150:
            return f"must be less than 151 characters [json-pointer:{pointer}/{index}/text/text]"
        for element in block.get("elements", []):
            if element.get("type") == "button" and len(str(element.get("value", ""))) > 2000:
                return f"must be less than 2001 characters [json-pointer:{pointer}/{index}/elements]"
    return None


def _view_problem(view: Any) -> str | None:
    """views.open/push/update: a modal's title, submit and close labels fit in 24 characters; up to 100 blocks."""
    if not isinstance(view, dict):
        return "missing required field: view [json-pointer:/view]"
    for key in ("title", "submit", "close"):
        if len((view.get(key) or {}).get("text", "")) > 24:
            return f"must be less than 25 characters [json-pointer:/view/{key}/text]"
    return _block_problem(view.get("blocks"), limit=100, pointer="/view/blocks")
