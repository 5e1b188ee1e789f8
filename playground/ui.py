"""The page's side of the stand-in: what a user sees (`/ui/state`), what they do (`/ui/command`, `/ui/press`,
`/ui/submit`, `/ui/say`, `/ui/react`, `/ui/alert`), live changes (`/ui/events`, server-sent events), and the demo switch."""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

from aiohttp import web

from playground.alerts import Alerting, AlertRefused
from playground.demo_apps import DemoSwitches
from playground.mentions import escape_mentions, escaped_commands
from playground.session import BotRefused, Session
from playground.slack_api import FakeSlack

PEOPLE = ["U0ALICE", "U0BOB", "U0CAROL"]
_ASSETS = {"app.js": "application/javascript", "mrkdwn.js": "application/javascript", "style.css": "text/css",
           "favicon.svg": "image/svg+xml"}
_SCREEN = re.compile(r"[A-Za-z0-9-]{0,64}")  # a page load's id, as app.js makes it


def add_routes(app: web.Application, slack: FakeSlack, session: Session, demo: DemoSwitches,
               completion: dict[str, list[str]], escaped: frozenset[str] | None = None,
               alerting: Alerting | None = None) -> None:
    """`escaped`: the slash commands whose `@name`s Slack turns into user ids (by default, as manifest.yml says).
    `alerting`: the demo services' "fire an alert" switches (`/ui/alert`)."""
    static = resources.files("playground") / "static"
    escaping = escaped_commands() if escaped is None else escaped

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=(static / "index.html").read_text(encoding="utf-8"), content_type="text/html")

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in _ASSETS:
            raise web.HTTPNotFound()
        return web.Response(text=(static / name).read_text(encoding="utf-8"), content_type=_ASSETS[name])

    async def favicon(_: web.Request) -> web.Response:  # browsers ask for it whatever the page links
        return web.Response(text=(static / "favicon.svg").read_text(encoding="utf-8"), content_type=_ASSETS["favicon.svg"])

    async def state(request: web.Request) -> web.Response:
        screen = request.query.get("screen", "")
        if not _SCREEN.fullmatch(screen):
            return web.json_response({"ok": False, "error": "screen must be up to 64 letters, digits or '-'"}, status=400)
        return web.json_response(view_of(slack, request.query.get("user", PEOPLE[0]), demo, completion, screen=screen,
                                         alerting=alerting))

    def typed(line: str, *, command: str | None = None) -> str:
        # Slack resolves @names in messages, and in a command's text when its manifest entry says should_escape.
        if command is not None and command not in escaping:
            return line
        return escape_mentions(line, slack.users, with_name=command is not None)

    async def act(request: web.Request) -> web.Response:
        data = await request.json()
        what = request.match_info["what"]
        screen = str(data.get("screen") or "")
        if not _SCREEN.fullmatch(screen):
            return web.json_response({"ok": False, "error": "screen must be up to 64 letters, digits or '-'"}, status=400)
        try:
            if what == "command":
                line = str(data["text"])
                await session.command(data["user"], data["channel"], typed(line, command=line.split(" ", 1)[0]), screen=screen)
            elif what == "press":
                await session.press(data["user"], data["channel"], data["ts"], data["action"], screen=screen)
            elif what == "submit":
                errors = await session.submit(data["user"], data["view_id"], data["values"])
                if errors:
                    return web.json_response({"ok": False, "errors": errors})
            elif what == "say":
                await session.say(data["user"], data["channel"], typed(str(data["text"])))
            elif what == "react":
                await session.react(data["user"], data["channel"], data["ts"], data["reaction"],
                                    removed=bool(data.get("removed")))
            elif what == "dismiss":
                slack.views.pop(data["view_id"], None)
            elif what == "leave":
                if screen:  # views opened without a screen (through the API, in tests) belong to no page
                    slack.close_views(screen)
            elif what == "demo":
                if data["service"] not in demo.healthy:
                    known = ", ".join(sorted(demo.healthy)) or "none"
                    return web.json_response({"ok": False, "error": f"no demo service {data['service']!r}; there are: {known}"},
                                             status=400)
                demo.healthy[data["service"]] = bool(data["healthy"])
            elif what == "alert" and alerting is not None:
                if data["service"] not in demo.healthy:
                    return web.json_response({"ok": False, "error": f"no demo service {data['service']!r}"}, status=400)
                await alerting.switch(session.http, data["service"], firing=bool(data["firing"]))
            else:
                raise web.HTTPNotFound()
        except (BotRefused, AlertRefused) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=502)
        except KeyError as exc:
            return web.json_response({"ok": False, "error": f"missing {exc}"}, status=400)
        await slack.touch()
        return web.json_response({"ok": True})

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        seen = slack.version
        try:
            while True:
                seen = await slack.changed_since(seen, timeout=15)
                await response.write(b"data: change\n\n")
        except ConnectionResetError:  # aiohttp's ClientConnectionResetError too: the page was reloaded or closed
            pass
        return response

    app.router.add_get("/", page)
    app.router.add_get("/static/{name}", asset)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_get("/ui/state", state)
    app.router.add_post("/ui/{what}", act)
    app.router.add_get("/ui/events", events)


def view_of(slack: FakeSlack, user: str, demo: DemoSwitches, completion: dict[str, list[str]], *,
            screen: str = "", alerting: Alerting | None = None) -> dict[str, Any]:
    """Everything `user` sees on the page load `screen`: their channels, each one's messages (with what only they
    can see; replies carry their thread's ts), the modal open on that screen, pins and files."""
    channels = [c for c in slack.channels.values() if not c["is_private"] or user in c["members"]]
    by_channel: dict[str, list[dict[str, Any]]] = {c["id"]: [] for c in channels}
    for (channel, ts), message in slack.messages.items():
        if channel in by_channel:
            reactions = {name: sorted(who) for name, who in slack.reactions.get((channel, ts), {}).items() if who}
            by_channel[channel].append({"ts": ts, "user": message.get("user"), "text": message.get("text"),
                                        "blocks": message.get("blocks") or [], "pinned": ts in slack.pins.get(channel, []),
                                        "reactions": reactions, "thread_ts": message.get("thread_ts"),
                                        "reply_broadcast": bool(message.get("reply_broadcast"))})
    for message in slack.ephemeral:
        if message["user"] == user and message["channel"] in by_channel:
            by_channel[message["channel"]].append({**message, "ephemeral": True})
    for file in slack.files.values():
        if file.get("completed") and file.get("channel") in by_channel:
            by_channel[file["channel"]].append({"ts": str(file.get("ts", "9999999999")), "file": {
                "title": file.get("title"), "name": file.get("filename"),
                "text": bytes(file.get("content") or b"").decode("utf-8", "replace"),
                "comment": file.get("initial_comment")}, "thread_ts": file.get("thread_ts")})
    for messages in by_channel.values():
        messages.sort(key=lambda m: float(m["ts"]))
    modal = next(({"id": vid, "view": view} for vid, view in reversed(list(slack.views.items()))
                  if slack.view_owner.get(vid) == user and slack.view_screen.get(vid, "") == screen), None)
    return {
        "me": user,
        "people": [{"id": uid, "name": slack.users[uid]["real_name"], "tz": slack.users[uid].get("tz", "UTC")}
                   for uid in PEOPLE if uid in slack.users],
        "channels": [{"id": c["id"], "name": c["name"], "topic": c.get("topic", "")}
                     for c in sorted(channels, key=lambda c: c["created"])],
        "messages": by_channel,
        "modal": modal,
        "demo": demo.healthy,
        "alerts": alerting.state(list(demo.healthy)) if alerting is not None else {},
        "completion": completion,
        "names": {uid: u["real_name"] for uid, u in slack.users.items()} | {"UBOT0001": "opsbot", "USLACKBOT": "Slackbot"},
    }

