"""A run started from an alert's Run button, heard when it ends: its result goes on the alert's message (✅ or ❌,
the run's one-line ending, a link to the run's message). Added to the run flows' listeners when alerts are mounted
(`intake.add_alert_routes`), so `bot.runs` never imports alerts.

Not responsible for planning the run (service.plan_run) nor for how the line looks (bot/views/alerts.py).
"""

from __future__ import annotations

from bot.alerts.messages import refresh
from bot.context import Context
from bot.runs.models import ActionRun
from bot.views import clip

_ENDING_CHARS = 300


async def run_ended(ctx: Context, run: ActionRun) -> None:
    """Record the run's end on the groups it was started from (once: a repeat finds it recorded) and show it."""
    if run.id is None or not run.state.final or not await ctx.store.groups_of_run(run.id):
        return  # not started from an alert (most runs), or its end is already shown
    link = await ctx.chat.permalink(run.channel_id, run.message_ts) if run.channel_id and run.message_ts else None
    for group_id in await ctx.store.record_run_end(run.id, run.state.value, one_line(run.outcome or ""), link):
        await refresh(ctx, group_id)


def one_line(ending: str) -> str:
    """The run's ending as one line: its first, clipped (its words are the run's own, escaped mrkdwn)."""
    first = ending.strip().splitlines()[0] if ending.strip() else ""
    return clip(first, _ENDING_CHARS)
