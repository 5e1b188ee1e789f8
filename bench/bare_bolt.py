"""The baseline bench/compare.py measures opsbot against: a bare Bolt app (AsyncApp on aiohttp) with one slash
command that acks. Not part of opsbot; run by bench/compare.py as its own process.

    SLACK_SIGNING_SECRET=… PORT=… python bench/bare_bolt.py
"""

from __future__ import annotations

import os
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient


def main() -> None:
    client = AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"])
    bolt = AsyncApp(client=client, signing_secret=os.environ["SLACK_SIGNING_SECRET"], process_before_response=False,
                    name="bare")

    @bolt.command("/ops")
    async def ops(ack: Any) -> None:
        await ack("ok")

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    async def livez(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/slack/events", events)
    app.router.add_get("/livez", livez)
    web.run_app(app, host="127.0.0.1", port=int(os.environ["PORT"]), print=None)


if __name__ == "__main__":
    main()
