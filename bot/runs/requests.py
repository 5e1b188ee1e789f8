"""Asking for a run: plan a built-in action, keep it as a draft, send it, approve or deny it, expire it; and the
catalog's schedule approving a run by itself. Each of these endings stored as a typed outcome.

Every transition is a compare-and-set on the run's row (double clicks, duplicated deliveries and replicas cannot
decide twice), is audited, and is shown by re-rendering the run's message. Not responsible for running an approved
run (`bot.runs.execution`) nor for runbooks' plans and follow-ups (`bot.runs.runbook_plans`, `bot.runs.follow_ups`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from bot.audit import Outcome, current_request
from bot.errors import OpsbotError
from bot.log_context import annotate
from bot.runs import builtin
from bot.runs.deps import RunDeps
from bot.runs.execution import audit_run, ending, execute, get_run, refresh_message, refuse_if_busy
from bot.runs.models import (
    SCHEDULER,
    ActionKind,
    ActionRun,
    ActionState,
    ActionStep,
    ApprovalDecision,
    Decision,
    PlannedStep,
)
from bot.runs.outcomes import Ending, RunOutcome
from bot.runs.policy import NotAllowed, mention, resolve_policy
from bot.views.runs import run_message

log = logging.getLogger(__name__)

DRAFT_MINUTES = 10  # how long a plan shown to the requester stays confirmable


class NotPending(OpsbotError):
    """The request was already decided, expired or cancelled."""


# --- planning and requesting ----------------------------------------------------------------------------


async def plan(
    ctx: RunDeps, service: str, kind: ActionKind, *, requested_by: str, channel_id: str | None,
    params: dict[str, Any] | None = None, reason: str = "",
) -> ActionRun:
    """Check the request against the catalog and policy and store it as a draft. Touches no target."""
    entry = ctx.catalog.service(service)
    params = dict(params or {})
    policy = resolve_policy(service, entry.environment, entry.owners, entry.approvals, ctx.catalog.approvals, kind)
    if policy.requesters and not await ctx.membership.contains(policy.requesters, requested_by):
        raise NotAllowed(f"You may not {kind.value} `{service}`. Who may ask: {mention(policy.requesters)} ({policy.source}).")
    await refuse_if_busy(ctx, [service])
    target, plan = await _planned(ctx, service, kind, params)
    return await store_draft(ctx, Shape(kind, service, entry.environment, target), params, plan, builtin.rows_of(plan),
                             policy.approvals, policy.approvers, requested_by, channel_id, reason)


@dataclass(frozen=True)
class Shape:
    """What a new run is and touches: a follow-up's are its predecessor's."""

    kind: ActionKind
    service: str  # the first it touches
    environment: str
    target: str


async def store_draft(ctx: RunDeps, shape: Shape, params: dict[str, Any], plan: tuple[PlannedStep, ...],
                      rows: tuple[ActionStep, ...], approvals: int, approvers: tuple[str, ...], user: str,
                      channel_id: str | None, reason: str) -> ActionRun:
    """Store a checked plan as `user`'s draft (built-in action, runbook or follow-up alike), audited."""
    now = ctx.clock.now()
    run = ActionRun(
        service=shape.service, kind=shape.kind, environment=shape.environment, target=shape.target,
        requested_by=user, created_at=now, expires_at=now + timedelta(minutes=DRAFT_MINUTES), params=dict(params),
        approvals_needed=approvals, approvers=approvers, reason=reason[:500], channel_id=channel_id, steps=rows,
        plan=plan, audit_id=current_request(),
    )
    run = replace(run, id=await ctx.store.create_action(run))
    annotate(run_id=run.id)
    await audit_run(ctx, run, "planned", user)
    return run


async def _planned(ctx: RunDeps, service: str, kind: ActionKind,
                   params: dict[str, Any]) -> tuple[str, tuple[PlannedStep, ...]]:
    """A built-in action's plan, a runbook's alike (so the engine, Cancel, Resume and Roll back treat both alike);
    returns the target in words and the plan (the store writes it as the run's step rows)."""
    target, plan = await builtin.plan_of(ctx, service, kind, params)
    params.update(mode="run")
    return target, tuple(plan)


async def draft(ctx: RunDeps, run_id: int, user: str) -> ActionRun:
    """The requester's own draft, still sendable (before asking them for a reason)."""
    run = await get_run(ctx, run_id)
    if user != run.requested_by:
        raise NotAllowed("Only the person who asked for this plan can send it.")
    if run.state is not ActionState.DRAFT:
        raise NotPending(f"This plan was already {run.state.value}.")
    return run


async def request(ctx: RunDeps, run_id: int, user: str, reason: str | None = None) -> ActionRun:
    """The requester confirms the plan: it runs now (no approval needed) or asks for approval in the channel."""
    run = await get_run(ctx, run_id)
    if user != run.requested_by:
        raise NotAllowed("Only the person who asked for this plan can send it.")
    if reason and run.state is ActionState.DRAFT:
        await ctx.store.transition_action(run_id, ActionState.DRAFT, expect={ActionState.DRAFT}, reason=reason[:500])
    if ctx.clock.now() >= run.expires_at:
        if await ctx.store.transition_action(run_id, ActionState.EXPIRED, expect={ActionState.DRAFT},
                                             finished_at=ctx.clock.now(),
                                             **ending(run, RunOutcome(Ending.PLAN_EXPIRED, run.services))):
            await audit_run(ctx, run, "expired (plan not sent)", user, outcome=Outcome.REJECTED)
            await refresh_message(ctx, run_id)  # no message yet: its listeners hear that it ended
        raise NotPending(f"This plan expired after {DRAFT_MINUTES} minutes; ask again with `/ops {run.kind.value} "
                         f"{run.service}`.")
    to = ActionState.APPROVED if run.approvals_needed == 0 else ActionState.PENDING
    now = ctx.clock.now()
    expires = now + timedelta(minutes=ctx.catalog.approvals.expire_after_minutes)
    extra: dict[str, Any] = {"heartbeat_at": now} if to is ActionState.APPROVED else {}
    if not await ctx.store.transition_action(run_id, to, expect={ActionState.DRAFT}, expires_at=expires, **extra):
        raise NotPending(f"This plan was already {(await get_run(ctx, run_id)).state.value}.")
    await audit_run(ctx, run, to.value, user)
    run = await get_run(ctx, run_id)
    if run.channel_id is None:
        raise NotPending("This request has no channel to be posted in.")
    try:
        ts = await ctx.chat.post(run.channel_id, run_message(run, []))
    except BaseException:
        # No message, no request: withdraw it rather than leave a run nobody can see or approve.
        if await ctx.store.transition_action(run_id, ActionState.CANCELLED, expect={to},
                                             **ending(run, RunOutcome(Ending.WITHDRAWN, run.services))):
            await audit_run(ctx, run, "cancelled (could not post)", user, outcome=Outcome.ERROR)
            await refresh_message(ctx, run_id)  # no message to update: its listeners hear that it ended
        raise
    await ctx.store.set_action_message(run_id, run.channel_id, ts)
    if to is ActionState.APPROVED:
        ctx.tasks.spawn(execute(ctx, run_id), name=f"action {run_id}")
    return await get_run(ctx, run_id)


async def cancel(ctx: RunDeps, run_id: int, user: str) -> None:
    run = await get_run(ctx, run_id)
    if user != run.requested_by:
        raise NotAllowed("Only the person who asked for this plan can drop it.")
    if await ctx.store.transition_action(run_id, ActionState.CANCELLED, expect={ActionState.DRAFT},
                                         **ending(run, RunOutcome(Ending.DROPPED, run.services))):
        await audit_run(ctx, run, "cancelled", user)
        await refresh_message(ctx, run_id)  # no message yet: its listeners hear that it ended


async def run_scheduled_backup(ctx: RunDeps, service: str, occurrence: str) -> ActionRun:
    """A backup the catalog schedules: no person asks and none approves (the catalog is the approval); it runs
    now, under the service's lease like any other run, and is returned finished."""
    entry = ctx.catalog.service(service)
    params: dict[str, Any] = {"schedule": occurrence}
    target, plan = await _planned(ctx, service, ActionKind.BACKUP, params)
    now = ctx.clock.now()
    run = ActionRun(
        service=service, kind=ActionKind.BACKUP, environment=entry.environment, target=target, requested_by=SCHEDULER,
        created_at=now, expires_at=now + timedelta(minutes=DRAFT_MINUTES), params=params,
        reason=f"scheduled ({occurrence})", steps=builtin.rows_of(plan), plan=plan,
    )
    return await run_as_scheduled(ctx, replace(run, id=await ctx.store.create_action(run)))


async def run_as_scheduled(ctx: RunDeps, run: ActionRun) -> ActionRun:
    """Approve a stored draft the catalog's schedule asked for (the catalog is the approval), post its message
    when it has a channel, run it now and return it finished. Scheduled backups and scheduled runbooks alike."""
    run_id = run.id or 0
    # Through approved with a heartbeat, as a request does: recovery must not take it for a dead replica's run.
    await ctx.store.transition_action(run_id, ActionState.APPROVED, expect={ActionState.DRAFT},
                                      heartbeat_at=ctx.clock.now())
    await audit_run(ctx, run, "approved", None, "by the catalog's schedule")
    if run.channel_id is not None:
        try:
            ts = await ctx.chat.post(run.channel_id, run_message(await get_run(ctx, run_id), []))
            await ctx.store.set_action_message(run_id, run.channel_id, ts)
        except Exception:
            # The run row is the record and a failure is alerted anyway: an unposted message does not stop the run.
            log.exception("could not post the message of scheduled %s #%s", run.label, run_id)
    await execute(ctx, run_id)
    return await get_run(ctx, run_id)


# --- approving ----------------------------------------------------------------------------------------


async def decide(ctx: RunDeps, run_id: int, user: str, decision: Decision, reason: str = "") -> str:
    """One person's Approve or Deny. Returns what to tell them; raises when they may not decide."""
    run = await get_run(ctx, run_id)
    if run.state is not ActionState.PENDING:
        raise NotPending(await _already(ctx, run))
    if ctx.clock.now() >= run.expires_at:
        await expire(ctx, run)
        raise NotPending("This request expired; nothing ran. Ask again if it is still needed.")
    await check_decider(ctx, run, user, decision)
    if not await ctx.store.add_decision(ApprovalDecision(run_id, user, decision, ctx.clock.now(), reason[:500])):
        raise NotPending("You already decided on this request.")
    await audit_run(ctx, run, "approval given" if decision is Decision.APPROVE else "denial given", user, reason or None)
    if decision is Decision.DENY:
        denied = RunOutcome(Ending.DENIED, run.services, denied_by=user, why=reason[:500])
        if await ctx.store.transition_action(run_id, ActionState.DENIED, expect={ActionState.PENDING},
                                             finished_at=ctx.clock.now(), **ending(run, denied)):
            await audit_run(ctx, run, "denied", user, reason or None, outcome=Outcome.REJECTED)
            ctx.metrics.approval_done("denied", run.created_at, ctx.clock.now())
            await refresh_message(ctx, run_id)
            return "Denied: it will not run."
        raise NotPending(await _already(ctx, await get_run(ctx, run_id)))
    approvals = [d for d in await ctx.store.decisions(run_id) if d.decision is Decision.APPROVE]
    if len(approvals) < run.approvals_needed:
        await refresh_message(ctx, run_id)
        return f"Approved ({len(approvals)} of {run.approvals_needed}): waiting for {run.approvals_needed - len(approvals)} more."
    # Two approvers clicking at once both get here; the compare-and-set lets exactly one start the run,
    # and only while the request has not expired (the clock is read again inside the statement's condition).
    now = ctx.clock.now()
    if await ctx.store.transition_action(run_id, ActionState.APPROVED, expect={ActionState.PENDING}, unexpired_at=now,
                                         heartbeat_at=now):
        await audit_run(ctx, run, "approved", user)
        ctx.metrics.approval_done("approved", run.created_at, now)
        ctx.tasks.spawn(execute(ctx, run_id), name=f"action {run_id}")
        await refresh_message(ctx, run_id)
        return "Approved: it runs now; the message shows each step."
    return await _already(ctx, await get_run(ctx, run_id))


async def check_decider(ctx: RunDeps, run: ActionRun, user: str, decision: Decision) -> None:
    """Raise NotAllowed unless `user` may take this decision (the requester may deny, i.e. withdraw, only)."""
    if user == run.requested_by:
        if decision is Decision.APPROVE:
            raise NotAllowed("You asked for this: a second person has to approve it.")
        return
    if run.approvers and not await ctx.membership.contains(run.approvers, user):
        raise NotAllowed(f"You are not an approver for this. Who can approve: {mention(run.approvers)}.")


async def may_decide(ctx: RunDeps, run_id: int, user: str, decision: Decision) -> ActionRun:
    """Before opening the Deny modal: the run is pending and the user may decide on it."""
    run = await get_run(ctx, run_id)
    if run.state is not ActionState.PENDING:
        raise NotPending(await _already(ctx, run))
    await check_decider(ctx, run, user, decision)
    return run


async def _already(ctx: RunDeps, run: ActionRun) -> str:
    decided = list(await ctx.store.decisions(run.id or 0))
    who = ", ".join(f"<@{d.user_id}>" for d in decided) or "nobody"
    return {
        ActionState.APPROVED: f"Already approved (by {who}).",
        ActionState.RUNNING: f"Already approved (by {who}) and running.",
        ActionState.SUCCEEDED: f"Already done: approved by {who}.",
        ActionState.FAILED: f"Already approved by {who}; it ran and failed.",
        ActionState.DENIED: f"Already denied: {run.outcome}.",
        ActionState.EXPIRED: "This request expired; nothing ran.",
        ActionState.CANCELLED: "This request was withdrawn.",
        ActionState.DRAFT: "This plan has not been sent for approval yet.",
    }.get(run.state, f"This request is {run.state.value}.")


async def expire(ctx: RunDeps, run: ActionRun) -> bool:
    """Expire a request nobody approved in time, or a plan its requester never sent; False when it moved on."""
    expired = RunOutcome(Ending.EXPIRED if run.state is ActionState.PENDING else Ending.PLAN_EXPIRED, run.services)
    if await ctx.store.transition_action(run.id or 0, ActionState.EXPIRED, expect={run.state},
                                         finished_at=ctx.clock.now(), **ending(run, expired)):
        await audit_run(ctx, run, "expired", None, outcome=Outcome.REJECTED)
        if run.state is ActionState.PENDING:  # a draft nobody requested was never waiting for approval
            ctx.metrics.approval_done("expired", run.created_at, ctx.clock.now())
        await refresh_message(ctx, run.id or 0)  # a draft has no message yet; its listeners still hear it ended
        return True
    return False


async def expire_due(ctx: RunDeps) -> int:
    """Expire every request past its time; returns how many. The scheduler calls it periodically."""
    return sum([await expire(ctx, run) for run in await ctx.store.expired_actions(ctx.clock.now())])
