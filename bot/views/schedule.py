"""Block Kit for `/ops schedule` and for the alert a failed scheduled job posts. Pure: values in, message out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from slack_sdk.models.blocks import Block, ContextBlock, HeaderBlock, MarkdownTextObject, SectionBlock

from bot.scheduling.cron import CronSchedule
from bot.scheduling.models import Occurrence, OccurrenceState
from bot.views import MAX_BLOCKS, MAX_SECTION_TEXT, Message, clip, escape
from bot.views.common import timestamp

_LAST = {OccurrenceState.DONE: "✅", OccurrenceState.FAILED: "❌", OccurrenceState.SKIPPED: "⏭"}


@dataclass(frozen=True)
class ScheduleLine:
    title: str
    schedule: CronSchedule
    next_at: datetime | None  # None: not scheduled (e.g. a digest with no channel)
    where: str  # "→ <#C…>" or why it does not run
    last: Occurrence | None


def schedule_message(lines: list[ScheduleLine], grace_minutes: float) -> Message:
    if not lines:
        text = ("Nothing is scheduled. Digests, backups and runbooks get schedules in the catalog's `schedules:`, "
                "`backup.schedule` and a runbook's `schedule`.")
        return Message.of(text, [SectionBlock(text=text)])
    blocks: list[Block] = [HeaderBlock(text="Schedules")]
    for line in lines[: MAX_BLOCKS - 2]:
        when = f"next {timestamp(line.next_at)}" if line.next_at else "*off*"
        last = ""
        if line.last is not None:
            last = (f"\nlast: {_LAST.get(line.last.state, '•')} {timestamp(line.last.due_at)} "
                    f"{line.last.state.value}" + (f" — {clip(line.last.detail, 300)}" if line.last.detail else ""))
        body = f"*{escape(line.title)}* · {line.schedule.describe()} {line.where}\n{when}{last}"
        blocks.append(SectionBlock(text=clip(body, MAX_SECTION_TEXT)))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(
        text=f"An occurrence missed while opsbot was down runs at start-up if it is under {grace_minutes:g} min late; "
             "older ones are recorded as skipped.")]))
    return Message.of(f"{len(lines)} schedule(s)", blocks)


def failure_alert(title: str, due_at: datetime, why: str) -> Message:
    text = f"❌ Scheduled {title} (due {due_at:%Y-%m-%d %H:%M} UTC) failed: {why}"
    return Message.of(text, [SectionBlock(text=clip(f"❌ *Scheduled {escape(title)}* (due {timestamp(due_at)}) failed:\n{why}",
                                                    MAX_SECTION_TEXT))])
