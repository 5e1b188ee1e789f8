"""The follow-ups of a run that stopped for people — Resume, Roll back, "checked by hand, mark done" — of runbooks
and built-in actions alike, and Cancel pressed on a running run.

A follow-up is a new draft carrying its predecessor's plan and rows; requesting, approving and running it are the
run flows' (`bot.runs.requests`, `bot.runs.execution`). Not responsible for running steps (`bot.runs.engine`) nor for
deciding from a step's effect (`bot.runs.effects`).
"""

from __future__ import annotations

from dataclasses import replace

from bot.runs import steps
from bot.runs.deps import RunDeps
from bot.runs.effects import awaits_people, needs_undo, unknown_step
from bot.runs.execution import audit_run, ending, get_run, refresh_message, refuse_if_busy
from bot.runs.models import SCHEDULER, ActionKind, ActionRun, ActionState, ActionStep, PlannedStep, StepState
from bot.runs.outcomes import Ending, RunOutcome
from bot.runs.policy import NotAllowed, mention, resolve_policy
from bot.runs.requests import NotPending, Shape, store_draft
from bot.runs.runbook_plans import may_request, policies_of, policy_of


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
            await may_request(ctx, name, policies_of(ctx, name, runbook), user)
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
    draft = await store_draft(ctx, Shape(old.kind, old.service, old.environment, old.target), params, old.plan,
                              tuple(rows), needed, approvers, user, old.channel_id, f"{step} {stopped} run #{run_id}")
    if not await ctx.store.claim_follow_up(run_id, draft.id or 0):
        await ctx.store.transition_action(draft.id or 0, ActionState.CANCELLED, expect={ActionState.DRAFT},
                                          **ending(draft, RunOutcome(Ending.SUPERSEDED, draft.services)))
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
    ctx.wakeups.wake(run_id)  # a step waiting for a person here stops waiting at once
    await audit_run(ctx, run, "cancel asked", user)
    await refresh_message(ctx, run_id)
    return "Cancelling: it stops before its next step and undoes what it changed."
