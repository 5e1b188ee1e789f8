"""The runbook flows that differ from a single action: planning from the catalog, Cancel, Resume and Roll back.

A runbook run is an action run (kind `runbook`) whose params hold the approved plan, so requesting, approving,
expiry, leases, heartbeats and recovery are the actions flow's (`bot.actions.service`); this module only builds
the runs. Not responsible for running steps (`bot.runbooks.engine`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from bot.actions.models import ActionKind, ActionRun, ActionState, ActionStep, BackupRecord, StepState
from bot.actions.policy import NotAllowed, ResolvedPolicy, mention, resolve_policy
from bot.actions.service import DRAFT_MINUTES, ActionAlreadyRunning, NotPending, _audit, _get, _holder, refresh_message
from bot.context import Context
from bot.runbooks import steps
from bot.runbooks.definitions import BackupParameter, Runbook
from bot.runbooks.params import coerce


class NotARunbookRun(NotPending):
    pass


def policy_of(ctx: Context, name: str, runbook: Runbook) -> ResolvedPolicy:
    """The runbook's own `approvals:`, else the most demanding of its services' runbook policies."""
    if runbook.approvals is not None:
        p = runbook.approvals
        return ResolvedPolicy(p.approvals, tuple(p.approvers), tuple(p.requesters), f"runbooks.{name}.approvals")
    resolved = [resolve_policy(s, ctx.catalog.services[s].environment, ctx.catalog.services[s].owners,
                               ctx.catalog.services[s].approvals, ctx.catalog.approvals, ActionKind.RUNBOOK)
                for s in runbook.services]
    return max(resolved, key=lambda p: (p.approvals, bool(p.approvers)))


async def plan(ctx: Context, name: str, given: dict[str, str], *, requested_by: str, channel_id: str | None,
               reason: str = "") -> ActionRun:
    """Check the parameters and policy, resolve every step (reading only), and store the plan as a draft."""
    runbook = ctx.catalog.runbook(name)
    policy = policy_of(ctx, name, runbook)
    await _may_request(ctx, name, policy, requested_by)
    values = await coerce(name, runbook, given, ctx.store)  # bad values are refused before any plan or approval
    await _not_busy(ctx, runbook.services)
    planned = [await steps.plan(ctx, spec, values) for spec in runbook.steps]
    params = {"runbook": name, "values": values, "services": sorted(set(runbook.services)), "mode": "run",
              "plan": [step.to_json() for step in planned]}
    rows = tuple(ActionStep(i, step.title) for i, step in enumerate(planned))
    return await _draft(ctx, params, rows, policy.approvals, policy.approvers, requested_by, channel_id, reason)


async def follow_up(ctx: Context, run_id: int, user: str, mode: str) -> ActionRun:
    """An interrupted run's Resume or Roll back, as a new plan for `user` needing the same approvals."""
    old = await _get(ctx, run_id)
    if old.kind is not ActionKind.RUNBOOK:
        raise NotARunbookRun("Only runbook runs can be resumed or rolled back from their message.")
    if old.state is not ActionState.INTERRUPTED:
        raise NotPending(f"Run #{run_id} is {old.state.value}, not interrupted: there is nothing to {mode}.")
    later = [r for r in await ctx.store.actions(service=old.service, limit=50)
             if r.params.get("of") == run_id and r.state not in (ActionState.CANCELLED, ActionState.EXPIRED,
                                                                  ActionState.DENIED)]
    if later:
        raise NotPending(f"Run #{run_id} was already followed up by run #{later[0].id} ({later[0].state.value}).")
    name = str(old.params["runbook"])
    runbook = ctx.catalog.runbooks.get(name)
    if runbook is not None:
        await _may_request(ctx, name, policy_of(ctx, name, runbook), user)
    await _not_busy(ctx, old.services)
    count = len(old.params["plan"])
    rows = []
    for row in old.steps[:count]:
        # What finished stays finished (with what its undo needs); the step it was on is run again, or undone.
        carried = row.state in (StepState.SUCCEEDED, StepState.SKIPPED, StepState.UNDONE)
        if mode == "rollback" and row.state is StepState.RUNNING:
            rows.append(replace(row, detail="interrupted here"))
        else:
            rows.append(row if carried else ActionStep(row.position, row.title, undo=row.undo))
    params = dict(old.params, mode=mode, of=run_id)
    return await _draft(ctx, params, tuple(rows), old.approvals_needed, old.approvers, user, old.channel_id,
                        f"{'resume' if mode == 'resume' else 'roll back'} interrupted run #{run_id}")


async def cancel_run(ctx: Context, run_id: int, user: str) -> str:
    """Cancel pressed on a running runbook: it stops before its next step and undoes what ran."""
    run = await _get(ctx, run_id)
    if run.kind is not ActionKind.RUNBOOK:
        raise NotARunbookRun("Only runbook runs can be cancelled while they run.")
    if user != run.requested_by and run.approvers and not await ctx.membership.contains(run.approvers, user):
        raise NotAllowed(f"Only the requester or an approver can cancel this run ({mention(run.approvers)}).")
    if not await ctx.store.request_cancel(run_id, user):
        run = await _get(ctx, run_id)
        if run.cancel_requested_by:
            return f"<@{run.cancel_requested_by}> already cancelled it; it stops before its next step."
        return f"Too late to cancel: the run is {run.state.value}."
    await _audit(ctx, run, "cancel asked", user)
    await refresh_message(ctx, run_id)
    return "Cancelling: it stops before its next step and undoes what it changed."


async def _may_request(ctx: Context, name: str, policy: ResolvedPolicy, user: str) -> None:
    if policy.requesters and not await ctx.membership.contains(policy.requesters, user):
        raise NotAllowed(f"You may not run `{name}`. Who may: {mention(policy.requesters)} ({policy.source}).")


async def _not_busy(ctx: Context, services: list[str] | tuple[str, ...]) -> None:
    # A runbook run holds every service it touches, not only the one in its row.
    busy = await ctx.store.actions(states=[ActionState.RUNNING, ActionState.APPROVED], limit=100)
    for service in services:
        holder = next((run for run in busy if service in run.services), None)
        if holder is not None:
            raise ActionAlreadyRunning(f"{_holder(holder)} is under way on `{service}`; ask again when it is done.")


async def _draft(ctx: Context, params: dict[str, object], rows: tuple[ActionStep, ...],
                 approvals: int, approvers: tuple[str, ...], user: str, channel_id: str | None,
                 reason: str) -> ActionRun:
    services = list(params["services"])  # type: ignore[call-overload]
    environments = sorted({ctx.catalog.services[s].environment for s in services if s in ctx.catalog.services})
    now = ctx.clock.now()
    run = ActionRun(
        service=services[0], kind=ActionKind.RUNBOOK, environment=", ".join(environments) or "unknown",
        target=", ".join(services), requested_by=user, created_at=now,
        expires_at=now + timedelta(minutes=DRAFT_MINUTES), params=dict(params), approvals_needed=approvals,
        approvers=approvers, reason=reason[:500], channel_id=channel_id, steps=rows,
    )
    run = replace(run, id=await ctx.store.create_action(run))
    await _audit(ctx, run, "planned", user)
    return run


async def backup_choices(ctx: Context, runbook: Runbook) -> dict[str, list[BackupRecord]]:
    """The backups a runbook's backup parameters may pick from, per service, newest first (for the modal)."""
    services = {p.service for p in runbook.parameters.values() if isinstance(p, BackupParameter)}
    return {service: await ctx.store.backups(service, limit=50) for service in services}


def needs_values(runbook: Runbook) -> bool:
    """Whether a runbook asked for without values must first ask for some (a parameter with no default)."""
    return any(getattr(p, "default", None) is None for p in runbook.parameters.values())
