"""Health report flows: run the checks, record the run, deliver the rendered report to Slack.

What a listener calls after it has acked; rendering is `bot.views.health`, checking is `bot.health`.
"""

from __future__ import annotations

import logging

from bot.context import Context
from bot.errors import HealthRunNotFound
from bot.health import HealthRun, resolve_scope, run_and_record
from bot.incidents import timeline
from bot.incidents.models import EntryKind
from bot.views.health import health_report

log = logging.getLogger(__name__)


async def report_health(
    ctx: Context, scope: tuple[str, ...], *, requested_by: str, channel_id: str | None, response_url: str
) -> HealthRun:
    """Check, store, then post the report in the channel (visible to all) through the command's response_url, in
    place of the command's "⏳ Running …" placeholder."""
    run = await run_and_record(
        ctx.store, ctx.catalog, scope, ctx.check_deps, ctx.clock, requested_by=requested_by, channel_id=channel_id
    )
    try:
        await ctx.chat.delete_original(response_url)
    except Exception:
        log.warning("could not take the placeholder of health run %s away", run.id, exc_info=True)  # the report matters more
    await ctx.chat.respond(response_url, health_report(run, restartable=restartable(ctx), offers=ctx.catalog.offers()),
                           in_channel=True)
    await timeline.from_channel(ctx, channel_id, EntryKind.HEALTH, _summary(run), requested_by)
    return run


async def report_health_in_channel(ctx: Context, services: tuple[str, ...], *, requested_by: str, channel_id: str) -> HealthRun:
    """The incident header's Health check: the affected services (all when none are named), posted in the
    incident channel, and noted on its timeline."""
    scope = resolve_scope(ctx.catalog, [s for s in services if s in ctx.catalog.services])
    run = await run_and_record(ctx.store, ctx.catalog, scope, ctx.check_deps, ctx.clock, requested_by=requested_by,
                               channel_id=channel_id)
    await ctx.chat.post(channel_id, health_report(run, restartable=restartable(ctx), offers=ctx.catalog.offers()))
    await timeline.from_channel(ctx, channel_id, EntryKind.HEALTH, _summary(run), requested_by)
    return run


def _summary(run: HealthRun) -> str:
    failing = sorted({r.service for r in run.results if r.status.failing})
    checked = len(run.services)
    return f"Health check: {checked - len(failing)} of {checked} healthy" + (f"; failing: {', '.join(failing)}" if failing
                                                                             else "")


async def rerun_health(
    ctx: Context, run_id: int, *, requested_by: str, channel_id: str | None, response_url: str
) -> HealthRun:
    """The Re-run button: the same scope again, updating the same message in place."""
    previous = await ctx.store.get_health_run(run_id)
    if previous is None:
        raise HealthRunNotFound(run_id)
    # The catalog may have changed since: a removed service is refused with the current list.
    scope = resolve_scope(ctx.catalog, list(previous.scope))
    await ctx.chat.respond(response_url, health_report(previous, rerunning_by=requested_by), replace_original=True)
    try:
        run = await run_and_record(
            ctx.store, ctx.catalog, scope, ctx.check_deps, ctx.clock, requested_by=requested_by, channel_id=channel_id
        )
        await ctx.chat.respond(response_url, health_report(run, restartable=restartable(ctx), offers=ctx.catalog.offers()),
                               replace_original=True)
    except BaseException:
        # Put the old report and its button back: a shared message must not stay on "re-running" for ever.
        try:
            await ctx.chat.respond(response_url,
                                   health_report(previous, restartable=restartable(ctx), offers=ctx.catalog.offers()),
                                   replace_original=True)
        except Exception:
            log.exception("could not put back health report %s after a failed re-run", run_id)
        raise
    return run


def restartable(ctx: Context) -> set[str]:
    """Services a health report may offer a Restart button for: those with a restart target."""
    return {name for name, service in ctx.catalog.services.items() if service.target is not None}


def describe_scope(ctx: Context, scope: tuple[str, ...]) -> str:
    services = scope or tuple(ctx.catalog.service_names)
    checks = sum(len(ctx.catalog.services[name].checks) for name in services)
    noun = "service" if len(services) == 1 else "services"
    return f"{checks} check{'s' if checks != 1 else ''} on {len(services)} {noun}"
