"""How a listener answers: one place that turns errors into ephemeral replies and audits every request.

Every inbound request ends in exactly one audit entry with its outcome and duration.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.audit import AuditEntry, Outcome
from bot.context import Context
from bot.errors import InfrastructureError, OpsbotError, StaleButton
from bot.views import Message
from bot.views.common import error_message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inbound:
    """What arrived, for the audit log."""

    kind: str  # command | action | event
    name: str
    actor: str | None
    channel: str | None
    args: str = ""


class Reply:
    """Answers the person behind one request.

    A slash command's ack() can carry an ephemeral message; once acked (or for a button, whose ack
    carries nothing), answers go through the request's response_url.
    """

    def __init__(self, ctx: Context, ack: Callable[..., Awaitable[Any]], response_url: str | None, *, ack_carries_message: bool) -> None:
        self._ctx, self._ack, self.response_url = ctx, ack, response_url
        self._ack_carries_message = ack_carries_message
        self.acked = False

    @classmethod
    def acknowledged(cls, ctx: Context, response_url: str | None) -> "Reply":
        """For a request Slack already has its answer to (a form's submission): replies go by response_url."""
        reply = cls(ctx, _no_ack, response_url, ack_carries_message=False)
        reply.acked = True
        return reply

    async def ack(self, message: Message | None = None) -> None:
        if self.acked:
            if message is not None:
                await self.ephemeral(message)
            return
        self.acked = True
        if message is not None and self._ack_carries_message:
            await self._ack(text=message.text, blocks=message.blocks, response_type="ephemeral")
            return
        await self._ack()
        if message is not None:
            await self.ephemeral(message)

    async def ephemeral(self, message: Message) -> None:
        if not self.acked:
            await self.ack(message)
        elif self.response_url:
            await self._ctx.chat.respond(self.response_url, message, in_channel=False)
        else:
            log.warning("no way to answer this request: %s", message.text)


def for_command(ctx: Context, ack: Callable[..., Awaitable[Any]], command: dict[str, Any]) -> tuple[Inbound, Reply, str]:
    """The audit record, the reply channel and the typed text of a slash command."""
    text = (command.get("text") or "").strip()
    inbound = Inbound("command", str(command.get("command", "?")), command.get("user_id"), command.get("channel_id"), text)
    return inbound, Reply(ctx, ack, command.get("response_url"), ack_carries_message=True), text


class InChannelReply(Reply):
    """For requests with no response_url (a modal's submission): ephemeral messages in a known channel."""

    def __init__(self, ctx: Context, channel: str | None, user: str) -> None:
        super().__init__(ctx, _no_ack, None, ack_carries_message=False)
        self.acked, self._channel, self._user = True, channel, user

    async def ephemeral(self, message: Message) -> None:
        if self._channel:
            await self._ctx.chat.ephemeral(self._channel, self._user, message)
        else:
            log.warning("no channel to answer %s in: %s", self._user, message.text)


async def _no_ack(**_: Any) -> None:
    return None


async def handle(ctx: Context, inbound: Inbound, reply: Reply | None, work: Callable[[], Awaitable[None]]) -> None:
    """Run one request's work; domain errors become an ephemeral answer, anything else a reference id."""
    started = time.perf_counter()
    outcome, detail = Outcome.OK, None
    try:
        await work()
    except OpsbotError as exc:
        outcome, detail = Outcome.REJECTED, str(exc)
        await _tell(reply, error_message(str(exc)))
    except InfrastructureError as exc:
        reference = secrets.token_hex(4)
        log.error("%s %s: %s (reference %s)", inbound.kind, inbound.name, exc, reference)
        outcome, detail = Outcome.ERROR, f"{exc} (reference {reference})"
        await _tell(reply, error_message(f"{exc} (reference `{reference}`)"))
    except asyncio.CancelledError:
        # The bot is shutting down mid-request: say so, record it, and let the cancellation proceed.
        outcome, detail = Outcome.ERROR, "interrupted: opsbot was stopped before this finished"
        await _tell(reply, error_message("opsbot was restarted before this finished; nothing more will happen. Please ask again."))
        raise
    except Exception as exc:
        reference = secrets.token_hex(4)
        log.exception("%s %s failed (reference %s)", inbound.kind, inbound.name, reference)
        outcome, detail = Outcome.ERROR, f"{type(exc).__name__} (reference {reference})"
        await _tell(
            reply,
            error_message(
                f"Something went wrong on opsbot's side and nothing more will happen for this request. "
                f"Reference `{reference}`: the bot's log has the details."
            ),
        )
    finally:
        await record(ctx, inbound, outcome, detail, (time.perf_counter() - started) * 1000)
    if reply is not None and not reply.acked:
        await reply.ack()


async def record(ctx: Context, inbound: Inbound, outcome: Outcome, detail: str | None, duration_ms: float | None) -> None:
    entry = AuditEntry(
        at=ctx.clock.now(),
        kind=inbound.kind,
        name=inbound.name,
        outcome=outcome,
        actor_id=inbound.actor,
        channel_id=inbound.channel,
        args=inbound.args[:500],
        detail=detail[:1000] if detail else None,
        duration_ms=duration_ms,
    )
    try:
        await ctx.store.record_audit(entry)
    except Exception:
        # The request itself was answered; a lost audit line must be loud in the log, not a second error in Slack.
        log.exception("could not write the audit entry for %s %s", inbound.kind, inbound.name)


async def _tell(reply: Reply | None, message: Message) -> None:
    if reply is None:
        return
    try:
        await reply.ephemeral(message)
    except Exception:
        log.exception("could not deliver an error reply: %s", message.text)


Click = Callable[["Reply", dict[str, Any], str, str], Awaitable[None]]


def on_click(app: Any, ctx: Context, action_id: str, work: Click) -> None:
    """A button, menu or select: ack at once, then `work(reply, body, user, value)` in the core's task set. The
    value is a button's `value` or the chosen option's: an id or a name the core looks up, never a command."""

    @app.action(action_id)
    async def clicked(ack: Callable[..., Awaitable[Any]], body: dict[str, Any], action: dict[str, Any]) -> None:
        reply = Reply(ctx, ack, body.get("response_url"), ack_carries_message=False)
        await reply.ack()
        user = body.get("user", {}).get("id", "")
        value = str(action.get("value") or (action.get("selected_option") or {}).get("value") or "")
        inbound = Inbound("action", action_id, user, channel_of(body), value)
        ctx.tasks.spawn(handle(ctx, inbound, reply, lambda: work(reply, body, user, value)), name=f"{action_id} {value}")


def channel_of(body: dict[str, Any]) -> str | None:
    return (body.get("channel") or {}).get("id")


def number_of(value: str) -> int:
    """The run or backup id a button carries; anything else is a button from an older message."""
    if not value.isdigit():
        raise StaleButton()
    return int(value)
