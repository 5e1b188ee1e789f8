"""Silencing an alert group through Alertmanager: at once, or — when `alerts.silence_approvals` asks for it — once
enough other people approved; Unsilence; and the chore that expires requests nobody approved in time.

Every step is stored before it is shown and audited (kind `alert`). A request is claimed for creating its silence by
one compare-and-set (pending → approved), so two approvers or two replicas never make two silences. Not responsible
for Alertmanager's API (silences.py), the time checks' words (bot/views/alert_silences.py) nor Slack payloads
(handlers/alerts.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.alerts import silences
from bot.alerts.messages import group_of, refresh
from bot.alerts.models import (
    AlertGroup,
    SilenceAsk,
    SilenceDecision,
    SilenceRequest,
    SilenceState,
    StoredAlert,
    Verdict,
)
from bot.alerts.service import settings_of
from bot.alerts.silence_times import SOONEST, UntilRefused, check_until
from bot.audit import AuditEntry, Outcome
from bot.context import Context
from bot.errors import OpsbotError, StaleButton
from bot.runs.policy import ApprovalPolicy, NotAllowed, mention
from bot.views import Message
from bot.views.alert_silences import request_message
from bot.views.alerts import group_name

log = logging.getLogger(__name__)

CLAIM_STALE = timedelta(minutes=2)  # an approved request still without its silence this long after: its replica died


class SilenceTimeInvalid(OpsbotError):
    """The end asked for is not one opsbot takes; `refused` says why and which window is valid."""

    def __init__(self, refused: UntilRefused) -> None:
        self.refused = refused
        super().__init__(f"A silence must end between {refused.earliest:%Y-%m-%d %H:%M} and "
                         f"{refused.latest:%Y-%m-%d %H:%M} UTC (alerts.silence_max); nothing was silenced.")


class SilenceNotPending(OpsbotError):
    """The request was decided, withdrawn or expired already."""


def approvals_needed(ctx: Context) -> int:
    policy = settings_of(ctx).silence_approvals
    return policy.approvals if policy is not None else 0


_VERDICT_WORDS = {Verdict.APPROVE: "silence approval given", Verdict.DENY: "silence denial given"}


@dataclass(frozen=True)
class Silenced:
    group: AlertGroup


@dataclass(frozen=True)
class Requested:
    request: SilenceRequest


async def silence(ctx: Context, group_id: int, user: str, ask: SilenceAsk) -> Silenced | Requested:
    """Silence the group as `ask` says: at once, or as a request for approval posted in the group's channel."""
    settings = settings_of(ctx)
    group = await group_of(ctx, group_id)
    if group.silenced_at(ctx.clock.now()):
        raise OpsbotError(f"This alert group is already silenced (silence `{group.silence_id}`); Unsilence it first.")
    policy = settings.silence_approvals
    if policy is not None and policy.requesters and not await ctx.membership.contains(policy.requesters, user):
        raise NotAllowed(f"You may not silence alerts. Who may: {mention(policy.requesters)} "
                         "(alerts.silence_approvals.requesters).")
    now = ctx.clock.now()
    # The hour buttons too: `alerts.silence_max` bounds every silence, not only the form's.
    if (refused := check_until(ask.ends(now), now, settings.silence_max)) is not None:
        raise SilenceTimeInvalid(refused)
    if policy is None or policy.approvals == 0:
        silence_id = await _create(ctx, group, user, ask, approved_by=None)
        if silence_id is None:
            raise OpsbotError("Someone silenced this alert group a moment ago; the message shows their silence.")
        await _audit(ctx, group, user, "silenced", f"silence {silence_id} {_asked(ask)}")
        await refresh(ctx, group_id)
        return Silenced(await group_of(ctx, group_id))
    return Requested(await _request(ctx, group, user, ask, policy))


async def _request(ctx: Context, group: AlertGroup, user: str, ask: SilenceAsk,
                   policy: ApprovalPolicy) -> SilenceRequest:
    now = ctx.clock.now()
    await _settle_open(ctx, group.id)  # one past its time no longer blocks a new one
    request = SilenceRequest(
        group_id=group.id, requested_by=user, ask=ask, approvals_needed=policy.approvals,
        approvers=tuple(policy.approvers), created_at=now,
        expires_at=now + timedelta(minutes=ctx.catalog.approvals.expire_after_minutes), channel_id=group.channel_id)
    request_id = await ctx.store.create_silence_request(request)
    if request_id is None:
        waiting = await ctx.store.open_silence_request(group.id)
        who = f" (asked by <@{waiting.requested_by}>)" if waiting else ""
        raise OpsbotError(f"A silence of this alert group is already waiting for approval{who}: approve or deny that "
                          "one first.")
    request = replace(request, id=request_id)
    await _audit(ctx, group, user, "silence requested", f"request {request_id}: {_asked(ask)} — {ask.comment}")
    try:
        ts = await ctx.chat.post(group.channel_id, await _request_view(ctx, request))
    except BaseException:
        # No message, no request: withdraw it rather than leave one nobody can see or approve blocking the group's
        # next Silence until it expires.
        if await ctx.store.move_silence_request(request_id, SilenceState.WITHDRAWN, at=ctx.clock.now()):
            await _audit(ctx, group, user, "silence request withdrawn", f"request {request_id}: it could not be "
                                                                        "posted", Outcome.ERROR)
        raise
    await ctx.store.set_silence_request_message(request_id, ts)
    await ctx.store.touch_group(group.id)
    await refresh(ctx, group.id)
    return replace(request, message_ts=ts)


async def decide(ctx: Context, request_id: int, user: str, verdict: Verdict) -> str:
    """One person's Approve or Deny of a silence request; what to tell them. The requester's Deny withdraws it."""
    request = await _request_of(ctx, request_id)
    if request.state is not SilenceState.PENDING:
        raise SilenceNotPending(_already(request))
    now = ctx.clock.now()
    if now >= request.expires_at:
        await _expire(ctx, request)
        raise SilenceNotPending("This silence request expired; nothing was silenced. Press Silence again if it is "
                                "still needed.")
    if user == request.requested_by:
        if verdict is Verdict.APPROVE:
            raise NotAllowed("You asked for this silence: a second person has to approve it.")
        return await _close(ctx, request, SilenceState.WITHDRAWN, user, "silence withdrawn",
                            "Withdrawn: nothing was silenced.")
    if request.approvers and not await ctx.membership.contains(request.approvers, user):
        raise NotAllowed(f"You are not an approver of silences. Who can approve: {mention(request.approvers)} "
                         "(alerts.silence_approvals.approvers).")
    if not await ctx.store.add_silence_decision(SilenceDecision(request_id, user, verdict, now)):
        raise SilenceNotPending("You already decided on this silence request.")
    group = await group_of(ctx, request.group_id)
    await _audit(ctx, group, user, _VERDICT_WORDS[verdict], f"request {request_id}")
    if verdict is Verdict.DENY:
        return await _close(ctx, request, SilenceState.DENIED, user, "silence denied", "Denied: nothing was silenced.")
    approvals = [d for d in await ctx.store.silence_decisions(request_id) if d.verdict is Verdict.APPROVE]
    if len(approvals) < request.approvals_needed:
        await _show_request(ctx, request_id)
        return (f"Approved ({len(approvals)} of {request.approvals_needed}): waiting for "
                f"{request.approvals_needed - len(approvals)} more.")
    # Two approvers clicking at once both get here: the compare-and-set lets one make the silence, and only while
    # the request has not expired.
    if not await ctx.store.move_silence_request(request_id, SilenceState.APPROVED, at=now, unexpired=True,
                                                decided_by=user):
        raise SilenceNotPending(_already(await _request_of(ctx, request_id)))
    return await _make(ctx, replace(request, state=SilenceState.APPROVED, decided_by=user), group, user)


async def _make(ctx: Context, request: SilenceRequest, group: AlertGroup, approver: str) -> str:
    request_id = request.id or 0
    now = ctx.clock.now()
    problem: str | None = None
    silence_id: str | None = None
    if request.ask.ends(now) < now + SOONEST:
        problem = "the time it was asked until had passed by the time it was approved"
    else:
        try:
            silence_id = await _create(ctx, group, request.requested_by, request.ask, approved_by=approver)
        except silences.SilenceFailed as exc:
            problem = str(exc)
        if silence_id is None and problem is None:
            problem = "the alert group was silenced meanwhile; its message shows that silence"
    if silence_id is not None:
        await ctx.store.move_silence_request(request_id, SilenceState.SILENCED, at=now, silence_id=silence_id)
        await _audit(ctx, group, approver, "silenced", f"request {request_id}: silence {silence_id} "
                                                       f"{_asked(request.ask)}")
        said = f"Approved: silenced in Alertmanager (silence `{silence_id}`)."
    else:
        await ctx.store.move_silence_request(request_id, SilenceState.FAILED, at=now, problem=(problem or "")[:500])
        await _audit(ctx, group, approver, "silence failed", f"request {request_id}: {problem}", Outcome.ERROR)
        said = f"Approved, but nothing was silenced: {problem}"
    await _show_request(ctx, request_id)
    await ctx.store.touch_group(group.id)
    await refresh(ctx, group.id)
    return said


async def _create(ctx: Context, group: AlertGroup, requester: str, ask: SilenceAsk, *,
                  approved_by: str | None) -> str | None:
    """Create the silence in Alertmanager and record it on the group; None (and the new silence expired again) when
    the group got another silence meanwhile."""
    labels = group.group_labels or _shared_labels(await ctx.store.group_alerts(group.id))
    now = ctx.clock.now()
    until = ask.ends(now)
    name = await ctx.chat.user_name(requester) or requester
    comment = f"{ask.comment} — asked from Slack by {name}"
    if approved_by is not None:
        comment += f", approved by {await ctx.chat.user_name(approved_by) or approved_by}"
    url = alertmanager_url(ctx, group)
    silence_id = await silences.create(ctx.http, url, labels, starts=now, ends=until,
                                       created_by=f"{name} ({requester}) via opsbot",
                                       comment=f"{comment} (opsbot alert group {group.id})")
    # Over a silence that reached its end (still recorded on the group), as over none: compare-and-set from it.
    if not await ctx.store.set_group_silence(group.id, silence_id, requester, until, previous=group.silence_id):
        # Someone else silenced it meanwhile: take ours back rather than leave a second silence no message shows.
        await silences.expire(ctx.http, url, silence_id)
        return None
    return silence_id


async def unsilence(ctx: Context, group_id: int, user: str) -> AlertGroup:
    group = await group_of(ctx, group_id)
    if group.silence_id is None:
        raise OpsbotError("This alert group is not silenced (any more).")
    await silences.expire(ctx.http, alertmanager_url(ctx, group), group.silence_id)
    await ctx.store.set_group_silence(group_id, None, None, None, previous=group.silence_id)
    await _audit(ctx, group, user, "unsilenced", f"silence {group.silence_id}")
    await refresh(ctx, group_id)
    return await group_of(ctx, group_id)


def alertmanager_url(ctx: Context, group: AlertGroup) -> str:
    """The catalog's `alerts.alertmanager_url` when set, else the externalURL the group's webhooks carried."""
    configured = settings_of(ctx).alertmanager_url
    url = configured or group.external_url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise silences.SilenceFailed("opsbot does not know Alertmanager's URL: set `alerts.alertmanager_url` in the "
                                     "catalog")
    return url


# --- expiry ---------------------------------------------------------------------------------------------------------


async def expire_due(ctx: Context) -> int:
    """A chore: expire requests nobody approved in time, and fail those whose silence-maker stopped mid-way.
    Returns how many this replica settled (each a compare-and-set: replicas may all run it)."""
    if ctx.catalog.alerts is None:
        return 0
    now = ctx.clock.now()
    settled = 0
    for request in await ctx.store.stale_silence_requests(now, claimed_before=now - CLAIM_STALE):
        settled += await _settle(ctx, request)
    return settled


async def _settle_open(ctx: Context, group_id: int) -> None:
    request = await ctx.store.open_silence_request(group_id)
    now = ctx.clock.now()
    if request is not None and ((request.state is SilenceState.PENDING and now >= request.expires_at) or
                                (request.state is SilenceState.APPROVED and request.decided_at is not None
                                 and request.decided_at <= now - CLAIM_STALE)):
        await _settle(ctx, request)


async def _settle(ctx: Context, request: SilenceRequest) -> int:
    if request.state is SilenceState.PENDING:
        return int(await _expire(ctx, request))
    problem = ("opsbot stopped before Alertmanager confirmed the silence; look at Alertmanager's silences before "
               "asking again")
    if not await ctx.store.move_silence_request(request.id or 0, SilenceState.FAILED, at=ctx.clock.now(),
                                                problem=problem):
        return 0
    group = await group_of(ctx, request.group_id)
    await _audit(ctx, group, None, "silence failed", f"request {request.id}: {problem}", Outcome.ERROR)
    await _after_close(ctx, request)
    return 1


async def _expire(ctx: Context, request: SilenceRequest) -> bool:
    if not await ctx.store.move_silence_request(request.id or 0, SilenceState.EXPIRED, at=ctx.clock.now()):
        return False
    group = await group_of(ctx, request.group_id)
    await _audit(ctx, group, None, "silence request expired", f"request {request.id}", Outcome.REJECTED)
    await _after_close(ctx, request)
    return True


async def _close(ctx: Context, request: SilenceRequest, to: SilenceState, user: str, what: str, said: str) -> str:
    if not await ctx.store.move_silence_request(request.id or 0, to, at=ctx.clock.now(), decided_by=user):
        raise SilenceNotPending(_already(await _request_of(ctx, request.id or 0)))
    group = await group_of(ctx, request.group_id)
    await _audit(ctx, group, user, what, f"request {request.id}", Outcome.REJECTED)
    await _after_close(ctx, request)
    return said


async def _after_close(ctx: Context, request: SilenceRequest) -> None:
    await _show_request(ctx, request.id or 0)
    await ctx.store.touch_group(request.group_id)
    await refresh(ctx, request.group_id)


# --- helpers --------------------------------------------------------------------------------------------------------


async def _request_of(ctx: Context, request_id: int) -> SilenceRequest:
    request = await ctx.store.silence_request(request_id)
    if request is None:
        raise StaleButton()
    return request


async def _request_view(ctx: Context, request: SilenceRequest) -> Message:
    group = await group_of(ctx, request.group_id)
    alerts = [stored.alert for stored in await ctx.store.group_alerts(group.id)]
    return request_message(request, group_name(group, alerts), await ctx.store.silence_decisions(request.id or 0))


async def _show_request(ctx: Context, request_id: int) -> None:
    """Re-render the request's message from the store. Best effort: the row is the record."""
    try:
        request = await _request_of(ctx, request_id)
        if request.message_ts is not None:
            await ctx.chat.update(request.channel_id, request.message_ts, await _request_view(ctx, request))
    except Exception:
        log.exception("could not update the message of silence request %s", request_id)


def _already(request: SilenceRequest) -> str:
    by = f" by <@{request.decided_by}>" if request.decided_by else ""
    return {
        SilenceState.APPROVED: f"Already approved{by}; the silence is being made.",
        SilenceState.SILENCED: f"Already approved{by} and silenced (silence `{request.silence_id}`).",
        SilenceState.FAILED: f"Already approved{by}, but nothing was silenced: {request.problem}",
        SilenceState.DENIED: f"Already denied{by}: nothing was silenced.",
        SilenceState.WITHDRAWN: "Its requester withdrew it: nothing was silenced.",
        SilenceState.EXPIRED: "This silence request expired; nothing was silenced.",
    }.get(request.state, f"This silence request is {request.state.value}.")


def _asked(ask: SilenceAsk) -> str:
    if ask.until is not None:
        return f"until {ask.until.isoformat()}"
    return f"for {ask.lasting}"


async def _audit(ctx: Context, group: AlertGroup, actor: str | None, what: str, detail: str,
                 outcome: Outcome = Outcome.OK) -> None:
    try:
        await ctx.store.record_audit(AuditEntry(at=ctx.clock.now(), kind="alert", name="silence", outcome=outcome,
                                                actor_id=actor, channel_id=group.channel_id,
                                                args=f"alert group {group.id}: {what}", detail=detail[:1000]))
    except Exception:
        log.exception("could not audit %s of alert group %s", what, group.id)


def _shared_labels(alerts: list[StoredAlert]) -> dict[str, str]:
    from_alerts = [stored.alert.labels for stored in alerts]
    if not from_alerts:
        return {}
    return {k: v for k, v in from_alerts[0].items() if all(labels.get(k) == v for labels in from_alerts[1:])}


def ask_for(hours: int | None = None, *, until: datetime | None = None, comment: str = "") -> SilenceAsk:
    """A button's ask (1 h / 4 h) or the form's (until a time, with a reason)."""
    if until is not None:
        return SilenceAsk(until, None, comment.strip() or "Silenced from Slack")
    return SilenceAsk(None, timedelta(hours=hours or 1), comment.strip() or f"Silenced for {hours} h from Slack")
