"""Backups in messages: the list (`/ops backups`, with Restore and Back up now buttons), and the one-line result
posted to a service's own channel (`services.<name>.channel`).

Pure: the run flows decide when to post them and where; this only says what they read like.
"""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.runs.models import SCHEDULER, ActionRun, ActionState, BackupRecord
from bot.views import MAX_BLOCKS, MAX_HEADER_TEXT, MAX_SECTION_TEXT, Message, clip, escape, human_size, placeholders
from bot.views.common import timestamp
from bot.views.run_words import refusal
from bot.views.words import age

RESTORE_ACTION, BACKUP_ACTION = "backup.restore", "backup.take"


def backups_message(service: str, records: list[BackupRecord], now: datetime) -> Message:
    """`/ops backups <service>`: id, time, size, checksum, verified, age; a Restore button on each."""
    take = ActionsBlock(block_id="backups.actions",
                        elements=[ButtonElement(text="Back up now", action_id=BACKUP_ACTION, value=service)])
    if not records:
        text = f"`{service}` has no backups yet."
        return Message.of(text, [SectionBlock(text=text), take])
    blocks: list[Block] = [HeaderBlock(text=clip(f"Backups of {service}", MAX_HEADER_TEXT))]
    for record in records[:MAX_BLOCKS - 4]:
        verified = "verified ✅" if record.verified_at else "not verified ⚠️"
        label = f" · _{record.label.value}_" if record.label.value != "manual" else ""
        line = (f"`{record.id}` {timestamp(record.created_at)}\n{human_size(record.size)} · "
                f"sha256 `{record.sha256[:12]}` · {verified} · {age(now - record.created_at)}{label}")
        # A Redis snapshot is restored by hand (opsbot refuses and says how): no button that can only be refused.
        restore = None if record.kind == "redis" else ButtonElement(text="Restore…", action_id=RESTORE_ACTION,
                                                                    value=str(record.id))
        blocks.append(SectionBlock(text=line, accessory=restore))
    how = (f"Redis snapshots are restored by hand: `/ops restore {service} <id>` says how." if records[0].kind == "redis"
           else f"Or `/ops restore {service} <id>` (or `latest`).")
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"{placeholders(how)} As of {timestamp(now)}.")]))
    blocks.append(take)
    return Message.of(f"Backups of {service}: {len(records)}", blocks)


def backup_result_message(run: ActionRun, record: BackupRecord | None) -> Message:
    """The line for a finished backup run: ✅ with its file, size, the seconds it took and whether it verified (or
    the run's own summary when its record is not at hand); ⏸ not started, with why (another action held the
    service); ❌ failed, with the reason. `run.outcome` is already mrkdwn-escaped."""
    how = "scheduled" if run.requested_by == SCHEDULER else f"action #{run.id}"
    service = escape(run.service)
    if run.state is ActionState.SUCCEEDED and record is not None:
        took = (record.verified_at - record.created_at).total_seconds() if record.verified_at else None
        timing = f" in {took:.1f} s" if took is not None else ""
        verified = "verified" if record.verified_at else "not verified"
        text = (f"✅ Backup of `{service}`: `{escape(record.path.name)}`, "
                f"{human_size(record.size)}{timing}, {verified} ({how})")
    elif run.state is ActionState.SUCCEEDED:
        text = f"✅ Backup of `{service}`: {run.outcome or 'done'} ({how})"
    elif run.outcome_data is not None and (reason := refusal(run.outcome_data)) is not None:
        # Refused before it began (the service was busy, or its lock could not be taken): nothing was touched.
        text = f"⏸ Backup of `{service}` not started: {reason} ({how})"
    elif run.state is ActionState.FAILED:
        text = f"❌ Backup of `{service}` failed: {run.outcome or 'no reason was recorded'} ({how})"
    else:
        text = f"⚠️ Backup of `{service}` {run.state.value}: {run.outcome or 'no reason was recorded'} ({how})"
    text = clip(text, MAX_SECTION_TEXT)
    return Message.of(text, [SectionBlock(text=text)])
