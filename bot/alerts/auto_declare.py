"""The auto-declare chore: a group whose route has a `declare:` rule, fired for `after_minutes` with the rule's
labels, becomes an incident of the rule's severity, declared once across replicas (a compare-and-set claim on the
group) and linked to the group like a declaration from its button.

Not responsible for the rule's shape (routing.py) nor for declaring itself (bot/incidents/declaring.py).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.alerts.payloads import AlertStatus
from bot.alerts.service import declare_draft
from bot.context import Context
from bot.incidents import declaring

log = logging.getLogger(__name__)

AUTO_DECLARER = "opsbot"  # who declared it, when the service names no person among its owners


async def declare_due(ctx: Context) -> int:
    """Declare the groups whose rule is due; returns how many this replica declared."""
    settings = ctx.catalog.alerts
    if settings is None:
        return 0
    now, done = ctx.clock.now(), 0
    for group in await ctx.store.firing_groups():
        if group.route_index is None or group.route_index >= len(settings.routes):
            continue  # unrouted, or the catalog lost the route since
        rule = settings.routes[group.route_index].declare
        if rule is None or group.incident_id or group.declaring_incident_id or group.auto_declared_at:
            continue
        # Fired that long: its alerts firing now, with the rule's labels, started at least `after_minutes` ago (a
        # group that resolved and fired again counts from the new firing, not from its first one).
        firing = [stored.alert for stored in await ctx.store.group_alerts(group.id)
                  if stored.alert.status is AlertStatus.FIRING
                  and rule.applies({**stored.alert.labels, **group.group_labels})]
        if not firing or now - min(a.starts_at for a in firing) < timedelta(minutes=rule.after_minutes):
            continue
        if not await ctx.store.claim_auto_declare(group.id, now):
            continue  # another replica claimed it, or someone declared it meanwhile
        draft = await declare_draft(ctx, group.id)
        owners = ctx.catalog.services[group.service].owners if group.service in ctx.catalog.services else []
        declarer = next((o for o in owners if o.startswith(("U", "W"))), AUTO_DECLARER)
        minutes = f"{rule.after_minutes:g}"
        incident, problems = await declaring.declare(
            ctx, title=draft.title, severity=rule.severity, declared_by=declarer, services=draft.services,
            description=f"Declared automatically: the alert fired for {minutes} min.\n{draft.description}",
            alert_group=group.id)
        log.info("declared %s automatically from alert group %s%s", incident.key, group.id,
                 f"; {'; '.join(problems)}" if problems else "")
        done += 1
    return done
