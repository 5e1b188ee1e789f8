"""A person's answer to a waiting `manual` step (Done / Skip / Failed): checked, stored once (the first press
wins), audited, told to the incident's timeline when the run is in one, and shown on the run's message.

Not responsible for what the answer does to the run (the waiting step reads it: `bot.runs.steps.manual`) nor for
the words (`bot.views.manual_steps`). Who may answer: any person in the channel — not a bot or app user; every
answer names who gave it in the audit log.
"""

from __future__ import annotations

import re

from bot.audit import Outcome
from bot.errors import StaleButton
from bot.incidents import timeline
from bot.incidents.models import EntryKind
from bot.runs.deps import RunDeps
from bot.runs.execution import audit_run, get_run, refresh_message
from bot.runs.models import Answer, StepAnswer
from bot.runs.policy import NotAllowed
from bot.views.manual_steps import answer_note, answered, waiting
from bot.views.run_words import run_note

# A person's Slack id (U…, or W… on Enterprise Grid); bots and apps answer as B… or not at all.
_PERSON = re.compile(r"^[UW][A-Z0-9]{2,}$")
_AUDIT = {Answer.DONE: Outcome.OK, Answer.SKIPPED: Outcome.OK, Answer.FAILED: Outcome.ERROR}


async def answer(ctx: RunDeps, run_id: int, position: int, given: Answer, user: str) -> str:
    """Store `user`'s answer to step `position` of run `run_id`; what to tell them. Raises StaleButton when the
    step no longer waits (answered by someone else, the run ended or moved on), NotAllowed for a non-person."""
    if not _PERSON.match(user):
        raise NotAllowed("Only a person can answer a step that a person does.")
    run = await get_run(ctx, run_id)
    if position not in waiting(run):
        raise StaleButton("that step is no longer waiting for an answer")
    said = StepAnswer(given, user, ctx.clock.now())
    if not await ctx.store.answer_step(run_id, position, said):
        raise StaleButton("someone answered that step first")
    ctx.wakeups.wake(run_id)  # the step, if it waits on this replica, goes on now rather than at its next read
    text = answer_note(said, position, run.plan[position].title)
    await audit_run(ctx, run, f"step {position + 1} {given.value}", user, text, outcome=_AUDIT[given])
    await timeline.from_channel(ctx, run.channel_id, EntryKind.ACTION, run_note(run, text), user)
    await refresh_message(ctx, run_id)
    return answered(given, position)
