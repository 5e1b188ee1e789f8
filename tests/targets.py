"""Real HTTP services for health checks to probe: one healthy, one failing, one that never answers."""

from __future__ import annotations

import asyncio

from aiohttp import web


async def serve(app: web.Application) -> tuple[web.AppRunner, int]:
    """`app` served on a free loopback port: its runner (clean it up when done) and the port."""
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, runner.addresses[0][1]


class Targets:
    """One aiohttp server: /ok, /fail (500), /hang, /slow?ms=N, /auth (wants a bearer token);
    `/switch` answers 200 or 503 per `self.switch_healthy`."""

    def __init__(self) -> None:
        self.switch_healthy = True
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        async def ok(_: web.Request) -> web.Response:
            return web.Response(text='{"status": "ok"}', content_type="application/json")

        async def fail(_: web.Request) -> web.Response:
            return web.Response(status=500, text="internal error")

        async def hang(_: web.Request) -> web.Response:
            await asyncio.sleep(3600)
            return web.Response(text="too late")

        async def switch(_: web.Request) -> web.Response:
            return web.Response(text="ok") if self.switch_healthy else web.Response(status=503, text="down")

        async def slow(request: web.Request) -> web.Response:
            await asyncio.sleep(int(request.query.get("ms", "100")) / 1000)
            return web.Response(text="ok")

        async def auth(request: web.Request) -> web.Response:
            if request.headers.get("Authorization") != "Bearer s3cret-token":
                return web.Response(status=401, text="unauthorized")
            return web.Response(text="ok")

        async def chunked(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            await response.write(b'{"db": "up", ')
            await asyncio.sleep(0.1)  # the rest arrives later, as over a real network
            await response.write(b'"status": "ok"}')
            await response.write_eof()
            return response

        app = web.Application()
        app.router.add_get("/chunked", chunked)
        app.router.add_get("/slow", slow)
        app.router.add_get("/auth", auth)
        app.router.add_get("/ok", ok)
        app.router.add_get("/fail", fail)
        app.router.add_get("/hang", hang)
        app.router.add_get("/switch", switch)
        self._runner, self.port = await serve(app)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
