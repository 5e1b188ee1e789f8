"""Alerts' flows: record a delivery (idempotently) and keep its group's one message up to date; and what the
message's buttons do (acknowledge, health check, run the mapped runbook, declare an incident; silences are
bot/alerts/silencing.py).

Every change is stored first; the message follows it (bot/alerts/messages.py: one writer per group at a time,
updates coalesced, the latest state wins). A linked incident hears of each change once (bot/alerts/incidents.py).
Not responsible for HTTP (bot/alerts/intake.py) nor for Slack payloads (handlers/alerts.py).
"""

from __future__ import annotations

import logging

from bot.alerts import incidents
from bot.alerts.messages import group_of, refresh
from bot.alerts.models import AlertGroup, NewGroup, Recorded
from bot.alerts.payloads import Delivery
from bot.alerts.routing import AlertSettings, render_parameters, route
from bot.context import Context
from bot.errors import OpsbotError, StaleButton
from bot.health import run_and_record
from bot.incidents.models import DeclareDraft
from bot.incidents.offers import TITLE_LIMIT, suggest_severity
from bot.runbooks.params import ParametersInvalid, coerce
from bot.runs import runbook_plans as runbook_runs
from bot.runs.models import ActionRun
from bot.views import Message
from bot.views.alerts import firing_list

log = logging.getLogger(__name__)


class AlertsNotConfigured(OpsbotError):
    def __init__(self) -> None:
        super().__init__("alerts are not configured: the catalog has no `alerts:` section")


def settings_of(ctx: Context) -> AlertSettings:
    if ctx.catalog.alerts is None:
        raise AlertsNotConfigured()
    return ctx.catalog.alerts


async def receive(ctx: Context, delivery: Delivery) -> Recorded | None:
    """Record the delivery and post or update its group's message. None when it carries no alerts."""
    settings = settings_of(ctx)
    if not delivery.alerts:
        return None
    first = delivery.alerts[0]
    labels = {**first.labels, **delivery.common_labels, **delivery.group_labels}
    channels = {name: s.channel for name, s in ctx.catalog.services.items() if s.channel}
    routed = route(settings, labels, channels)
    values: dict[str, str] = {}
    problem = None
    if routed.index is not None and routed.runbook is not None:
        rendered = render_parameters(settings.routes[routed.index].parameters, first.labels, first.annotations)
        values, problem = rendered.values, rendered.problem
        if problem is None:
            problem = await _parameter_problem(ctx, routed.runbook, values)
    new = NewGroup(delivery.source, delivery.key_hash, delivery.group_key, delivery.group_labels, routed.channel,
                   routed.index, routed.service, routed.runbook, values, problem, delivery.external_url,
                   min(alert.starts_at for alert in delivery.alerts))
    recorded = await ctx.store.record_delivery(new, delivery.alerts, ctx.clock.now(),
                                               reopen_within=settings.reopen_within)
    # A duplicate changes nothing; it writes only when the group's message is missing or behind (a write failed).
    group = recorded.group
    if recorded.changes or group.message_ts is None or group.shown_version < group.version:
        await refresh(ctx, group.id)
    await incidents.delivered(ctx, recorded)
    if recorded.created and routed.health and routed.service is not None:
        ctx.tasks.spawn(_health_on_arrival(ctx, recorded.group.id, routed.service), name=f"alert health {routed.service}")
    return recorded


async def _parameter_problem(ctx: Context, name: str, values: dict[str, str]) -> str | None:
    runbook = ctx.catalog.runbooks.get(name)
    if runbook is None:
        return f"the catalog has no runbook `{name}` any more"
    try:
        await coerce(name, runbook, values, ctx.store)
    except ParametersInvalid as exc:
        return "; ".join(f"{p.parameter}: {p.message}" for p in exc.problems)
    return None


async def _health_on_arrival(ctx: Context, group_id: int, service: str) -> None:
    if service not in ctx.catalog.services:
        return
    run = await run_and_record(ctx.store, ctx.catalog, (service,), ctx.check_deps, ctx.clock,
                               requested_by=None, channel_id=None)
    assert run.id is not None  # stored
    await ctx.store.link_group(group_id, health_run_id=run.id)
    await refresh(ctx, group_id)


# --- the buttons ---------------------------------------------------------------------------------------------------


async def acknowledge(ctx: Context, group_id: int, user: str) -> bool:
    """True when this click acknowledged it; False when someone already had (the message already says who)."""
    await group_of(ctx, group_id)
    done = await ctx.store.acknowledge_group(group_id, user, ctx.clock.now())
    if done:
        await refresh(ctx, group_id)
        await incidents.acknowledged(ctx, await group_of(ctx, group_id), user)
    return done


async def service_of(ctx: Context, group_id: int) -> tuple[AlertGroup, str]:
    """The group and its service, for the Health check button."""
    group = await group_of(ctx, group_id)
    if group.service is None or group.service not in ctx.catalog.services:
        raise StaleButton("this alert names no service of the catalog")
    return group, group.service


async def plan_run(ctx: Context, group_id: int, user: str) -> ActionRun:
    """The mapped runbook's plan with the values from the alert; the run is linked to the group."""
    group = await group_of(ctx, group_id)
    if group.runbook is None:
        raise StaleButton("this alert offers no runbook")
    if group.run_problem:
        raise OpsbotError(f"`{group.runbook}` cannot run from this alert: {group.run_problem}")
    run = await runbook_runs.plan(ctx, group.runbook, dict(group.run_values), requested_by=user,
                                  channel_id=group.channel_id, reason=f"alert group {group_id}")
    await ctx.store.link_group(group_id, run_id=run.id)
    await refresh(ctx, group_id)
    return run


async def firing(ctx: Context) -> Message:
    """`/ops alerts`: the groups firing now, with links to their messages (the first 40 looked up)."""
    groups = await ctx.store.firing_groups()
    links: dict[int, str] = {}
    for group in groups[:40]:
        link = await ctx.chat.permalink(group.channel_id, group.message_ts) if group.message_ts else None
        if link:
            links[group.id] = link
    return firing_list(groups, links)


async def declare_draft(ctx: Context, group_id: int) -> DeclareDraft:
    """The declare form prefilled from the group: title from the alert, its service, a severity suggested from the
    service's environment."""
    group = await group_of(ctx, group_id)
    alerts = [stored.alert for stored in await ctx.store.group_alerts(group_id)]
    first = alerts[0] if alerts else None
    title = first.summary if first else group.group_key
    services = (group.service,) if group.service in ctx.catalog.services else ()
    environments = [ctx.catalog.services[s].environment for s in services] or [
        (first.labels.get("env") or first.labels.get("environment") or "") if first else ""]
    description = "\n".join(f"{a.status.value}: {a.summary}" for a in alerts[:20])
    return DeclareDraft(title=" ".join(title.split())[:TITLE_LIMIT], services=services, description=description[:3000],
                        severity=suggest_severity(ctx.catalog.incidents, environments), alert_group=group_id)
