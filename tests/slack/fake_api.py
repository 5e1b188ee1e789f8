"""A fake Slack: the Web API methods the bot calls, response_url endpoints, and Socket Mode over a WebSocket.

A real aiohttp server the real slack_sdk client talks to. It answers with Slack's envelopes and error codes,
refuses blocks Slack would refuse, records every call, and can be told to fail the next calls.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

BOT_USER = "UBOT0001"


@dataclass
class Call:
    method: str  # Web API method, or "response_url"
    args: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)
    path: str = ""


class FakeSlack:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        # Per method, what the next calls get: a failure, or None to let one through.
        self._failures: dict[str, deque[tuple[int, dict[str, Any], dict[str, str]] | None]] = defaultdict(deque)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._ts = 1_700_000_000.000100
        self.sockets: list[web.WebSocketResponse] = []
        self.groups: dict[str, list[str]] = {}  # usergroups.users.list answers from here
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) -> latest text and blocks
        self.not_in: set[str] = set()  # channels the bot is not in: chat.postMessage answers not_in_channel
        self.socket_acks: dict[str, dict[str, Any]] = {}

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", self._web_api)
        app.router.add_get("/api/{method}", self._web_api)  # slack_sdk sends some read methods as GET
        app.router.add_post("/respond/{key}", self._response_url)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        for ws in self.sockets:
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, key: str | None = None) -> str:
        return f"http://127.0.0.1:{self.port}/respond/{key or uuid.uuid4().hex}"

    # --- test controls -----------------------------------------------------------------------------

    def fail_next(self, method: str, *, status: int = 200, error: str | None = None, retry_after: int | None = None,
                  times: int = 1, after: int = 0) -> None:
        """Make `times` calls of `method` fail, once `after` more have gone through: an HTTP status
        (429, 500…) or an `ok: false` error."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = {"ok": False, "error": error or ("ratelimited" if status == 429 else "fatal_error")}
        for _ in range(after):
            self._failures[method].append(None)
        for _ in range(times):
            self._failures[method].append((status, body, headers))

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

    # --- Web API -----------------------------------------------------------------------------------

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    async def _web_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _read_args(request)
        if method != "apps.connections.open" and not request.headers.get("Authorization", "").startswith("Bearer xoxb-"):
            return web.json_response({"ok": False, "error": "not_authed"})
        queued = self._failures.get(method)
        failure = queued.popleft() if queued else None
        if failure is not None:
            status, body, headers = failure
            await self._record(Call(method + "!failed", args, dict(request.headers)))
            return web.json_response(body, status=status, headers=headers)
        problem = _block_problem(args.get("blocks"))
        if problem:
            await self._record(Call(method + "!failed", args, dict(request.headers)))
            return web.json_response({"ok": False, "error": "invalid_blocks", "errors": [problem]})
        if method == "chat.postMessage" and args.get("channel") in self.not_in:
            await self._record(Call(method + "!failed", args, dict(request.headers)))
            return web.json_response({"ok": False, "error": "not_in_channel"})
        answer = self._answer(method, args)
        if method in ("chat.postMessage", "chat.update"):
            self.messages[(str(args.get("channel")), str(answer["ts"]))] = {"text": args.get("text"), "blocks": args.get("blocks")}
        await self._record(Call(method, args, dict(request.headers)))
        return web.json_response(answer)

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "url": "https://fake.slack/", "team": "Fake", "user": "opsbot",
                    "team_id": "T0001", "user_id": BOT_USER, "bot_id": "B0001"}
        if method in ("chat.postMessage", "chat.update"):
            self._ts += 1
            ts = args.get("ts") or f"{self._ts:.6f}"
            return {"ok": True, "channel": args.get("channel"), "ts": ts, "message": {"text": args.get("text")}}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"{self._ts:.6f}"}
        if method == "usergroups.users.list":
            if args.get("usergroup") not in self.groups:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": self.groups[args["usergroup"]]}
        if method == "views.open":
            return {"ok": True, "view": {"id": "V0001", **(args.get("view") or {})}}
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"}
        return {"ok": True}

    async def _response_url(self, request: web.Request) -> web.Response:
        args = await request.json()
        queued = self._failures.get("response_url")
        failure = queued.popleft() if queued else None
        if failure is not None:
            status, _, headers = failure
            await self._record(Call("response_url!failed", args, dict(request.headers), path=request.path))
            return web.Response(status=status, text="fatal_error", headers=headers)
        problem = _block_problem(args.get("blocks"))
        if problem:
            return web.Response(status=400, text="invalid_blocks")
        await self._record(Call("response_url", args, dict(request.headers), path=request.path))
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

    async def push(self, envelope_type: str, payload: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        """Send an envelope the way Slack does and wait for the bot's acknowledgement."""
        envelope_id = uuid.uuid4().hex
        await self.sockets[-1].send_json(
            {"envelope_id": envelope_id, "type": envelope_type, "payload": payload, "accepts_response_payload": envelope_type != "events_api"}
        )
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: envelope_id in self.socket_acks), timeout)
        return self.socket_acks[envelope_id]


async def _read_args(request: web.Request) -> dict[str, Any]:
    if request.method == "GET":
        return dict(request.query)
    if request.content_type == "application/json":
        return dict(await request.json())
    text = await request.text()
    args: dict[str, Any] = dict(parse_qsl(text, keep_blank_values=True))
    for key in ("blocks", "attachments", "view"):
        if isinstance(args.get(key), str):
            args[key] = json.loads(args[key])
    return args


def _block_problem(blocks: Any) -> str | None:
    """The subset of Slack's block validation the bot's messages must pass."""
    if blocks is None:
        return None
    if not isinstance(blocks, list):
        return "blocks must be a list"
    if len(blocks) > 50:
        return f"no more than 50 items allowed [json-pointer:/blocks] (got {len(blocks)})"
    for index, block in enumerate(blocks):
        text = (block.get("text") or {}).get("text", "")
        if block.get("type") == "section" and len(text) > 3000:
            return f"must be less than 3001 characters [json-pointer:/blocks/{index}/text/text]"
        if block.get("type") == "header" and len(text) > 150:
            return f"must be less than 151 characters [json-pointer:/blocks/{index}/text/text]"
        for element in block.get("elements", []):
            if element.get("type") == "button" and len(str(element.get("value", ""))) > 2000:
                return f"must be less than 2001 characters [json-pointer:/blocks/{index}/elements]"
    return None
