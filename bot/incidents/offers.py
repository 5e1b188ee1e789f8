"""Declaring an incident from what went wrong: a red health report or a failed run becomes a prefilled declare
form (title, services, a suggested severity). Reads only; the person still decides and presses Declare."""

from __future__ import annotations

import html
from collections.abc import Iterable

from bot.context import Context
from bot.errors import StaleButton
from bot.ids import parse_id
from bot.incidents.models import DeclareDraft
from bot.incidents.settings import IncidentSettings

TITLE_LIMIT = 150


def suggest_severity(settings: IncidentSettings, environments: Iterable[str]) -> str:
    """Production broken: the second most severe (P2 by default; the most severe is a person's call); anything
    else: the third. Clipped to the catalog's list, which may be shorter."""
    names = [s.name for s in settings.severities]
    production = any(env.lower().startswith("prod") for env in environments)
    return names[min(1 if production else 2, len(names) - 1)]


async def draft_from(ctx: Context, source: str) -> DeclareDraft:
    """`health:<id>` (a stored health run) or `run:<id>` (an action or runbook run) → what the form shows."""
    kind, _, raw = source.partition(":")
    number = parse_id(raw)
    if number is None or kind not in ("health", "run"):
        raise StaleButton()
    if kind == "health":
        run = await ctx.store.get_health_run(number)
        if run is None:
            raise StaleButton("run `/ops health` again")
        failing = [r for r in run.results if r.status.failing]
        services = tuple(dict.fromkeys(r.service for r in failing if r.service in ctx.catalog.services))
        first = failing[0] if failing else None
        title = "Health checks failing"
        if services:
            title = f"{', '.join(services)} failing" + (f": {first.check} {first.reason}" if first else "")
        description = "\n".join(f"{r.service} · {r.check}: {r.reason}" for r in failing[:20])
        environments = [r.environment for r in failing]
    else:
        action = await ctx.store.get_action(number)
        if action is None:
            raise StaleButton("see `/ops history` for the run")
        services = tuple(s for s in action.services if s in ctx.catalog.services)
        title = f"{action.label} failed (run #{action.id})"
        # outcome and target_state are mrkdwn with entities escaped; the form shows plain text.
        state = f"State now: {action.target_state}" if action.target_state else ""
        description = html.unescape("\n".join(part for part in (action.outcome, state) if part))
        environments = [action.environment]
    return DeclareDraft(title=" ".join(title.split())[:TITLE_LIMIT], services=services, description=description[:3000],
                        severity=suggest_severity(ctx.catalog.incidents, environments))
