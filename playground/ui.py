"""The page's side of the stand-in: what a user sees (`/ui/state`), what they do (`/ui/command`, `/ui/press`,
`/ui/submit`, `/ui/say`, `/ui/react`), live changes (`/ui/events`, server-sent events), and the demo switch."""

from __future__ import annotations

from importlib import resources
from typing import Any

from aiohttp import web

from playground.session import BotRefused, Session
from playground.slack_api import FakeSlack

PEOPLE = ["U0ALICE", "U0BOB", "U0CAROL"]


class DemoSwitches:
    """Which demo services answer healthy; the page flips them."""

    def __init__(self) -> None:
        self.healthy: dict[str, bool] = {"storefront": True, "payments": True, "search": True}


def add_routes(app: web.Application, slack: FakeSlack, session: Session, demo: DemoSwitches,
               completion: dict[str, list[str]]) -> None:
    static = resources.files("playground") / "static"

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=(static / "index.html").read_text(encoding="utf-8"), content_type="text/html")

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ("app.js", "style.css"):
            raise web.HTTPNotFound()
        kind = "application/javascript" if name.endswith(".js") else "text/css"
        return web.Response(text=(static / name).read_text(encoding="utf-8"), content_type=kind)

    async def state(request: web.Request) -> web.Response:
        return web.json_response(view_of(slack, request.query.get("user", PEOPLE[0]), demo, completion))

    async def act(request: web.Request) -> web.Response:
        data = await request.json()
        what = request.match_info["what"]
        try:
            if what == "command":
                await session.command(data["user"], data["channel"], data["text"])
            elif what == "press":
                await session.press(data["user"], data["channel"], data["ts"], data["action"])
            elif what == "submit":
                errors = await session.submit(data["user"], data["view_id"], data["values"])
                if errors:
                    return web.json_response({"ok": False, "errors": errors})
            elif what == "say":
                await session.say(data["user"], data["channel"], data["text"])
            elif what == "react":
                await session.react(data["user"], data["channel"], data["ts"], data["reaction"], removed=bool(data.get("removed")))
            elif what == "dismiss":
                slack.views.pop(data["view_id"], None)
            elif what == "demo":
                demo.healthy[data["service"]] = bool(data["healthy"])
            else:
                raise web.HTTPNotFound()
        except BotRefused as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=502)
        except KeyError as exc:
            return web.json_response({"ok": False, "error": f"missing {exc}"}, status=400)
        await slack.touch()
        return web.json_response({"ok": True})

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        seen = slack.version
        while True:
            seen = await slack.changed_since(seen, timeout=15)
            await response.write(b"data: change\n\n")

    app.router.add_get("/", page)
    app.router.add_get("/static/{name}", asset)
    app.router.add_get("/ui/state", state)
    app.router.add_post("/ui/{what}", act)
    app.router.add_get("/ui/events", events)


def view_of(slack: FakeSlack, user: str, demo: DemoSwitches, completion: dict[str, list[str]]) -> dict[str, Any]:
    """Everything `user` sees: their channels, each one's messages (with what only they can see), their open
    modal, pins and files."""
    channels = [c for c in slack.channels.values() if not c["is_private"] or user in c["members"]]
    by_channel: dict[str, list[dict[str, Any]]] = {c["id"]: [] for c in channels}
    for (channel, ts), message in slack.messages.items():
        if channel in by_channel:
            reactions = {name: sorted(who) for name, who in slack.reactions.get((channel, ts), {}).items() if who}
            by_channel[channel].append({"ts": ts, "user": message.get("user"), "text": message.get("text"),
                                        "blocks": message.get("blocks") or [], "pinned": ts in slack.pins.get(channel, []),
                                        "reactions": reactions})
    for message in slack.ephemeral:
        if message["user"] == user and message["channel"] in by_channel:
            by_channel[message["channel"]].append({**message, "ephemeral": True})
    for file in slack.files.values():
        if file.get("completed") and file.get("channel") in by_channel:
            by_channel[file["channel"]].append({"ts": str(file.get("ts", "9999999999")), "file": {
                "title": file.get("title"), "name": file.get("filename"), "text": bytes(file.get("content") or b"").decode("utf-8", "replace"),
                "comment": file.get("initial_comment")}})
    for messages in by_channel.values():
        messages.sort(key=lambda m: float(m["ts"]))
    modal = next(({"id": vid, "view": view} for vid, view in reversed(list(slack.views.items()))
                  if slack.view_owner.get(vid) == user), None)
    return {
        "me": user,
        "people": [{"id": uid, "name": slack.users[uid]["real_name"]} for uid in PEOPLE if uid in slack.users],
        "channels": [{"id": c["id"], "name": c["name"], "topic": c.get("topic", "")} for c in sorted(channels, key=lambda c: c["created"])],
        "messages": by_channel,
        "modal": modal,
        "demo": demo.healthy,
        "completion": completion,
        "names": {uid: u["real_name"] for uid, u in slack.users.items()} | {"UBOT0001": "opsbot"},
    }

