"""Every request audited, across a store outage: the entry is written before the work ("requested"), the outcome
after it; an outcome that cannot be written is kept and retried by the chores, and an entry whose process died is
completed from the incident or run the request made (or marked unknown). A request refused because the store could not
take its entry cannot be stored at all: it is logged at warning with what it was.

Not responsible for what a request does (handlers/) nor for how entries are stored (bot/store/).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from bot.audit import AuditEntry, AuditResult, Outcome
from bot.context import Context
from bot.errors import store_down
from bot.incidents.models import DeclareStage
from bot.store.audit_sql import Made

log = logging.getLogger(__name__)

# An entry still "requested" this long after it was written has lost the process that knew its outcome (or that
# process still waits for its store: its own outcome replaces what the chores infer). Requests finish in seconds.
SETTLE_AFTER = timedelta(minutes=2)
# With nothing made to read its outcome from, an entry is marked unknown only after this long.
UNKNOWN_AFTER = timedelta(hours=1)


# The entry is written before the listener acks (the ack often carries the answer), and Slack shows the person a
# timeout after 3 s: a store slower than this refuses the request in time to say so.
BEGIN_WITHIN_SECONDS = 2.0


class AuditTooSlow(Exception):
    """The store did not take the request's entry within BEGIN_WITHIN_SECONDS: the request is refused."""


async def begin(ctx: Context, entry: AuditEntry, within: float = BEGIN_WITHIN_SECONDS) -> int:
    """Write the request's entry as requested, before any work; raises when the store cannot take it, or not in time
    (the request is then refused: nothing is done unaudited). An entry that lands after the refusal is finished as
    rejected by the chores, never left "requested"."""
    writing = asyncio.ensure_future(ctx.store.record_audit(AuditEntry(
        at=entry.at, kind=entry.kind, name=entry.name, outcome=Outcome.REQUESTED, actor_id=entry.actor_id,
        channel_id=entry.channel_id, args=entry.args[:500])))
    done, _ = await asyncio.wait({writing}, timeout=within)
    if writing in done:
        return writing.result()

    def refused_late(task: asyncio.Future[int]) -> None:
        if not task.cancelled() and task.exception() is None:
            ctx.audit_outbox.keep(AuditResult(task.result(), Outcome.REJECTED,
                                              f"refused: the audit log took longer than {within:g} s to answer", None))

    writing.add_done_callback(refused_late)
    raise AuditTooSlow(f"the audit log did not answer within {within:g} s")


def refused(entry: AuditEntry, cause: BaseException) -> None:
    """The honest limit: a request refused because its entry could not be written leaves only this log line."""
    log.warning("request refused and not in the audit log (%s): %s %s by %s in %s at %s, args %r",
                "the store could not be reached" if store_down(cause) else type(cause).__name__,
                entry.kind, entry.name, entry.actor_id or "?", entry.channel_id or "?", entry.at.isoformat(),
                entry.args[:500])


async def finish(ctx: Context, result: AuditResult) -> None:
    """Write the outcome; if the store does not take it, keep it for the chores to retry."""
    try:
        await ctx.store.finish_audit(result.audit_id, result.outcome, _clip(result.detail), result.duration_ms)
    except Exception as exc:  # noqa: BLE001 - whatever failed, the outcome is kept and retried, never lost
        ctx.audit_outbox.keep(result)
        if not store_down(exc):  # an outage is logged once by the store
            log.warning("audit entry %s: outcome %s not written yet (%s); retried by the chores", result.audit_id,
                        result.outcome.value, type(exc).__name__)


async def settle(ctx: Context) -> int:
    """A chore: write the outcomes this process kept, then complete entries still requested whose process is gone,
    from the incident or run their request made. Returns how many entries it completed."""
    done = 0
    for result in ctx.audit_outbox.waiting():
        await ctx.store.finish_audit(result.audit_id, result.outcome, _clip(result.detail), result.duration_ms)
        ctx.audit_outbox.landed(result.audit_id)
        done += 1
    now = ctx.clock.now()
    pending = await ctx.store.requested_audits(now - SETTLE_AFTER)
    made: dict[int, Made] = {m.audit_id: m for m in await ctx.store.made_by_requests([p.id for p in pending])}
    for entry in pending:
        found = made.get(entry.id)
        if found is not None:
            inferred = _from(found)
            if inferred is None:  # its incident is still being declared: the declaration chore finishes it first
                continue
            outcome, detail = inferred
        elif entry.at <= now - UNKNOWN_AFTER:
            outcome, detail = Outcome.UNKNOWN, "opsbot stopped, or lost its database, before it wrote how this ended"
        else:
            continue
        if await ctx.store.finish_audit(entry.id, outcome, detail, None, inferred=True):
            done += 1
    return done


def _from(made: Made) -> tuple[Outcome, str] | None:
    """The outcome a request's incident or run shows: it made it, so the request worked."""
    if made.kind == "incident":
        if made.state != DeclareStage.DECLARED.value:
            return None
        return Outcome.OK, f"INC-{made.id} declared (outcome completed from the incident)"
    return Outcome.OK, f"run #{made.id} made, now {made.state} (outcome completed from the run)"


def _clip(detail: str | None) -> str | None:
    return detail[:1000] if detail else None
