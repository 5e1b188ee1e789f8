"""The fake Slack's workspace: channels and members, messages, pins, users, files and modals, and the Web API
methods that read and change them, with Slack's rules and error codes.

Not the transport: HTTP, call recording, injected failures and block validation live in `fake_api`.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

BOT_USER = "UBOT0001"
OPS, INCIDENTS = "C0OPS", "C0INCIDENTS"

# conversations.create: lowercase letters, digits, hyphens and underscores; at most 80 characters.
_CHANNEL_NAME = re.compile(r"[a-z0-9_-]+")
_MAX_CHANNEL_NAME = 80
_MAX_TOPIC = 250

# users.info's `tz_label` is the zone's long name at the moment of the call (it follows daylight saving time).
_TZ_LABELS = {
    "CET": "Central European Time", "CEST": "Central European Summer Time",
    "EST": "Eastern Standard Time", "EDT": "Eastern Daylight Time",
    "JST": "Japan Standard Time", "UTC": "Coordinated Universal Time",
}

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class SlackError(Exception):
    """A refusal, answered as {"ok": false, "error": <code>, **extra}."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


def new_channel(channel_id: str, name: str, members: set[str], *, is_private: bool = False,
                created: int = 1_700_000_000, creator: str = BOT_USER) -> dict[str, Any]:
    """A `channels` entry; the tests read and write these directly."""
    return {"id": channel_id, "name": name, "is_private": is_private, "topic": "", "topic_set": 0,
            "members": set(members), "created": created, "creator": creator}


class Workspace:
    def __init__(self) -> None:
        self.groups: dict[str, list[str]] = {}  # usergroups.users.list answers from here
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) -> latest text and blocks
        self.not_in: set[str] = set()  # channels the bot is not in, whatever `channels` says
        self.channels: dict[str, dict[str, Any]] = {
            OPS: new_channel(OPS, "ops", {BOT_USER}),
            INCIDENTS: new_channel(INCIDENTS, "incidents", {BOT_USER}),
        }
        self.users: dict[str, dict[str, str]] = {
            "U0ALICE": {"name": "alice", "real_name": "Alice Martin", "tz": "Europe/Paris"},
            "U0BOB": {"name": "bob", "real_name": "Bob Smith", "tz": "America/New_York"},
            "U0CAROL": {"name": "carol", "real_name": "Carol Jones", "tz": "UTC"},
            "U0DAVE": {"name": "dave", "real_name": "Dave Sato", "tz": "Asia/Tokyo"},
        }
        self.pins: dict[str, list[str]] = {}  # channel -> ts of its pinned messages, oldest first
        # file id -> its upload; once completed, shared into `channel` (or private when that is None)
        self.files: dict[str, dict[str, Any]] = {}
        self.views: dict[str, dict[str, Any]] = {}  # view id -> the view as last opened, pushed or updated
        # Messages only one person sees: {channel, user, ts, text, blocks}
        self.ephemeral: list[dict[str, Any]] = []
        # Where a response_url answers: key -> {channel, user, ts (the message a button was on, if any)}
        self.reply_to: dict[str, dict[str, Any]] = {}
        self.view_owner: dict[str, str] = {}
        # view id -> the page load ("screen") it is open on: a modal lives on the client that opened it
        self.view_screen: dict[str, str] = {}
        # (channel, ts) -> reaction name -> who reacted, as a page shows them under the message
        self.reactions: dict[tuple[str, str], dict[str, set[str]]] = {}
        self._ts = 1_700_000_000.000100
        self.next_id = 1  # channel and file ids count up from here (kept across a playground restart)
        self._view_ids = itertools.count(1)
        self._methods: dict[str, Handler] = {
            "chat.postMessage": self._post_message,
            "chat.update": self._update_message,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.getPermalink": self._permalink,
            "usergroups.users.list": self._usergroup_members,
            "conversations.create": self._create_channel,
            "conversations.invite": self._invite,
            "conversations.setTopic": self._set_topic,
            "conversations.info": lambda args: {"channel": self._render(self._find_channel(args.get("channel")))},
            "conversations.members": self._members,
            "conversations.list": self._list_channels,
            "conversations.archive": self._archive,
            "conversations.history": self._history,
            "conversations.replies": self._history,
            "pins.add": self._pin,
            "reactions.add": lambda args: self._react(args, add=True),
            "reactions.remove": lambda args: self._react(args, add=False),
            "pins.list": self._pins,
            "users.info": self._user_info,
            "files.getUploadURLExternal": self._upload_url,
            "files.completeUploadExternal": self._complete_upload,
            "views.open": lambda args: self._keep_view(f"V{next(self._view_ids):04d}", args),
            "views.push": lambda args: self._keep_view(f"V{next(self._view_ids):04d}", args),
            "views.update": self._update_view,
        }

    def _take_id(self) -> int:
        taken, self.next_id = self.next_id, self.next_id + 1
        return taken

    def answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """Slack's answer to a Web API call; methods the fake does not model just answer ok."""
        handler = self._methods.get(method)
        try:
            return {"ok": True, **(handler(args) if handler else {})}
        except SlackError as refusal:
            return {"ok": False, "error": refusal.error, **refusal.extra}

    def upload_url(self, file_id: str) -> str:
        """Where the file's bytes are to be POSTed: a route of the server that serves this workspace."""
        raise NotImplementedError

    def receive_upload(self, file_id: str, content: bytes) -> bool:
        """Store an upload's bytes; False when no upload URL was handed out for that file."""
        if file_id not in self.files:
            return False
        self.files[file_id]["content"] = content
        return True

    def file_text(self, *, title: str | None = None, channel: str | None = None) -> str:
        """The text of the latest completed upload with that title and/or shared into that channel."""
        done = [f for f in self.files.values() if f["completed"]]
        matches = [f for f in done if title in (None, f["title"]) and channel in (None, f["channel"])]
        if not matches:
            raise AssertionError(f"no file with title={title!r} in channel={channel!r}; completed uploads: "
                                 f"{[(f['title'], f['channel']) for f in done]}")
        return bytes(matches[-1]["content"]).decode()

    # --- channels ----------------------------------------------------------------------------------

    def bot_in(self, channel_id: str) -> bool:
        """Channels missing from `channels` count as public channels the bot is in, so tests can post
        anywhere without declaring them; `not_in` overrides both."""
        known = self.channels.get(channel_id)
        return channel_id not in self.not_in and (known is None or BOT_USER in known["members"])

    def _hidden(self, channel_id: str) -> bool:
        # Slack tells a non-member that a private channel does not exist.
        known = self.channels.get(channel_id)
        return known is not None and known["is_private"] and not self.bot_in(channel_id)

    def _find_channel(self, channel_id: Any) -> dict[str, Any]:
        channel = self.channels.get(str(channel_id))
        if channel is None or self._hidden(channel["id"]):
            raise SlackError("channel_not_found")
        return channel

    def _require_member(self, channel_id: str) -> None:
        if self._hidden(channel_id):
            raise SlackError("channel_not_found")
        if not self.bot_in(channel_id):
            raise SlackError("not_in_channel")

    def _render(self, channel: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": channel["id"], "name": channel["name"], "name_normalized": channel["name"],
            "is_channel": True, "is_group": False, "is_im": False, "is_mpim": False,
            "is_private": channel["is_private"], "is_archived": bool(channel.get("archived")), "is_general": False,
            "created": channel["created"], "creator": channel["creator"], "is_member": self.bot_in(channel["id"]),
            "topic": {"value": channel["topic"], "creator": BOT_USER if channel["topic_set"] else "",
                      "last_set": channel["topic_set"]},
            "purpose": {"value": "", "creator": "", "last_set": 0},
            "num_members": len(channel["members"]),
        }

    def _create_channel(self, args: dict[str, Any]) -> dict[str, Any]:
        name = str(args.get("name") or "")
        if not name:
            raise SlackError("invalid_name_required")
        if len(name) > _MAX_CHANNEL_NAME:
            raise SlackError("invalid_name_maxlength")
        if not _CHANNEL_NAME.fullmatch(name):
            raise SlackError("invalid_name_specials")
        if not name.strip("-_"):
            raise SlackError("invalid_name_punctuation")
        if any(channel["name"] == name for channel in self.channels.values()):
            raise SlackError("name_taken")
        channel_id = f"C{self._take_id():08d}"
        self.channels[channel_id] = new_channel(channel_id, name, {BOT_USER}, is_private=_flag(args.get("is_private")),
                                                created=int(time.time()))
        return {"channel": self._render(self.channels[channel_id])}

    def _list_channels(self, args: dict[str, Any]) -> dict[str, Any]:
        """Channels the bot can see, a page at a time (`limit`, `cursor`), archived ones unless `exclude_archived`:
        public ones, and private ones it is in."""
        kinds = str(args.get("types") or "public_channel").split(",")
        seen = [c for c in self.channels.values()
                if not self._hidden(c["id"]) and ("private_channel" if c["is_private"] else "public_channel") in kinds
                and not (c.get("archived") and _flag(args.get("exclude_archived")))]
        start, limit = int(args.get("cursor") or 0), max(1, min(int(args.get("limit") or 100), 1000))
        more = start + limit < len(seen)
        return {"channels": [self._render(c) for c in seen[start:start + limit]],
                "response_metadata": {"next_cursor": str(start + limit) if more else ""}}

    def _archive(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._find_channel(args.get("channel"))
        self._require_member(channel["id"])
        if channel.get("archived"):
            raise SlackError("already_archived")
        channel["archived"] = True
        return {}

    def _invite(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._find_channel(args.get("channel"))
        self._require_member(channel["id"])
        users = _id_list(args.get("users"))
        if not users:
            raise SlackError("no_user")
        # One id Slack cannot invite fails the whole call, with the reason per id, unless `force` is set:
        # then the others are invited and the refusals come back in `errors`.
        refused = [(user, error) for user in users if (error := self._cannot_invite(user))]
        errors = [{"user": user, "ok": False, "error": error} for user, error in refused]
        if refused and not _flag(args.get("force")):
            raise SlackError(refused[0][1], errors=errors)
        valid = [user for user in users if user not in dict(refused)]
        # Members among the invitees are skipped; only a call that would add nobody is refused.
        if valid and all(user in channel["members"] for user in valid):
            raise SlackError("already_in_channel",
                             errors=[{"user": u, "ok": False, "error": "already_in_channel"} for u in valid])
        if not valid:
            raise SlackError(refused[0][1], errors=errors)
        channel["members"].update(valid)
        return {"channel": self._render(channel), **({"errors": errors} if errors else {})}

    def _cannot_invite(self, user: str) -> str | None:
        if user == BOT_USER:
            return "cant_invite_self"
        return None if user in self.users else "user_not_found"

    def _set_topic(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._find_channel(args.get("channel"))
        self._require_member(channel["id"])
        topic = str(args.get("topic") or "")
        if len(topic) > _MAX_TOPIC:
            raise SlackError("too_long")
        channel["topic"], channel["topic_set"] = topic, int(time.time())
        return {"channel": self._render(channel)}

    def _members(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._find_channel(args.get("channel"))
        return {"members": sorted(channel["members"]), "response_metadata": {"next_cursor": ""}}

    def _usergroup_members(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("usergroup") not in self.groups:
            raise SlackError("no_such_subteam")
        return {"users": self.groups[args["usergroup"]]}

    # --- messages and pins -------------------------------------------------------------------------

    def _next_ts(self) -> str:
        # Increasing, and near the real time so a page can show when a message came.
        self._ts = max(self._ts + 0.000001, time.time())
        return f"{self._ts:.6f}"

    def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel"))
        self._require_member(channel)
        ts = self._next_ts()
        message = {"text": args.get("text"), "blocks": args.get("blocks"), **_thread_of(args)}
        if args.get("metadata"):
            message["metadata"] = _json_arg(args["metadata"])
        self.messages[(channel, ts)] = message
        return {"channel": args.get("channel"), "ts": ts, "message": {"text": args.get("text")}}

    def _update_message(self, args: dict[str, Any]) -> dict[str, Any]:
        # Not checked against `messages`: tests press buttons on messages the fake never saw posted.
        new_ts = self._next_ts()
        ts = str(args.get("ts") or new_ts)
        # An edit changes text and blocks; the author and the thread the message is in stay.
        kept = {k: v for k, v in self.messages.get((str(args.get("channel")), ts), {}).items() if k in ("user", *_THREAD_KEYS)}
        self.messages[(str(args.get("channel")), ts)] = {**kept, "text": args.get("text"), "blocks": args.get("blocks")}
        return {"channel": args.get("channel"), "ts": ts, "message": {"text": args.get("text")}}

    def _message(self, channel: Any, ts: Any) -> dict[str, Any]:
        if self._hidden(str(channel)):
            raise SlackError("channel_not_found")
        message = self.messages.get((str(channel), str(ts)))
        if message is None:
            raise SlackError("message_not_found")
        return message

    def _post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        ts = self._next_ts()
        self.ephemeral.append({"channel": str(args.get("channel")), "user": str(args.get("user")), "ts": ts,
                               "text": args.get("text"), "blocks": args.get("blocks"), **_thread_of(args)})
        return {"message_ts": ts}

    def respond(self, key: str, args: dict[str, Any], *, ts: str | None = None) -> None:
        """What Slack does with a response_url post: replace the message the button was on, or add a message
        to the channel (in_channel) or for the person who asked (ephemeral). Unknown keys change nothing."""
        target = self.reply_to.get(key)
        if target is None:
            return
        # A slash command's "original" is the ephemeral its ack showed (`ack_ts`); a button's, the message it is on.
        channel, user, ts_given = target["channel"], target["user"], ts
        ts = target.get("ts") or target.get("ack_ts")
        body = {"text": args.get("text"), "blocks": args.get("blocks")}
        if ts_given is not None and ts_given == target.get("ack_ts") and "answer" in target:
            # The answer overtook its ack: the placeholder was already replaced (or deleted) before it showed.
            if target["answer"] is None:
                return
            body = target["answer"]
        elif args.get("replace_original") and ts:
            for message in self.ephemeral:
                if message["ts"] == ts and message["channel"] == channel:
                    message.update(body)
                    return
            if (channel, ts) in self.messages:
                self.messages[(channel, ts)].update(body)
                return
            if ts == target.get("ack_ts"):
                target["answer"] = body
                return
        elif args.get("delete_original"):
            if ts == target.get("ack_ts") and not any(m["ts"] == ts for m in self.ephemeral):
                target["answer"] = None
            if ts:
                self.ephemeral = [m for m in self.ephemeral if m["ts"] != ts]
                self.messages.pop((channel, ts), None)
            return
        new_ts = ts_given or target.get("ts") or self._next_ts()
        if args.get("response_type") == "in_channel":
            self.messages[(channel, new_ts)] = body
        else:
            self.ephemeral.append({"channel": channel, "user": user, "ts": new_ts, **body})

    def said(self, channel: str, user: str, text: str) -> str:
        """A person's message in a channel (as Slack would hold it); returns its ts."""
        ts = self._next_ts()
        self.messages[(channel, ts)] = {"text": text, "user": user, "blocks": None}
        return ts

    def _history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, latest, oldest = str(args.get("channel")), str(args.get("latest") or ""), str(args.get("oldest") or "")
        self._require_member(channel)  # channels:history reads only channels the bot is in
        metadata = _flag(args.get("include_all_metadata"))
        found = [{"type": "message", "ts": ts, "text": m.get("text"), "user": m.get("user"),
                  **({"metadata": m["metadata"]} if metadata and "metadata" in m else {})}
                 for (c, ts), m in sorted(self.messages.items(), key=lambda item: float(item[0][1]), reverse=True)
                 if c == channel and (not latest or float(ts) <= float(latest)) and (not oldest or float(ts) > float(oldest))]
        return {"messages": found[: int(args.get("limit") or 100)], "has_more": False}

    def _permalink(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(args.get("channel")), str(args.get("message_ts"))
        self._message(channel, ts)
        return {"channel": channel, "permalink": f"https://fake.slack/archives/{channel}/p{ts.replace('.', '')}"}

    def _pin(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(args.get("channel")), args.get("timestamp")
        if not ts:
            raise SlackError("no_item_specified")
        self._message(channel, ts)
        pinned = self.pins.setdefault(channel, [])
        if ts in pinned:
            raise SlackError("already_pinned")
        pinned.append(str(ts))
        return {}

    def _react(self, args: dict[str, Any], *, add: bool) -> dict[str, Any]:
        """reactions.add / reactions.remove by the bot, with Slack's errors for a repeat or a missing one."""
        channel, ts, name = str(args.get("channel")), str(args.get("timestamp") or ""), str(args.get("name") or "")
        if not ts or not name:
            raise SlackError("no_item_specified" if not ts else "invalid_name")
        self._message(channel, ts)
        who = self.reactions.setdefault((channel, ts), {}).setdefault(name, set())
        if add and BOT_USER in who:
            raise SlackError("already_reacted")
        if not add and BOT_USER not in who:
            raise SlackError("no_reaction")
        (who.add if add else who.discard)(BOT_USER)
        return {}

    def _pins(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel"))
        if self._hidden(channel):
            raise SlackError("channel_not_found")
        return {"items": [{"type": "message", "channel": channel, "created_by": BOT_USER,
                           "message": {"ts": ts, **self.messages[(channel, ts)]}} for ts in self.pins.get(channel, [])]}

    # --- users, files, views -----------------------------------------------------------------------

    def _user_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = str(args.get("user"))
        if user_id not in self.users:
            raise SlackError("user_not_found")
        user = self.users[user_id]
        now = datetime.now(ZoneInfo(user.get("tz", "UTC")))
        offset, abbreviation = now.utcoffset(), now.tzname() or ""
        return {"user": {
            "id": user_id, "team_id": "T0001", "name": user["name"], "real_name": user.get("real_name", user["name"]),
            "tz": user.get("tz", "UTC"), "tz_label": _TZ_LABELS.get(abbreviation, abbreviation),
            "tz_offset": int(offset.total_seconds()) if offset else 0, "is_bot": False, "deleted": False,
            "profile": {"real_name": user.get("real_name", user["name"]), "display_name": user["name"]},
        }}

    def _upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("filename"):
            raise SlackError("invalid_arguments")
        if int(args.get("length") or 0) <= 0:
            raise SlackError("missing_argument")  # Slack: "typically only occurs when the length provided is 0"
        file_id = f"F{self._take_id():08d}"
        self.files[file_id] = {"id": file_id, "filename": args["filename"], "length": int(args["length"]),
                               "title": None, "content": None, "completed": False, "channel": None,
                               "initial_comment": None, "thread_ts": None}
        return {"upload_url": self.upload_url(file_id), "file_id": file_id}

    def _complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        entries = args.get("files")
        entries = json.loads(entries) if isinstance(entries, str) else entries
        if not entries:
            raise SlackError("invalid_arguments")
        channel = args.get("channel_id")
        if channel:
            if self._hidden(channel):
                raise SlackError("invalid_channel")
            self._require_member(channel)
        # An id never handed out, or whose bytes never arrived, is one Slack cannot find from the upload ticket.
        if any(self.files.get(entry.get("id"), {}).get("content") is None for entry in entries):
            raise SlackError("file_not_found")
        for entry in entries:
            file = self.files[entry["id"]]
            file.update(title=entry.get("title") or file["filename"], completed=True, channel=channel,
                        initial_comment=args.get("initial_comment"), thread_ts=args.get("thread_ts"), ts=self._next_ts())
        return {"files": [{"id": entry["id"], "title": self.files[entry["id"]]["title"]} for entry in entries]}

    def _update_view(self, args: dict[str, Any]) -> dict[str, Any]:
        # Unknown ids are accepted: tests often submit a modal the fake never opened, then update it.
        view_id = args.get("view_id") or args.get("external_id")
        if not view_id:
            raise SlackError("invalid_arguments")
        return self._keep_view(str(view_id), args)

    def _keep_view(self, view_id: str, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view") or {}
        view = json.loads(view) if isinstance(view, str) else view
        self.views[view_id] = view
        # Whose screen the modal is on: the playground's trigger ids are `<user>.<screen>.<random>` (or `<user>.<random>`).
        trigger = str(args.get("trigger_id") or "")
        if trigger:
            owner, *rest = trigger.split(".")
            self.view_owner[view_id] = owner
            self.view_screen[view_id] = rest[0] if len(rest) > 1 else ""
        return {"view": {"id": view_id, **view}}

    def close_views(self, screen: str) -> None:
        """The page showing `screen` went away (a reload, a closed tab): its modals close, as in Slack."""
        for view_id in [v for v, on in self.view_screen.items() if on == screen]:
            self.views.pop(view_id, None)
            self.view_owner.pop(view_id, None)
            self.view_screen.pop(view_id, None)


_THREAD_KEYS = ("thread_ts", "reply_broadcast")


def _thread_of(args: dict[str, Any]) -> dict[str, Any]:
    """A reply's place: the parent's ts, and whether it is also shown in the channel."""
    if not args.get("thread_ts"):
        return {}
    return {"thread_ts": str(args["thread_ts"]), **({"reply_broadcast": True} if _flag(args.get("reply_broadcast")) else {})}


def _json_arg(value: Any) -> Any:
    """Web API arguments that are JSON objects arrive as JSON text in a form post, or as objects in a JSON body."""
    return json.loads(value) if isinstance(value, str) else value


def _flag(value: Any) -> bool:
    return str(value).lower() in ("1", "true")


def _id_list(value: Any) -> list[str]:
    ids = value if isinstance(value, list) else str(value or "").split(",")
    return [str(i).strip() for i in ids if str(i).strip()]
