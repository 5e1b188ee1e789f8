"""The run flows: plan → request → approve/deny → run once under the services' locks → report.

Every run — a built-in action (`bot.runs.builtin`) or a runbook — is a plan the one engine (`bot.runs.engine`)
runs. Every transition is a compare-and-set on the run's row (so double clicks, duplicated deliveries and
replicas cannot run anything twice), is audited, and is then shown by re-rendering the run's message.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import replace
from datetime import timedelta
from typing import Any

from bot.audit import AuditEntry, Outcome, current_request
from bot.errors import InfrastructureError, OpsbotError, store_down
from bot.executors.base import ExecutorError
from bot.incidents import timeline
from bot.incidents.models import EntryKind
from bot.log_context import annotate, bound
from bot.runs import builtin, engine, targets
from bot.runs.deps import RunDeps
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
from bot.views import escape
from bot.views.backups import backup_result_message
from bot.views.run_words import outcome_text, run_note
from bot.views.runs import describe, run_message

log = logging.getLogger(__name__)

DRAFT_MINUTES = 10  # how long a plan shown to the requester stays confirmable


class ActionNotFound(OpsbotError):
    def __init__(self, run_id: int) -> None:
        super().__init__(f"There is no action #{run_id}.")


class NotPending(OpsbotError):
    """The request was already decided, expired or cancelled."""


class ActionAlreadyRunning(OpsbotError):
    pass


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
    now = ctx.clock.now()
    run = ActionRun(
        service=service, kind=kind, environment=entry.environment, target=target, requested_by=requested_by,
        created_at=now, expires_at=now + timedelta(minutes=DRAFT_MINUTES), params=params,
        approvals_needed=policy.approvals, approvers=policy.approvers, reason=reason[:500], channel_id=channel_id,
        steps=builtin.rows_of(plan), plan=plan, audit_id=current_request(),
    )
    run = replace(run, id=await ctx.store.create_action(run))
    annotate(run_id=run.id)
    await audit_run(ctx, run, "planned", requested_by)
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
        if await ctx.store.transition_action(run_id, ActionState.EXPIRED, expect={ActionState.DRAFT}):
            await audit_run(ctx, run, "expired (plan not sent)", user, outcome=Outcome.REJECTED)
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
                                             outcome="Withdrawn: it could not be posted in the channel."):
            await audit_run(ctx, run, "cancelled (could not post)", user, outcome=Outcome.ERROR)
        raise
    await ctx.store.set_action_message(run_id, run.channel_id, ts)
    if to is ActionState.APPROVED:
        ctx.tasks.spawn(execute(ctx, run_id), name=f"action {run_id}")
    return await get_run(ctx, run_id)


async def cancel(ctx: RunDeps, run_id: int, user: str) -> None:
    run = await get_run(ctx, run_id)
    if user != run.requested_by:
        raise NotAllowed("Only the person who asked for this plan can drop it.")
    if await ctx.store.transition_action(run_id, ActionState.CANCELLED, expect={ActionState.DRAFT}):
        await audit_run(ctx, run, "cancelled", user)


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
        outcome = f"Denied by <@{user}>" + (f": {escape(reason)}" if reason else "")
        if await ctx.store.transition_action(run_id, ActionState.DENIED, expect={ActionState.PENDING}, outcome=outcome,
                                             finished_at=ctx.clock.now()):
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
    if await ctx.store.transition_action(run.id or 0, ActionState.EXPIRED, expect={ActionState.PENDING, ActionState.DRAFT},
                                        outcome="Expired: nobody approved in time; nothing ran.", finished_at=ctx.clock.now()):
        await audit_run(ctx, run, "expired", None, outcome=Outcome.REJECTED)
        if run.state is ActionState.PENDING:  # a draft nobody requested was never waiting for approval
            ctx.metrics.approval_done("expired", run.created_at, ctx.clock.now())
        if run.message_ts:
            await refresh_message(ctx, run.id or 0)
        return True
    return False


async def expire_due(ctx: RunDeps) -> int:
    """Expire every request past its time; returns how many. The scheduler calls it periodically."""
    return sum([await expire(ctx, run) for run in await ctx.store.expired_actions(ctx.clock.now())])


# --- running ------------------------------------------------------------------------------------------


async def execute(ctx: RunDeps, run_id: int) -> None:
    """Run an approved action once: under its services' leases, each step stored then shown."""
    with bound(run_id=run_id):  # every line the run logs, and its heartbeat's, names it
        await _execute(ctx, run_id)


async def _execute(ctx: RunDeps, run_id: int) -> None:
    run = await get_run(ctx, run_id)
    if ctx.handover.draining and run.state is ActionState.APPROVED:
        await hand_over(ctx, run, None)  # approved as this replica stops: the next one up runs it
        return
    startable = {ActionState.APPROVED, ActionState.HANDED_OVER} & {run.state}
    leases: list[Any] = []
    try:
        # In name order, so two runbooks wanting the same services cannot each hold one and wait for the other.
        for service in sorted(run.services):
            try:
                lease = await ctx.locks.acquire(f"service:{service}", ctx.settings.lease_seconds)
            except InfrastructureError as exc:
                await _refuse(ctx, run, f"Not run: {exc}", "ERROR")
                return
            if lease is None and run.state is ActionState.HANDED_OVER:
                return  # another replica is taking it over; or, if not, the next take-over pass tries again
            if lease is None:
                running = await holding(ctx, service, [ActionState.RUNNING], besides=run_id)
                who = holder(running) if running else "another action"
                await _refuse(ctx, run, f"Not run: {who} is running on `{service}`. Ask again when it is done.", "REJECTED")
                return
            leases.append(lease)
        now = ctx.clock.now()
        if not startable or not await ctx.store.transition_action(run_id, ActionState.RUNNING, expect=startable,
                                                                  started_at=now, lease_owner=ctx.owner, heartbeat_at=now):
            return  # someone else already ran it, or recovery gave up on it
        await audit_run(ctx, run, "running", None, "taken over from a stopping replica"
                        if run.state is ActionState.HANDED_OVER else None)
        work = asyncio.current_task()
        assert work is not None
        heartbeat = ctx.tasks.spawn(_keep(ctx, leases, run_id, work), name=f"heartbeat {run.label}")
        try:
            with ctx.tracer.span(f"run {run.kind.value}", {"opsbot.run_id": run_id, "opsbot.run.kind": run.kind.value,
                                                           "opsbot.service": run.service}):
                await _run(ctx, await get_run(ctx, run_id))
        finally:
            heartbeat.cancel()
    finally:
        for lease in leases:
            try:
                await lease.release()
            except InfrastructureError:
                log.warning("could not release a lease of %s; it lapses in %s s", run.label, ctx.settings.lease_seconds)


async def holding(ctx: RunDeps, service: str, states: list[ActionState], *, besides: int | None = None) -> ActionRun | None:
    """A run in one of `states` that holds `service`: a runbook run holds every service it touches, not only the
    one in its row."""
    return _holding(await ctx.store.actions(states=states, limit=100), service, besides)


def _holding(runs: list[ActionRun], service: str, besides: int | None = None) -> ActionRun | None:
    return next((run for run in runs if service in run.services and run.id != besides), None)


async def refuse_if_busy(ctx: RunDeps, services: list[str] | tuple[str, ...]) -> None:
    """Raise ActionAlreadyRunning, naming the run, when one approved or running holds any of `services`."""
    runs = await ctx.store.actions(states=[ActionState.RUNNING, ActionState.APPROVED, ActionState.HANDED_OVER], limit=100)
    for service in services:
        running = _holding(runs, service)
        if running is not None:
            raise ActionAlreadyRunning(f"{holder(running)} is under way on `{service}`; ask again when it is done.")


def holder(run: ActionRun) -> str:
    return f"{run.label} #{run.id} (requested by {run.requester})"


async def _refuse(ctx: RunDeps, run: ActionRun, outcome: str, kind: str) -> None:
    if await ctx.store.transition_action(run.id or 0, ActionState.FAILED, expect={ActionState.APPROVED},
                                        outcome=escape(outcome), target_state="untouched: nothing ran",
                                         finished_at=ctx.clock.now()):
        await audit_run(ctx, run, "refused", None, outcome, outcome=Outcome.ERROR if kind == "ERROR" else Outcome.REJECTED)
        await refresh_message(ctx, run.id or 0)
        await announce_backup(ctx, run)


async def _keep(ctx: RunDeps, leases: list[Any], run_id: int, work: asyncio.Task[Any]) -> None:
    """Renew the leases and the run's heartbeat (every HEARTBEAT_SECONDS); if any is lost, stop the run rather than
    act unguarded."""
    while True:
        await ctx.clock.sleep(ctx.settings.heartbeat_seconds)
        try:
            renewed = [await lease.renew(ctx.settings.lease_seconds) for lease in leases]
            alive = all(renewed) and await ctx.store.heartbeat(run_id, ctx.owner, ctx.clock.now())
        except Exception:
            log.exception("renewing the lease of action run %s failed", run_id)
            alive = False
        if not alive:
            log.error("action run %s lost its lease; stopping it", run_id)
            work.cancel(_LEASE_LOST)
            return


_LEASE_LOST = "lease lost"


async def _run(ctx: RunDeps, run: ActionRun) -> None:
    run_id = run.id or 0

    async def show(steps: list[ActionStep]) -> None:
        await _update(ctx, replace(run, state=ActionState.RUNNING, steps=tuple(steps)), await ctx.store.decisions(run_id))

    async def note(text: str, actor: str | None) -> None:
        # A run started from an incident's channel tells its story in the incident's timeline.
        await timeline.from_channel(ctx, run.channel_id, EntryKind.ACTION, run_note(run, text), actor or run.requested_by)

    try:
        try:
            ended = await engine.perform(ctx, run, show, note)
        except engine.RunStopped as stopped:
            ended = stopped.outcome
        except engine.HandedOver as boundary:
            await hand_over(ctx, run, boundary.step)
            return
    except asyncio.CancelledError as exc:
        why = ("opsbot lost its lease on the service (is its lock store reachable?)" if _LEASE_LOST in exc.args
               else "opsbot was stopped")
        await _ended(ctx, run, RunOutcome(Ending.INTERRUPTED, run.services, why=why))
        raise
    except OpsbotError as exc:
        await _finish(ctx, run, ActionState.FAILED, escape(str(exc)), "unchanged by the failing step; see the steps above")
    except Exception as exc:
        reference = secrets.token_hex(4)
        if store_down(exc):  # the store logs its outage once; if it is still away, recovery interrupts the run later
            log.warning("run %s stopped: the store could not be reached (reference %s)", run_id, reference)
        else:
            log.exception("run %s failed unexpectedly (reference %s)", run_id, reference)
        await _ended(ctx, run, RunOutcome(Ending.BROKE, run.services, why=type(exc).__name__, reference=reference))
    else:
        await _ended(ctx, run, ended)


async def _ended(ctx: RunDeps, run: ActionRun, ended: RunOutcome) -> None:
    outcome, target_state = outcome_text(run, ended)
    await _finish(ctx, run, ended.final, outcome, target_state, data=ended)


async def _finish(ctx: RunDeps, run: ActionRun, state: ActionState, outcome: str, target_state: str, *,
                  data: RunOutcome | None = None) -> None:
    # Fenced by owner: a replica that lost its lease (and had its run interrupted) cannot overwrite the end.
    won = await ctx.store.transition_action(run.id or 0, state, expect={ActionState.RUNNING}, owner=ctx.owner,
                                            outcome=outcome[:1000], target_state=target_state[:500], finished_at=ctx.clock.now(),
                                            outcome_data=data)
    if won:
        ctx.metrics.run_done(run.kind.value, state.value, run.started_at, ctx.clock.now())
        ctx.tracer.annotate({"opsbot.run.outcome": state.value})  # on the run's span: `_finish` runs inside it
        await audit_run(ctx, run, state.value, None, outcome,
                     outcome=Outcome.OK if state is ActionState.SUCCEEDED else Outcome.ERROR)
    await refresh_message(ctx, run.id or 0)
    if won and state in (ActionState.SUCCEEDED, ActionState.FAILED):
        await announce_backup(ctx, run)


async def hand_over(ctx: RunDeps, run: ActionRun, step: int | None) -> bool:
    """This replica is stopping: leave the run at a step boundary (`step`, the next one to start; None when none
    started) for the next replica, which goes on from there (`take_over`). Only a boundary where the last step's end
    is stored is handed over; a step cut mid-way is the engine's `interrupted` case, left to people."""
    where = "before it started" if step is None else f"before step {step + 1}"
    outcome = f"Handed over {where}: this opsbot replica is stopping; the next one up goes on from there."
    expect = {ActionState.APPROVED} if step is None else {ActionState.RUNNING}
    owner = None if step is None else ctx.owner
    won = await ctx.store.transition_action(run.id or 0, ActionState.HANDED_OVER, expect=expect, owner=owner,
                                            outcome=outcome, lease_owner=None)
    if won:
        log.info("handed %s #%s over %s", run.label, run.id, where)
        await audit_run(ctx, run, "handed over", None, outcome)
        await refresh_message(ctx, run.id or 0)
    return won


async def take_over(ctx: RunDeps) -> int:
    """A chore: go on with runs a stopping replica handed over at a step boundary. Each is started through
    `execute`, which takes the services' leases and moves handed_over → running as a compare-and-set, so one replica
    wins; the engine skips the steps whose success is stored."""
    if ctx.handover.draining:
        return 0
    started = 0
    for run in await ctx.store.actions(states=[ActionState.HANDED_OVER], limit=100):
        run_id = run.id or 0
        if run_id in ctx.handover.taking:
            continue
        ctx.handover.taking.add(run_id)
        ctx.tasks.spawn(_take_over(ctx, run_id), name=f"take over {run.label} #{run_id}")
        started += 1
    return started


async def _take_over(ctx: RunDeps, run_id: int) -> None:
    try:
        await execute(ctx, run_id)
    finally:
        ctx.handover.taking.discard(run_id)


async def announce_backup(ctx: RunDeps, run: ActionRun) -> None:
    """Post a finished backup run's result (✅ file, size, time / ⏸ not started / ❌ reason) to its service's own
    channel, unless the run's message is already there. Best effort, like `refresh_message`: the run's row is the
    record of it. Only the transition that ended the run calls it, so a run is announced once."""
    if run.kind is not ActionKind.BACKUP:
        return
    try:
        entry = ctx.catalog.services.get(run.service)
        channel = entry.channel if entry is not None else None
        if channel is None or channel == run.channel_id:
            return
        finished = await get_run(ctx, run.id or 0)
        record = await ctx.store.backup_of_run(finished.id or 0) if finished.state is ActionState.SUCCEEDED else None
        await ctx.chat.post(channel, backup_result_message(finished, record))
    except Exception:
        log.exception("could not post the result of %s #%s to the service's channel", run.label, run.id)


# --- recovery, messages, audit -----------------------------------------------------------------------


async def recover(ctx: RunDeps) -> int:
    """Runs approved or running whose replica has been silent for a lease time (LEASE_SECONDS: its lease on the
    service has lapsed too) were cut short (a crash, a kill): they become `interrupted` and their messages say
    so; a person decides what next. Runs at start-up (what a replica finds stale there it recovers at once) and
    every CHORE_SECONDS, so a run left behind by a quick restart or a dead peer is caught too."""
    count = 0
    for run in await ctx.store.stale_actions(ctx.clock.now() - timedelta(seconds=ctx.settings.lease_seconds)):
        try:
            outcome = ("Interrupted: opsbot stopped while this was running." if run.state is ActionState.RUNNING
                       else "Interrupted: approved, but opsbot stopped before it started.")
            if await ctx.store.transition_action(run.id or 0, ActionState.INTERRUPTED, expect={run.state}, outcome=outcome,
                                                target_state=f"unknown: check `/ops health {run.service}` before trying again",
                                                finished_at=ctx.clock.now()):
                count += 1
                ctx.metrics.run_done(run.kind.value, ActionState.INTERRUPTED.value, run.started_at, ctx.clock.now())
                await audit_run(ctx, run, "interrupted", None, outcome, outcome=Outcome.ERROR)
                await refresh_message(ctx, run.id or 0)
        except Exception:
            log.exception("could not mark action run %s interrupted; will try again", run.id)
    return count


async def refresh_message(ctx: RunDeps, run_id: int) -> None:
    """Re-render the run's message from the store. Best effort: the row is the truth, and a Slack hiccup
    must not stop a run or a decision; the next change re-renders it whole."""
    try:
        run = await get_run(ctx, run_id)
        await _update(ctx, run, await ctx.store.decisions(run_id))
    except Exception:
        log.exception("could not update the Slack message of action run %s", run_id)


async def _update(ctx: RunDeps, run: ActionRun, decisions: list[ApprovalDecision]) -> None:
    if run.channel_id and run.message_ts:
        await ctx.chat.update(run.channel_id, run.message_ts, run_message(run, decisions))


async def get_run(ctx: RunDeps, run_id: int) -> ActionRun:
    annotate(run_id=run_id)  # a request that loads a run is about it (chores bind their own context around this)
    run = await ctx.store.get_action(run_id)
    if run is None:
        raise ActionNotFound(run_id)
    return run


_ON_TIMELINE = {"pending", "approved", "running", "succeeded", "failed", "denied", "expired", "interrupted", "refused"}


async def audit_run(ctx: RunDeps, run: ActionRun, what: str, actor: str | None, detail: str | None = None,
                 *, outcome: Outcome = Outcome.OK) -> None:
    if what in _ON_TIMELINE:  # an action asked for in an incident channel is part of that incident's story
        text = f"Action #{run.id} {describe(run)}: {what}" + (f" — {detail}" if detail and what != "denied" else "")
        await timeline.from_channel(ctx, run.channel_id, EntryKind.ACTION, text, actor or run.requested_by)
    try:
        await ctx.store.record_audit(AuditEntry(
            at=ctx.clock.now(), kind="action", name=run.label, outcome=outcome, actor_id=actor,
            channel_id=run.channel_id, args=f"#{run.id} {what}", detail=detail,
        ))
    except Exception:
        log.exception("could not audit %s #%s %s", run.label, run.id, what)



async def revisions(ctx: RunDeps, service: str) -> list[Any]:
    """Deploy revisions for `/ops history`; empty when the service has no workload target."""
    if ctx.catalog.services[service].target is None:
        return []
    workload = targets.workload_for(ctx, service, ActionKind.ROLLBACK)
    try:
        return await workload.revisions()
    except ExecutorError as exc:
        log.warning("could not list revisions of %s: %s", service, exc)
        return []
    finally:
        await targets.close(workload)
