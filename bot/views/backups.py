"""The one-line backup result posted to a service's own channel (`services.<name>.channel`).

Pure: the actions domain decides when to post it and where; this only says what it reads like.
"""

from __future__ import annotations

from slack_sdk.models.blocks import SectionBlock

from bot.actions.models import SCHEDULER, ActionRun, ActionState, BackupRecord
from bot.views import MAX_SECTION_TEXT, Message, clip, escape, human_size


def backup_result_message(run: ActionRun, record: BackupRecord | None) -> Message:
    """✅ `db`: file, size in seconds, verified — or ❌ with the run's reason (already mrkdwn-escaped)."""
    how = "scheduled" if run.requested_by == SCHEDULER else f"action #{run.id}"
    if run.state is ActionState.SUCCEEDED and record is not None:
        took = (record.verified_at - record.created_at).total_seconds() if record.verified_at else None
        timing = f" in {took:.1f} s" if took is not None else ""
        verified = "verified" if record.verified_at else "not verified"
        text = (f"✅ Backup of `{escape(run.service)}`: `{escape(record.path.name)}`, "
                f"{human_size(record.size)}{timing}, {verified} ({how})")
    else:
        reason = run.outcome or run.state.value
        text = f"❌ Backup of `{escape(run.service)}` failed: {reason} ({how})"
    text = clip(text, MAX_SECTION_TEXT)
    return Message.of(text, [SectionBlock(text=text)])
