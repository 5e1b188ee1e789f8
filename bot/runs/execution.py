"""Running an approved run: under its services' leases with a heartbeat, handed over and taken over at a step
boundary, recovered when its replica fell silent; each ending stored as a typed outcome, shown, announced, audited.

The engine (`bot.runs.engine`) runs the steps; this module guards it and records how it ended. Not responsible for
planning, requesting or approving (`bot.runs.requests`) nor for any words (`bot.views.run_words`, `bot.views.runs`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import replace
from datetime import timedelta
from typing import Any

from bot.audit import AuditEntry, Outcome
from bot.errors import InfrastructureError, OpsbotError, store_down
from bot.incidents import timeline
from bot.incidents.models import EntryKind
from bot.log_context import annotate, bound
from bot.runs import engine
from bot.runs.deps import RunDeps
from bot.runs.models import ActionKind, ActionRun, ActionState, ActionStep, ApprovalDecision
from bot.runs.outcomes import Ending, Holder, RunOutcome, StepRef
from bot.views.backups import backup_result_message
from bot.views.run_words import outcome_text, run_note
from bot.views.runs import describe, run_message

log = logging.getLogger(__name__)


class ActionNotFound(OpsbotError):
    def __init__(self, run_id: int) -> None:
        super().__init__(f"There is no action #{run_id}.")


class ActionAlreadyRunning(OpsbotError):
    pass


def ending(run: ActionRun, outcome: RunOutcome) -> dict[str, Any]:
    """The fields a transition that ends `run` writes: the outcome as data, and its words in the `outcome` and
    `target_state` columns (for digests, history and readers of older rows)."""
    text, target_state = outcome_text(run, outcome)
    return {"outcome": text[:1000], "target_state": target_state[:500], "outcome_data": outcome}


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
                await _refuse(ctx, run, RunOutcome(Ending.UNREACHABLE, run.services, why=str(exc)))
                return
            if lease is None and run.state is ActionState.HANDED_OVER:
                return  # another replica is taking it over; or, if not, the next take-over pass tries again
            if lease is None:
                running = await holding(ctx, service, [ActionState.RUNNING], besides=run_id)
                await _refuse(ctx, run, RunOutcome(Ending.BUSY, run.services, held=service,
                                                   holder=None if running is None else _holder_of(running)))
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


def _holder_of(run: ActionRun) -> Holder:
    return Holder(run.id or 0, run.label, run.requested_by)


# How a refusal before starting is audited: a busy service is a "no"; a lease that could not be taken is opsbot's fault.
_REFUSAL_AUDIT = {Ending.BUSY: Outcome.REJECTED, Ending.UNREACHABLE: Outcome.ERROR}


async def _refuse(ctx: RunDeps, run: ActionRun, refused: RunOutcome) -> None:
    fields = ending(run, refused)
    if await ctx.store.transition_action(run.id or 0, refused.final, expect={ActionState.APPROVED},
                                         finished_at=ctx.clock.now(), **fields):
        await audit_run(ctx, run, "refused", None, fields["outcome"], outcome=_REFUSAL_AUDIT[refused.ending])
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
        await _ended(ctx, run, RunOutcome(Ending.INTERRUPTED, run.services, lease_lost=_LEASE_LOST in exc.args))
        raise
    except OpsbotError as exc:
        await _ended(ctx, run, RunOutcome(Ending.HALTED, run.services, why=str(exc)))
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
    state = ended.final
    fields = ending(run, ended)
    # Fenced by owner: a replica that lost its lease (and had its run interrupted) cannot overwrite the end.
    won = await ctx.store.transition_action(run.id or 0, state, expect={ActionState.RUNNING}, owner=ctx.owner,
                                            finished_at=ctx.clock.now(), **fields)
    if won:
        ctx.metrics.run_done(run.kind.value, state.value, run.started_at, ctx.clock.now())
        ctx.tracer.annotate({"opsbot.run.outcome": state.value})  # on the run's span: `_ended` runs inside it
        await audit_run(ctx, run, state.value, None, fields["outcome"],
                        outcome=Outcome.OK if state is ActionState.SUCCEEDED else Outcome.ERROR)
    await refresh_message(ctx, run.id or 0)
    if won and state in (ActionState.SUCCEEDED, ActionState.FAILED):
        await announce_backup(ctx, run)


async def hand_over(ctx: RunDeps, run: ActionRun, step: int | None) -> bool:
    """This replica is stopping: leave the run at a step boundary (`step`, the next one to start; None when none
    started) for the next replica, which goes on from there (`take_over`). Only a boundary where the last step's end
    is stored is handed over; a step cut mid-way is the engine's `interrupted` case, left to people."""
    at = None if step is None else StepRef(step, run.steps[step].title if step < len(run.steps) else "")
    fields = ending(run, RunOutcome(Ending.HANDED_OVER, run.services, step=at))
    expect = {ActionState.APPROVED} if step is None else {ActionState.RUNNING}
    owner = None if step is None else ctx.owner
    won = await ctx.store.transition_action(run.id or 0, ActionState.HANDED_OVER, expect=expect, owner=owner,
                                            lease_owner=None, **fields)
    if won:
        log.info("handed %s #%s over (next step index: %s)", run.label, run.id, step)
        await audit_run(ctx, run, "handed over", None, fields["outcome"])
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


# --- recovery, messages, audit -------------------------------------------------------------------------------------


async def recover(ctx: RunDeps) -> int:
    """Runs approved or running whose replica has been silent for a lease time (LEASE_SECONDS: its lease on the
    service has lapsed too) were cut short (a crash, a kill): they become `interrupted` and their messages say
    so; a person decides what next. Runs at start-up (what a replica finds stale there it recovers at once) and
    every CHORE_SECONDS, so a run left behind by a quick restart or a dead peer is caught too."""
    count = 0
    for run in await ctx.store.stale_actions(ctx.clock.now() - timedelta(seconds=ctx.settings.lease_seconds)):
        try:
            recovered = RunOutcome(Ending.RECOVERED, run.services, started=run.state is ActionState.RUNNING)
            fields = ending(run, recovered)
            if await ctx.store.transition_action(run.id or 0, recovered.final, expect={run.state},
                                                 finished_at=ctx.clock.now(), **fields):
                count += 1
                ctx.metrics.run_done(run.kind.value, recovered.final.value, run.started_at, ctx.clock.now())
                await audit_run(ctx, run, "interrupted", None, fields["outcome"], outcome=Outcome.ERROR)
                await refresh_message(ctx, run.id or 0)
        except Exception:
            log.exception("could not mark action run %s interrupted; will try again", run.id)
    return count


async def refresh_message(ctx: RunDeps, run_id: int) -> None:
    """Re-render the run's message from the store, and tell the run's listeners when it has ended. Best effort: the
    row is the truth, and a Slack hiccup must not stop a run or a decision; the next change re-renders it whole."""
    run: ActionRun | None = None
    try:
        run = await get_run(ctx, run_id)
        await _update(ctx, run, await ctx.store.decisions(run_id))
    except Exception:
        log.exception("could not update the Slack message of action run %s", run_id)
    if run is not None and run.state.final:  # every ending is stored, then shown here: its listeners hear of it
        await ctx.run_listeners.ended(run)  # (more than once, maybe: each listener takes a repeat as done)


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
