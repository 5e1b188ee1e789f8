"""Planning a catalog runbook: its policy (one for the run, from its own `approvals:` or its services'), its checked
parameters and resolved steps, stored as a draft; a runbook the catalog schedules; the backups its modal offers.

A runbook run is then requested, approved and run like any other (`bot.runs.requests`, `bot.runs.execution`). Not
responsible for the follow-ups of a stopped run (`bot.runs.follow_ups`) nor for running steps (`bot.runs.engine`).
"""

from __future__ import annotations

from bot.errors import OpsbotError
from bot.runbooks import approvals
from bot.runbooks.definitions import BackupParameter, Runbook
from bot.runbooks.params import coerce, scheduled_given
from bot.runs import builtin, steps
from bot.runs.deps import RunDeps
from bot.runs.execution import refuse_if_busy
from bot.runs.models import SCHEDULER, ActionKind, ActionRun, BackupRecord, PlannedStep
from bot.runs.policy import NotAllowed, ResolvedPolicy, mention
from bot.runs.requests import Shape, run_as_scheduled, store_draft


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
    await may_request(ctx, name, policies_of(ctx, name, runbook), requested_by)
    params, plan = await _plan_steps(ctx, name, runbook, given)
    return await store_draft(ctx, runbook_shape(ctx, params), params, plan, builtin.rows_of(plan), policy.approvals,
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
    draft = await store_draft(ctx, runbook_shape(ctx, params), params, plan, builtin.rows_of(plan), 0, approvers,
                              SCHEDULER, channel, f"scheduled ({occurrence})")
    return await run_as_scheduled(ctx, draft)


async def may_request(ctx: RunDeps, name: str, policies: list[ResolvedPolicy], user: str) -> None:
    """Every service's requesters must allow it: a runbook is no back door to a service one may not touch."""
    for policy in policies:
        if policy.requesters and not await ctx.membership.contains(policy.requesters, user):
            raise NotAllowed(f"You may not run `{name}`. Who may: {mention(policy.requesters)} ({policy.source}).")


def runbook_shape(ctx: RunDeps, params: dict[str, object]) -> Shape:
    """A runbook run's kind, first service, environments and services, from its planned `params`."""
    services = params["services"]
    assert isinstance(services, list)  # _plan_steps put the runbook's services here
    environments = sorted({ctx.catalog.services[s].environment for s in services if s in ctx.catalog.services})
    return Shape(ActionKind.RUNBOOK, services[0], ", ".join(environments) or "unknown", ", ".join(services))


async def backup_choices(ctx: RunDeps, runbook: Runbook) -> dict[str, list[BackupRecord]]:
    """The backups a runbook's backup parameters may pick from, per service, newest first (for the modal)."""
    services = {p.service for p in runbook.parameters.values() if isinstance(p, BackupParameter)}
    return {service: await ctx.store.backups(service, limit=50) for service in services}
