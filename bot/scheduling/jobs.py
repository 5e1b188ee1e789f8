"""The jobs the catalog schedules: each digest to its channels, each service's backup, each scheduled runbook.
And what they do.

The scheduler (bot/scheduling/scheduler.py) decides when and on which replica; this module decides what.
"""

from __future__ import annotations

from functools import partial

from bot import digests
from bot.catalog import Catalog
from bot.context import Context
from bot.errors import OpsbotError
from bot.runbooks.params import ParametersInvalid
from bot.runs import execution, requests, runbook_plans
from bot.runs.models import ActionState
from bot.scheduling.models import Occurrence
from bot.scheduling.posting import post_once
from bot.scheduling.scheduler import Job
from bot.views.digests import digest_message
from bot.views.schedule import ScheduleLine


class ScheduledRunFailed(OpsbotError):
    pass


class DigestNotPosted(OpsbotError):
    pass


def catalog_jobs(catalog: Catalog) -> list[Job]:
    """Every job the catalog asks for; a digest with no channel to go to is not a job (`/ops schedule` says so)."""
    jobs = []
    for name, digest in catalog.schedules.digests.items():
        if catalog.schedules.channels_of(name):
            jobs.append(Job(f"digest:{name}", _digest_title(name, digest.kind or name), digest,
                            partial(post_digest, name=name), resumable=True))
    for service, entry in sorted(catalog.services.items()):
        if entry.backup is not None and entry.backup.schedule is not None:
            jobs.append(Job(f"backup:{service}", f"backup of {service}", entry.backup.schedule,
                            partial(scheduled_backup, service=service), resumable=False))
    for name, runbook in sorted(catalog.runbooks.items()):
        if runbook.schedule is not None:
            jobs.append(Job(f"runbook:{name}", f"runbook {name}", runbook.schedule,
                            partial(scheduled_runbook, name=name), resumable=False))
    return jobs


def _digest_title(name: str, kind: str) -> str:
    return f"{kind} digest" if name == kind else f"{kind} digest `{name}`"


async def post_digest(ctx: Context, occurrence: Occurrence, *, name: str) -> str:
    """Build the digest now and post it to each of its channels, once each (a retry skips those already done)."""
    digest = await digests.build(ctx, name, requested_by=None, until=occurrence.due_at)
    message = digest_message(digest, ctx.catalog.incidents)
    posted, failed = [], []
    for channel in ctx.catalog.schedules.channels_of(name):
        try:  # one channel the bot was removed from must not keep the digest from the others
            await post_once(ctx, f"{occurrence.key}:{channel}", channel, message)
            posted.append(f"<#{channel}>")
        except OpsbotError as exc:
            failed.append(f"<#{channel}>: {exc}")
    if failed:
        raise DigestNotPosted(f"not posted to {'; '.join(failed)}" + (f" (posted to {', '.join(posted)})" if posted else ""))
    return f"posted to {', '.join(posted)}"


async def scheduled_backup(ctx: Context, occurrence: Occurrence, *, service: str) -> str:
    run = await requests.run_scheduled_backup(ctx, service, occurrence.key)
    if run.state is not ActionState.SUCCEEDED:
        raise ScheduledRunFailed(f"backup run #{run.id}: {run.outcome or run.state.value}"
                                 + (f" ({run.target_state})" if run.target_state else ""))
    return f"run #{run.id}: {run.outcome}"


async def scheduled_runbook(ctx: Context, occurrence: Occurrence, *, name: str) -> str:
    """Plan and run the runbook with its `schedule_values`; busy or failed, it raises so the scheduler alerts."""
    try:
        run = await runbook_plans.run_scheduled(ctx, name, occurrence.key)
    except (execution.ActionAlreadyRunning, ParametersInvalid) as exc:
        raise ScheduledRunFailed(f"not run: {exc}") from exc
    if run.state is not ActionState.SUCCEEDED:
        raise ScheduledRunFailed(f"runbook run #{run.id}: {run.outcome or run.state.value}"
                                 + (f" ({run.target_state})" if run.target_state else ""))
    return f"run #{run.id}: {run.outcome}"


async def schedule_lines(ctx: Context) -> list[ScheduleLine]:
    """What `/ops schedule` shows: every digest (running or not, and why not), every scheduled backup and runbook."""
    catalog, now = ctx.catalog, ctx.clock.now()
    jobs = {job.name: job for job in catalog_jobs(catalog)}
    last = await ctx.store.latest_finished(jobs)
    lines = []
    for name, digest in catalog.schedules.digests.items():
        channels = catalog.schedules.channels_of(name)
        where = ("→ " + ", ".join(f"<#{c}>" for c in channels)) if channels else \
            "— no channel: set `schedules.channel` or this digest's `channels` in the catalog"
        job = jobs.get(f"digest:{name}")
        lines.append(ScheduleLine(_digest_title(name, digest.kind or name).capitalize(), digest,
                                  digest.after(now) if job else None, where, last.get(f"digest:{name}")))
    for job in jobs.values():
        if job.name.startswith("backup:"):
            lines.append(ScheduleLine(job.title.capitalize(), job.schedule, job.schedule.after(now),
                                      "— failures alert " + (f"<#{catalog.schedules.channel}>" if catalog.schedules.channel
                                                             else "nobody: set `schedules.channel`"), last.get(job.name)))
    for job in jobs.values():
        if job.name.startswith("runbook:"):
            values = catalog.runbooks[job.name.removeprefix("runbook:")].schedule_values
            with_values = (" with " + ", ".join(f"{k}={v}" for k, v in values.items())) if values else ""
            lines.append(ScheduleLine(job.title.capitalize() + with_values, job.schedule, job.schedule.after(now),
                                      f"→ <#{catalog.schedules.channel}>" if catalog.schedules.channel
                                      else "— no channel: set `schedules.channel`", last.get(job.name)))
    return lines

