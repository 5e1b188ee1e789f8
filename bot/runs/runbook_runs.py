"""Runs built from other runs or the catalog's runbooks: planning a runbook, Cancel, and the follow-ups of a run
that stopped for people (Resume, Roll back, "checked by hand, mark done") — of runbooks and built-in actions alike.

Every run carries its approved plan (`ActionRun.plan`, stored as its step rows), so requesting, approving, expiry,
leases, heartbeats and recovery are the run flow's (`bot.runs.service`); this module only builds the runs. Not
responsible for running steps (`bot.runs.engine`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta

from bot.audit import current_request
from bot.errors import OpsbotError
from bot.runbooks import approvals
from bot.runbooks.definitions import BackupParameter, Runbook
from bot.runbooks.params import coerce, scheduled_given
from bot.runs import builtin, steps
from bot.runs.deps import RunDeps
from bot.runs.effects import awaits_people, needs_undo, unknown_step
from bot.runs.models import (
    SCHEDULER,
    ActionKind,
    ActionRun,
    ActionState,
    ActionStep,
    BackupRecord,
    PlannedStep,
    StepState,
)
from bot.runs.policy import NotAllowed, ResolvedPolicy, mention, resolve_policy
from bot.runs.service import (
    DRAFT_MINUTES,
    NotPending,
    audit_run,
    get_run,
    refresh_message,
    refuse_if_busy,
    run_as_scheduled,
)

log = logging.getLogger(__name__)


class PolicyConflict(OpsbotError):
    pass


def policies_of(ctx: RunDeps, name: str, runbook: Runbook) -> list[ResolvedPolicy]:
    """The runbook's own `approvals:`, else each of its services' runbook policies."""
    return [policy for _, policy in approvals.policies(ctx.catalog, name, runbook)]


def policy_of(ctx: RunDeps, name: str, runbook: Runbook) -> ResolvedPolicy:
    """One policy for the run: the most approvals any service asks, from the approvers the configured policies
    name (they must agree: `validation` refuses a catalog where they do not), else any service's owners."""
    found = approvals.policies(ctx.catalog, name, runbook)
    configured = approvals.configured_approvers(found)
    if len(configured) > 1:
        raise PolicyConflict(f"`{name}` touches services whose approvers differ; give it its own "
                             f"`approvals:` in runbooks.{name}.")
    approvers = next(iter(configured), None)
    if approvers is None:
        approvers = tuple(dict.fromkeys(a for _, p in found for a in p.approvers))
    needed = max(p.approvals for _, p in found)
    return ResolvedPolicy(needed, approvers, (), ", ".join(sorted({p.source for _, p in found})))


async def plan(ctx: RunDeps, name: str, given: dict[str, str], *, requested_by: str, channel_id: str | None,
               reason: str = "") -> ActionRun:
    """Check the parameters and policy, resolve every step (reading only), and store the plan as a draft."""
    runbook = ctx.catalog.runbook(name)
    policy = policy_of(ctx, name, runbook)
    await _may_request(ctx, name, policies_of(ctx, name, runbook), requested_by)
    params, plan = await _plan_steps(ctx, name, runbook, given)
    return await _draft(ctx, _runbook_shape(ctx, params), params, plan, builtin.rows_of(plan), policy.approvals,
                        policy.approvers, requested_by, channel_id, reason)


async def _plan_steps(ctx: RunDeps, name: str, runbook: Runbook,
                      given: dict[str, str]) -> tuple[dict[str, object], tuple[PlannedStep, ...]]:
    values = await coerce(name, runbook, given, ctx.store)  # bad values are refused before any plan or approval
    await refuse_if_busy(ctx, runbook.services)
    planned = tuple([await steps.plan(ctx, spec, values) for spec in runbook.steps])
    params: dict[str, object] = {"runbook": name, "values": values, "services": sorted(set(runbook.services)),
                                 "mode": "run"}
    return params, planned


async def run_scheduled(ctx: RunDeps, name: str, occurrence: str) -> ActionRun:
    """A runbook the catalog schedules: planned as `/ops run` plans it, with its `schedule_values`; nobody asks
    and nobody approves (the catalog is the approval, as for a scheduled backup). Its message, which follows the
    steps, goes to the ops channel; it runs through the normal execute path and is returned finished. Raises
    ActionAlreadyRunning when a run holds one of its services, and ParametersInvalid when a value no longer fits
    (a backup id deleted since the catalog was loaded)."""
    runbook = ctx.catalog.runbook(name)
    channel = ctx.catalog.schedules.channel  # validation refuses a scheduled runbook without one
    params, plan = await _plan_steps(ctx, name, runbook, scheduled_given(runbook))
    params["schedule"] = occurrence
    # No approvals needed, but the policy's approvers are kept: they (and only they) may cancel it as it runs.
    approvers = policy_of(ctx, name, runbook).approvers
    draft = await _draft(ctx, _runbook_shape(ctx, params), params, plan, builtin.rows_of(plan), 0, approvers,
                         SCHEDULER, channel,
                         f"scheduled ({occurrence})")
    return await run_as_scheduled(ctx, draft)


async def follow_up(ctx: RunDeps, run_id: int, user: str, mode: str) -> ActionRun:
    """Resume or Roll back of a run that stopped for people — interrupted, or stopped by a step whose effect is
    unknown — or `done`: that step was checked by hand, counts as done, and the run goes on after it. A new plan
    for `user` needing the same approvals. Each run is followed up once (a follow-up that never ran frees it)."""
    old = await get_run(ctx, run_id)
    what = {"resume": "resume", "rollback": "roll back", "done": "mark done"}[mode]
    if not awaits_people(old):
        raise NotPending(f"Run #{run_id} is {old.state.value}, not interrupted or stopped on a step of unknown effect: "
                         f"there is nothing to {what}.")
    checked = unknown_step(old)
    if mode == "done" and checked is None:
        raise NotPending(f"Run #{run_id} did not stop on a step whose effect is unknown: there is no step to mark done. "
                         "Resume or Roll back it.")
    count = len(old.plan)
    # A failed run skipped the steps after the one it stopped on; an interrupted one skips steps only when undoing.
    undone = (StepState.UNDONE,) if old.state is ActionState.FAILED else (StepState.UNDONE, StepState.SKIPPED)
    undoing = len(old.steps) > count or any(r.state in undone for r in old.steps)
    if mode != "rollback" and (undoing or old.params.get("mode") == "rollback"):
        raise NotPending(f"Run #{run_id} was already undoing what it changed when it stopped: Roll back finishes that; "
                         "resuming would run on from a half-undone state.")
    needed, approvers = old.approvals_needed, old.approvers
    if old.kind is ActionKind.RUNBOOK:
        name = str(old.params["runbook"])
        runbook = ctx.catalog.runbooks.get(name)
        if runbook is not None:
            await _may_request(ctx, name, policies_of(ctx, name, runbook), user)
            if old.requested_by == SCHEDULER:
                # The catalog approved the schedule, not a person's follow-up: that needs the runbook's approvals.
                policy = policy_of(ctx, name, runbook)
                needed, approvers = policy.approvals, policy.approvers
    else:
        entry = ctx.catalog.service(old.service)
        policy = resolve_policy(old.service, entry.environment, entry.owners, entry.approvals, ctx.catalog.approvals,
                                old.kind)
        if policy.requesters and not await ctx.membership.contains(policy.requesters, user):
            raise NotAllowed(f"You may not {what} {old.label}. Who may: {mention(policy.requesters)} ({policy.source}).")
        if old.requested_by == SCHEDULER:  # as for a scheduled runbook: a person's follow-up needs the policy's
            needed, approvers = policy.approvals, policy.approvers
    await refuse_if_busy(ctx, old.services)
    rows = []
    for index, row in enumerate(old.steps[:count]):
        if mode == "rollback":
            # Every row keeps its state and what its undo needs: the undo pass decides from them.
            rows.append(replace(row, detail="interrupted here") if row.state is StepState.RUNNING else row)
        elif mode == "done" and index == checked:
            # A person looked and says it is done: it is not run again (and its undo stays, for a later Roll back).
            rows.append(replace(row, state=StepState.SUCCEEDED, effect=None,
                                detail=f"checked by hand by <@{user}> and marked done"))
        elif row.state is StepState.SUCCEEDED:
            rows.append(row)  # done: not run again
        else:
            rows.append(ActionStep(row.position, row.title, undo=row.undo))  # the step it was on runs again
    params = dict(old.params, mode=mode, of=run_id, **({"checked": checked} if mode == "done" else {}))
    if mode == "rollback":
        params.update(_rollback_preview(old.plan, rows))
    stopped = "interrupted" if old.state is ActionState.INTERRUPTED else "stopped"
    step = f"step {(checked or 0) + 1} checked by hand, go on with" if mode == "done" else what
    draft = await _draft(ctx, _Shape(old.kind, old.service, old.environment, old.target), params, old.plan, tuple(rows),
                         needed, approvers, user, old.channel_id, f"{step} {stopped} run #{run_id}")
    if not await ctx.store.claim_follow_up(run_id, draft.id or 0):
        await ctx.store.transition_action(draft.id or 0, ActionState.CANCELLED, expect={ActionState.DRAFT},
                                          outcome="Not needed: another follow-up has this run.")
        taken = await get_run(ctx, (await get_run(ctx, run_id)).followed_by or 0)
        raise NotPending(f"Run #{run_id} was already followed up by run #{taken.id} ({taken.state.value}).")
    await refresh_message(ctx, run_id)
    return draft


def _rollback_preview(plan: tuple[PlannedStep, ...], rows: list[ActionStep]) -> dict[str, object]:
    """What a Roll back will undo, newest first, and the changes that stay (no undo), as the engine's undo pass
    will decide from these rows: for its plan message."""
    undos: list[str] = []
    stays: list[tuple[int, str]] = []
    for index in range(min(len(plan), len(rows)) - 1, -1, -1):
        step, row = plan[index], rows[index]
        if not needs_undo(row, chosen_by_people=True):
            continue
        if steps.can_undo(step, row.undo):
            undos.append(steps.undo_title(step, row.undo or {}))
        elif step.undo is None and row.state is StepState.SUCCEEDED:
            stays.append((index, step.title))
    return {"undos": undos, "stays": stays}


async def cancel_run(ctx: RunDeps, run_id: int, user: str) -> str:
    """Cancel pressed on a running run: it stops before its next step and undoes what ran."""
    run = await get_run(ctx, run_id)
    if user != run.requested_by and run.approvers and not await ctx.membership.contains(run.approvers, user):
        raise NotAllowed(f"Only the requester or an approver can cancel this run ({mention(run.approvers)}).")
    if not await ctx.store.request_cancel(run_id, user):
        run = await get_run(ctx, run_id)
        if run.cancel_requested_by:
            return f"<@{run.cancel_requested_by}> already cancelled it; it stops before its next step."
        return f"Too late to cancel: the run is {run.state.value}."
    await audit_run(ctx, run, "cancel asked", user)
    await refresh_message(ctx, run_id)
    return "Cancelling: it stops before its next step and undoes what it changed."


async def _may_request(ctx: RunDeps, name: str, policies: list[ResolvedPolicy], user: str) -> None:
    """Every service's requesters must allow it: a runbook is no back door to a service one may not touch."""
    for policy in policies:
        if policy.requesters and not await ctx.membership.contains(policy.requesters, user):
            raise NotAllowed(f"You may not run `{name}`. Who may: {mention(policy.requesters)} ({policy.source}).")


@dataclass(frozen=True)
class _Shape:
    """What a new run is and touches: a follow-up's are its predecessor's."""

    kind: ActionKind
    service: str  # the first it touches
    environment: str
    target: str


def _runbook_shape(ctx: RunDeps, params: dict[str, object]) -> _Shape:
    services = params["services"]
    assert isinstance(services, list)  # _plan_steps put the runbook's services here
    environments = sorted({ctx.catalog.services[s].environment for s in services if s in ctx.catalog.services})
    return _Shape(ActionKind.RUNBOOK, services[0], ", ".join(environments) or "unknown", ", ".join(services))


async def _draft(ctx: RunDeps, shape: _Shape, params: dict[str, object], plan: tuple[PlannedStep, ...],
                 rows: tuple[ActionStep, ...], approvals: int, approvers: tuple[str, ...], user: str, channel_id: str | None,
                 reason: str) -> ActionRun:
    now = ctx.clock.now()
    run = ActionRun(
        service=shape.service, kind=shape.kind, environment=shape.environment, target=shape.target,
        requested_by=user, created_at=now, expires_at=now + timedelta(minutes=DRAFT_MINUTES), params=dict(params),
        approvals_needed=approvals, approvers=approvers, reason=reason[:500], channel_id=channel_id, steps=rows,
        plan=plan, audit_id=current_request(),
    )
    run = replace(run, id=await ctx.store.create_action(run))
    await audit_run(ctx, run, "planned", user)
    return run


async def backup_choices(ctx: RunDeps, runbook: Runbook) -> dict[str, list[BackupRecord]]:
    """The backups a runbook's backup parameters may pick from, per service, newest first (for the modal)."""
    services = {p.service for p in runbook.parameters.values() if isinstance(p, BackupParameter)}
    return {service: await ctx.store.backups(service, limit=50) for service in services}

