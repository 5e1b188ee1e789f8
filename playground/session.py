"""A person using the stand-in Slack: typing commands, pressing buttons, submitting forms, writing and
reacting to messages. Each becomes the payload Slack would send, signed, to the bot's /slack/events; the
bot's answers (ack bodies, response_url posts) land in the workspace where Slack would show them."""

from __future__ import annotations

import json
import uuid
from typing import Any

import aiohttp

from playground import payloads
from playground.slack_api import FakeSlack


class BotRefused(Exception):
    """The bot answered a delivery with an error status (a bad signature, a crash)."""


class Session:
    def __init__(self, slack: FakeSlack, bot_url: str, signing_secret: str, http: aiohttp.ClientSession) -> None:
        self.slack, self.bot_url, self.secret, self.http = slack, bot_url.rstrip("/"), signing_secret, http

    async def _deliver(self, body: str, content_type: str) -> str:
        headers = {"Content-Type": content_type, **payloads.sign(body, secret=self.secret)}
        async with self.http.post(f"{self.bot_url}/slack/events", data=body.encode(), headers=headers) as response:
            text = await response.text()
            if response.status != 200:
                raise BotRefused(f"the bot answered {response.status}: {text[:200]}")
            return text

    def _reply_key(self, channel: str, user: str, ts: str | None = None) -> str:
        key = uuid.uuid4().hex
        self.slack.reply_to[key] = {"channel": channel, "user": user, "ts": ts}
        return key

    async def command(self, user: str, channel: str, line: str, *, screen: str = "") -> None:
        """`/ops health api` as typed in the composer (on the page load `screen`, where a form it opens shows)."""
        name, _, text = line.strip().partition(" ")
        key = self._reply_key(channel, user)
        body, content_type = payloads.slash_command(name, text.strip(), user=user, channel=channel,
                                                    response_url=self.slack.response_url(key),
                                                    trigger_id=_trigger(user, screen))  # a form opens on their screen
        ack_ts = self.slack._next_ts()  # the ack comes first, even when the full answer overtakes it
        self.slack.reply_to[key]["ack_ts"] = ack_ts  # what the answer's replace_/delete_original refer to
        acked = await self._deliver(body, content_type)
        if acked.startswith("{"):  # an ack that carries a message: Slack shows it like a response_url answer
            self.slack.respond(key, {"response_type": "ephemeral", **json.loads(acked)}, ts=ack_ts)

    async def press(self, user: str, channel: str, message_ts: str, action: dict[str, Any], *, screen: str = "") -> None:
        """A button, menu option or select on a message; `action` is the element plus what was chosen."""
        key = self._reply_key(channel, user, message_ts)
        picked = ("selected_option", "selected_date", "selected_user", "selected_channel")
        chosen: dict[str, Any] = {k: action[k] for k in picked if k in action}
        await self._deliver(*payloads.block_action(
            action["action_id"], str(action.get("value", "")), user=user, channel=channel,
            response_url=self.slack.response_url(key), message_ts=message_ts,
            trigger_id=_trigger(user, screen),  # a form it opens goes on their screen
            element_type=action.get("type", "static_select" if chosen else "button"), chosen=chosen or None))

    async def submit(self, user: str, view_id: str, values: dict[str, dict[str, Any]]) -> dict[str, str]:
        """Submit a form; returns the bot's errors by field (the form then stays open, as in Slack)."""
        view = self.slack.views[view_id]
        body, content_type = payloads.view_submission(view.get("callback_id", ""), values, user=user,
                                                      private_metadata=view.get("private_metadata", ""))
        acked = await self._deliver(body, content_type)
        answer = json.loads(acked) if acked.startswith("{") else {}
        if answer.get("response_action") == "errors":
            return dict(answer.get("errors") or {})
        self.slack.views.pop(view_id, None)
        return {}

    async def say(self, user: str, channel: str, text: str) -> str:
        # opsbot's manifest subscribes to no message events, so Slack would send the bot nothing here;
        # an @-mention is the exception (app_mention).
        ts = self.slack.said(channel, user, text)
        if "<@UBOT0001>" in text or "@opsbot" in text:
            event = {"type": "app_mention", "user": user, "text": text, "ts": ts, "channel": channel}
            await self._deliver(*payloads.event_callback(event))
        return ts

    async def react(self, user: str, channel: str, ts: str, reaction: str, *, removed: bool = False) -> None:
        who = self.slack.reactions.setdefault((channel, ts), {}).setdefault(reaction, set())
        if (user in who) != removed:
            return  # already there (or already gone): Slack sends no event for a no-op
        (who.discard if removed else who.add)(user)
        event = {"type": "reaction_removed" if removed else "reaction_added", "user": user, "reaction": reaction,
                 "item": {"type": "message", "channel": channel, "ts": ts}, "event_ts": ts}
        await self._deliver(*payloads.event_callback(event))


def _trigger(user: str, screen: str) -> str:
    """A trigger id naming who acted and on which page load, so the workspace knows where a modal opens."""
    return ".".join([user, *([screen] if screen else []), uuid.uuid4().hex[:8]])
