"""What `/ops history` and `/ops approvals` list: recent runs per service (a runbook counts for every service it
touched), and where each request's message is. Reads only; the views say how it reads."""

from __future__ import annotations

from typing import Protocol

from bot.runs.models import ActionRun, ActionState
from bot.runs.ports import RunStore

HISTORY_ROWS = 15  # runs shown
SCANNED = 300  # recent runs looked through: a runbook's row names only its first service, so it is filtered here


class _Links(Protocol):
    async def permalink(self, channel: str, ts: str) -> str | None: ...


class ListingDeps(Protocol):
    """The runs, and Slack's links to messages (the bot's `Context` has both)."""

    @property
    def store(self) -> RunStore: ...

    @property
    def chat(self) -> _Links: ...


async def history(ctx: ListingDeps, service: str | None) -> list[ActionRun]:
    """Recent runs, newest first, plans never sent left out: every service's, or those that touched `service`."""
    runs = await ctx.store.actions(limit=SCANNED)
    return [run for run in runs
            if run.state is not ActionState.DRAFT and (service is None or service in run.services)][:HISTORY_ROWS]


async def message_link(ctx: ListingDeps, run: ActionRun) -> str | None:
    """A link to the run's message in its channel (chat.getPermalink), or None when it has none or Slack says no."""
    if not (run.channel_id and run.message_ts):
        return None
    return await ctx.chat.permalink(run.channel_id, run.message_ts)
