"""How a listener answers: one place that turns errors into ephemeral replies and audits every request.

Every inbound request has one audit entry, written before its work ("requested") and given its outcome and duration
after it (bot/audit_trail.py retries an outcome the store did not take). A request whose entry cannot be written is
refused, and logged.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot import audit_trail
from bot.audit import REQUEST, AuditEntry, AuditResult, Outcome
from bot.context import Context
from bot.errors import InfrastructureError, OpsbotError, StaleButton, StoreUnavailable, store_down
from bot.ids import parse_id
from bot.log_context import annotate, current
from bot.views import Message
from bot.views.common import error_message
from handlers.payloads import Click as ClickPayload
from handlers.payloads import MalformedPayload, read, ref_of, text_of, url_of

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

    def __init__(self, ctx: Context, ack: Callable[..., Awaitable[Any]], response_url: str | None, *,
                 ack_carries_message: bool) -> None:
        self._ctx, self._ack, self.response_url = ctx, ack, response_url
        self._ack_carries_message = ack_carries_message
        self.acked = False

    @classmethod
    def acknowledged(cls, ctx: Context, response_url: str | None) -> Reply:
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

    async def replace(self, message: Message) -> None:
        """The answer, in place of the ephemeral "⏳ …" the ack showed (so the placeholder does not stay)."""
        if self.acked and self.response_url:
            await self._ctx.chat.respond(self.response_url, message, replace_original=True)
        else:
            await self.ephemeral(message)


def for_command(ctx: Context, ack: Callable[..., Awaitable[Any]], command: dict[str, Any]) -> tuple[Inbound, Reply, str]:
    """The audit record, the reply channel and the typed text of a slash command."""
    text = (text_of(command.get("text")) or "").strip()
    inbound = Inbound("command", text_of(command.get("command")) or "?", text_of(command.get("user_id")),
                      text_of(command.get("channel_id")), text)
    return inbound, Reply(ctx, ack, url_of(command.get("response_url")), ack_carries_message=True), text


class InChannelReply(Reply):
    """For requests with no response_url (a modal's submission): ephemeral messages in a known channel."""

    def __init__(self, ctx: Context, channel: str | None, user: str) -> None:
        super().__init__(ctx, _no_ack, None, ack_carries_message=False)
        self.acked, self._channel, self._user = True, channel, user

    async def ephemeral(self, message: Message) -> None:
        if self._channel:
            await self._ctx.chat.ephemeral(self._channel, self._user, message)
        elif self._user:  # a form whose channel is unknown: a direct message reaches its sender
            await self._ctx.chat.post(self._user, message)
        else:
            log.warning("no channel to answer %s in: %s", self._user, message.text)


async def _no_ack(**_: Any) -> None:
    return None


async def handle(ctx: Context, inbound: Inbound, reply: Reply | None, work: Callable[[], Awaitable[None]]) -> None:
    """Run one request's work; domain errors become an ephemeral answer, anything else a reference id."""
    # Each request's work is its own task (spawned by the listener), so this names its person for all it logs.
    annotate(user=inbound.actor or current().user)
    started = time.perf_counter()
    asked = _entry(ctx, inbound, Outcome.REQUESTED, None, None)
    try:
        audit_id = await audit_trail.begin(ctx, asked)  # before any work: nothing is done unaudited
    except Exception as exc:  # noqa: BLE001 - refused and said; the log line is all that can be kept of it
        audit_trail.refused(asked, exc)
        slow = store_down(exc) or isinstance(exc, audit_trail.AuditTooSlow)
        await _tell(reply, error_message(StoreUnavailable.user_text if slow else
                                         "opsbot could not write this request to its audit log; nothing was done."))
        if reply is not None and not reply.acked:
            await reply.ack()
        return
    request = REQUEST.set(audit_id)
    outcome, detail = Outcome.OK, None
    # The work's span, child of the Slack request's (which ends at the ack): a check or a run it starts is its child.
    try:
        with ctx.tracer.span(f"handle {inbound.kind} {inbound.name}", {"opsbot.request.kind": inbound.kind,
                                                                       "opsbot.request.name": inbound.name}) as traced:
            try:
                await work()
            except OpsbotError as exc:
                outcome, detail = Outcome.REJECTED, str(exc)
                await _tell(reply, error_message(str(exc)))
            except InfrastructureError as exc:
                if store_down(exc):
                    # The store logs its outage once; each request is only told, plainly.
                    outcome, detail = Outcome.ERROR, f"the store could not be reached: {exc}"
                    await _tell(reply, error_message(StoreUnavailable.user_text))
                else:
                    reference = secrets.token_hex(4)
                    log.error("%s %s: %s (reference %s)", inbound.kind, inbound.name, exc, reference)
                    outcome, detail = Outcome.ERROR, f"{exc} (reference {reference})"
                    await _tell(reply, error_message(f"{exc} (reference `{reference}`)"))
            except asyncio.CancelledError:
                # The bot is shutting down mid-request: say so, record it, and let the cancellation proceed.
                outcome, detail = Outcome.ERROR, "interrupted: opsbot was stopped before this finished"
                await _tell(reply, error_message("opsbot was restarted before this finished; nothing more will happen. "
                                                 "Please ask again."))
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
                traced.set({"opsbot.outcome": outcome.value})
    finally:
        REQUEST.reset(request)
        await audit_trail.finish(ctx, AuditResult(audit_id, outcome, detail, (time.perf_counter() - started) * 1000))
    if reply is not None and not reply.acked:
        await reply.ack()


async def record(ctx: Context, inbound: Inbound, outcome: Outcome, detail: str | None, duration_ms: float | None) -> None:
    """One finished entry, for a request that does no work (a retried delivery already handled)."""
    entry = _entry(ctx, inbound, outcome, detail, duration_ms)
    try:
        await ctx.store.record_audit(entry)
    except Exception as exc:  # noqa: BLE001 - nothing was done for it; the log line keeps what it was
        audit_trail.refused(entry, exc)


def _entry(ctx: Context, inbound: Inbound, outcome: Outcome, detail: str | None, duration_ms: float | None) -> AuditEntry:
    return AuditEntry(at=ctx.clock.now(), kind=inbound.kind, name=inbound.name, outcome=outcome, actor_id=inbound.actor,
                      channel_id=inbound.channel, args=inbound.args[:500], detail=detail[:1000] if detail else None,
                      duration_ms=duration_ms)


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
    async def clicked(ack: Callable[..., Awaitable[Any]], body: dict[str, Any]) -> None:
        reply = Reply(ctx, ack, url_of(body.get("response_url")), ack_carries_message=False)
        await reply.ack()
        try:
            click = read(ClickPayload, body, "button or menu")
        except MalformedPayload as exc:
            inbound = Inbound("action", action_id, ref_of(body.get("user")), ref_of(body.get("channel")))
            ctx.tasks.spawn(handle(ctx, inbound, reply, refuse(exc)), name=f"{action_id} malformed")
            return
        user, value = click.user.id, click.actions[0].chosen
        inbound = Inbound("action", action_id, user, channel_of(body), value)
        ctx.tasks.spawn(handle(ctx, inbound, reply, lambda: work(reply, body, user, value)), name=f"{action_id} {value}")


def refuse(error: OpsbotError) -> Callable[[], Awaitable[None]]:
    """Work that only refuses: `handle` answers and audits it like any refusal."""

    async def work() -> None:
        raise error

    return work


def refuse_form(ctx: Context, callback_id: str, body: dict[str, Any], error: MalformedPayload) -> None:
    """A submitted form whose payload does not read: the form is closed (acked), so the sender is told by a direct
    message; audited like any refusal."""
    user = ref_of(body.get("user")) or ""
    ctx.tasks.spawn(handle(ctx, Inbound("action", callback_id, user or None, None), InChannelReply(ctx, None, user),
                           refuse(error)), name=f"{callback_id} malformed")


def channel_of(body: dict[str, Any]) -> str | None:
    return (body.get("channel") or {}).get("id")


def number_of(value: str) -> int:
    """The run or backup id a button carries; anything else is a button from an older message."""
    number = parse_id(value)
    if number is None:
        raise StaleButton()
    return number
