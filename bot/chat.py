"""The outbound Slack port: every message the bot sends goes through here.

Built on slack_sdk's AsyncWebClient and AsyncWebhookClient with its retry handlers, so rate limits
(429 + Retry-After), 5xx answers and dropped connections are retried with backoff in one place.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.errors import OpsbotError
from bot.metrics import Metrics, api_method
from bot.views import Message

# slack_sdk's webhook client retries 429s and dropped connections, but not a 5xx from a response_url.
_TRANSIENT_STATUS = {500, 502, 503, 504}
_RESPOND_ATTEMPTS = 3
POST_KEY_EVENT = "opsbot_post"  # message metadata type that carries a scheduled post's idempotency key


class NotInChannel(OpsbotError):
    def __init__(self, channel: str) -> None:
        super().__init__(
            f"I can't post in <#{channel}>: invite me first (`/invite @opsbot`), or ask from a channel I'm in."
        )


class NameTaken(OpsbotError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a channel named #{name} already exists")


class HistoryUnreadable(OpsbotError):
    def __init__(self, channel: str) -> None:
        super().__init__(f"opsbot cannot read <#{channel}> to check whether an interrupted post already landed, so it "
                         "did not post again: invite opsbot to the channel (`/invite @opsbot`)")


class ChatError(Exception):
    """Slack refused a call after retries. Not an OpsbotError: the user did nothing wrong, so it is
    reported as an internal failure with a reference, and logged."""


class _CountedRateLimits(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's 429 handler, counting each rate-limited answer by method (whether it is retried or not)."""

    def __init__(self, metrics: Metrics, max_retry_count: int) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.metrics = metrics

    async def can_retry_async(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                              error: Exception | None = None) -> bool:
        if response is not None and response.status_code == 429:
            self.metrics.api_rate_limited.labels(api_method(request.url)).inc()
        return await super().can_retry_async(state=state, request=request, response=response, error=error)


def retry_handlers(metrics: Metrics | None = None) -> list[AsyncRetryHandler]:
    rate_limits = (_CountedRateLimits(metrics, max_retry_count=3) if metrics is not None
                   else AsyncRateLimitErrorRetryHandler(max_retry_count=3))
    return [
        AsyncConnectionErrorRetryHandler(max_retry_count=2),
        rate_limits,
        AsyncServerErrorRetryHandler(max_retry_count=2),
    ]


class MeasuredWebClient(AsyncWebClient):
    """The Web API client, counting every call by method and outcome (ok, error, rate_limited, unreachable) after
    its retries. Every method of the client (chat_postMessage, files_upload_v2's steps…) goes through api_call."""

    def __init__(self, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metrics = metrics

    async def api_call(self, api_method: str, *, http_verb: str = "POST", files: dict[str, Any] | None = None,
                       data: dict[str, Any] | aiohttp.FormData | None = None, params: dict[str, Any] | None = None,
                       json: dict[str, Any] | None = None, headers: dict[str, Any] | None = None,
                       auth: dict[str, Any] | None = None) -> AsyncSlackResponse:
        try:
            response = await super().api_call(api_method, http_verb=http_verb, files=files, data=data, params=params,
                                              json=json, headers=headers, auth=auth)
        except SlackApiError as exc:
            status = getattr(exc.response, "status_code", 0)
            self.metrics.api_call_done(api_method, "rate_limited" if status == 429 else "error")
            raise
        except (aiohttp.ClientError, TimeoutError, OSError):
            self.metrics.api_call_done(api_method, "unreachable")
            raise
        self.metrics.api_call_done(api_method, "ok")
        return response


def web_client(token: str, base_url: str, metrics: Metrics | None = None) -> AsyncWebClient:
    """The Web API client the Bolt app and the chat port share (base_url from SLACK_API_URL)."""
    if metrics is None:
        return AsyncWebClient(token=token, base_url=base_url, retry_handlers=retry_handlers())
    return MeasuredWebClient(metrics, token=token, base_url=base_url, retry_handlers=retry_handlers(metrics))


@dataclass(frozen=True)
class FoundChannel:
    id: str
    name: str
    created: float  # Unix seconds


class Chat:
    def __init__(self, client: AsyncWebClient, http: aiohttp.ClientSession) -> None:
        self.client = client
        self._http = http

    async def post(self, channel: str, message: Message, *, thread_ts: str | None = None, key: str | None = None) -> str:
        """Post to a channel; returns the message's ts. A `key` travels in the message's metadata, so
        `find_posted` can tell later whether a post whose answer was lost did land."""
        metadata = {"event_type": POST_KEY_EVENT, "event_payload": {"key": key}} if key is not None else None
        try:
            response = await self.client.chat_postMessage(
                channel=channel, text=message.text, blocks=message.blocks, thread_ts=thread_ts, unfurl_links=False,
                metadata=metadata,
            )
        except SlackApiError as exc:
            if exc.response.get("error") in ("not_in_channel", "channel_not_found", "is_archived"):
                raise NotInChannel(channel) from exc
            raise
        return str(response["ts"])

    async def update(self, channel: str, ts: str, message: Message) -> None:
        await self.client.chat_update(channel=channel, ts=ts, text=message.text, blocks=message.blocks)

    async def ephemeral(self, channel: str, user: str, message: Message) -> None:
        await self.client.chat_postEphemeral(channel=channel, user=user, text=message.text, blocks=message.blocks)

    async def create_channel(self, name: str, *, private: bool) -> str:
        """Create a channel; returns its ID. Raises NameTaken (the caller picks another name)."""
        try:
            response = await self.client.conversations_create(name=name, is_private=private)
        except SlackApiError as exc:
            if exc.response.get("error") == "name_taken":
                raise NameTaken(name) from exc
            raise
        return str(response["channel"]["id"])

    async def channel_named(self, name: str) -> FoundChannel | None:
        """The unarchived channel called `name` that the bot is in, or None (for a declaration whose channel id was
        never recorded: its name was)."""
        cursor: str | None = None
        for _ in range(50):  # 200 a page: ten thousand channels
            response = await self.client.conversations_list(types="public_channel,private_channel",
                                                            exclude_archived=True, limit=200, cursor=cursor)
            for channel in response.get("channels") or []:
                if channel.get("name") == name and channel.get("is_member") and not channel.get("is_archived"):
                    return FoundChannel(str(channel["id"]), name, float(channel.get("created") or 0))
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return None
        return None

    async def archive(self, channel: str) -> None:
        """Archive a channel; one already archived or gone is not an error."""
        try:
            await self.client.conversations_archive(channel=channel)
        except SlackApiError as exc:
            if exc.response.get("error") not in ("already_archived", "channel_not_found"):
                raise

    async def invite(self, channel: str, users: list[str]) -> list[str]:
        """Invite everyone who can be; returns the IDs Slack refused (deactivated, unknown, the bot itself)."""
        if not users:
            return []
        try:
            # force: invite the valid users even when some are not (otherwise one bad ID keeps everyone out)
            response = await self.client.conversations_invite(channel=channel, users=",".join(users), force=True)
        except SlackApiError as exc:
            if exc.response.get("error") == "already_in_channel":
                return []
            if exc.response.get("errors"):
                return [e.get("user", "?") for e in exc.response["errors"]]
            raise
        return [e.get("user", "?") for e in response.get("errors") or []]

    async def set_topic(self, channel: str, topic: str) -> None:
        await self.client.conversations_setTopic(channel=channel, topic=topic[:250])

    async def pin(self, channel: str, ts: str) -> None:
        try:
            await self.client.pins_add(channel=channel, timestamp=ts)
        except SlackApiError as exc:
            if exc.response.get("error") != "already_pinned":
                raise

    async def react(self, channel: str, ts: str, name: str) -> None:
        """Add opsbot's reaction `name` (no colons) to a message; one already there is not an error."""
        try:
            await self.client.reactions_add(channel=channel, timestamp=ts, name=name)
        except SlackApiError as exc:
            if exc.response.get("error") != "already_reacted":
                raise

    async def unreact(self, channel: str, ts: str, name: str) -> None:
        """Take opsbot's reaction off again; one already gone is not an error."""
        try:
            await self.client.reactions_remove(channel=channel, timestamp=ts, name=name)
        except SlackApiError as exc:
            if exc.response.get("error") not in ("no_reaction", "message_not_found"):
                raise

    async def permalink(self, channel: str, ts: str) -> str | None:
        try:
            response = await self.client.chat_getPermalink(channel=channel, message_ts=ts)
        except SlackApiError:
            return None
        return response.get("permalink")

    async def find_posted(self, channel: str, key: str, *, oldest: float) -> str | None:
        """The ts of this bot's message carrying `key` (see `post`) posted since `oldest`, or None."""
        cursor: str | None = None
        for _ in range(10):  # a digest channel is quiet; ten pages back from an attempt minutes ago is plenty
            try:
                response = await self.client.conversations_history(
                    channel=channel, oldest=f"{oldest:.6f}", include_all_metadata=True, limit=200, cursor=cursor)
            except SlackApiError as exc:
                if exc.response.get("error") in ("not_in_channel", "channel_not_found"):
                    # Posting works in a public channel the bot never joined (chat:write.public); reading does not.
                    raise HistoryUnreadable(channel) from exc
                raise
            for message in response.get("messages") or []:
                metadata = message.get("metadata") or {}
                if metadata.get("event_type") == POST_KEY_EVENT and (metadata.get("event_payload") or {}).get("key") == key:
                    return str(message["ts"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not response.get("has_more") or not cursor:
                return None
        return None

    async def message_text(self, channel: str, ts: str) -> tuple[str, str | None] | None:
        """The text and author of one message (for a pinned message on the timeline), or None if gone."""
        response = await self.client.conversations_history(channel=channel, latest=ts, inclusive=True, limit=1)
        for message in response.get("messages") or []:
            if message.get("ts") == ts:
                return str(message.get("text", "")), message.get("user")
        replies = await self.client.conversations_replies(channel=channel, ts=ts, latest=ts, inclusive=True, limit=1)
        for message in replies.get("messages") or []:
            if message.get("ts") == ts:
                return str(message.get("text", "")), message.get("user")
        return None

    async def user_tz(self, user: str) -> str | None:
        return (await self._user(user)).get("tz")

    async def user_name(self, user: str) -> str | None:
        found = await self._user(user)
        return found.get("real_name") or found.get("name")

    async def _user(self, user: str) -> dict[str, str]:
        try:
            response = await self.client.users_info(user=user)
        except SlackApiError:
            return {}
        return dict(response.get("user") or {})

    async def upload(self, channel: str, *, filename: str, title: str, content: str, comment: str) -> None:
        await self.client.files_upload_v2(channel=channel, filename=filename, title=title, content=content,
                                          initial_comment=comment)

    async def usergroup_members(self, group: str) -> set[str]:
        response = await self.client.usergroups_users_list(usergroup=group)
        return set(response.get("users") or [])

    async def open_modal(self, trigger_id: str, view: dict[str, object]) -> None:
        await self.client.views_open(trigger_id=trigger_id, view=view)

    async def respond(
        self, response_url: str, message: Message, *, in_channel: bool = False, replace_original: bool = False
    ) -> None:
        """Answer through a command's or button's response_url: works in DMs and channels the bot has not joined."""
        body: dict[str, object] = {"text": message.text, "blocks": message.blocks}
        if replace_original:
            body["replace_original"] = True
        else:
            body["response_type"] = "in_channel" if in_channel else "ephemeral"
        await self._send(response_url, body)

    async def delete_original(self, response_url: str) -> None:
        """Take away the message the response_url belongs to: a slash command's "⏳ …" placeholder, once its
        answer is posted in the channel (an ephemeral placeholder cannot be replaced by a message for everyone)."""
        await self._send(response_url, {"delete_original": True})

    async def _send(self, response_url: str, body: dict[str, object]) -> None:
        metrics = self.client.metrics if isinstance(self.client, MeasuredWebClient) else None
        webhook = AsyncWebhookClient(response_url, session=self._http, retry_handlers=retry_handlers(metrics))
        response = await webhook.send_dict(body)
        for attempt in range(_RESPOND_ATTEMPTS - 1):
            if response.status_code not in _TRANSIENT_STATUS:
                break
            await asyncio.sleep(0.5 * 2**attempt)
            response = await webhook.send_dict(body)
        if metrics is not None:
            outcome = {200: "ok", 429: "rate_limited"}.get(response.status_code, "error")
            metrics.api_call_done("response_url", outcome)
        if response.status_code != 200:
            raise ChatError(f"Slack refused the reply ({response.status_code}: {response.body[:200]})")
