"""The one-line backup result posted to a service's own channel (`services.<name>.channel`).

Pure: the actions domain decides when to post it and where; this only says what it reads like.
"""

from __future__ import annotations

from slack_sdk.models.blocks import SectionBlock

from bot.actions.models import SCHEDULER, ActionRun, ActionState, BackupRecord
from bot.views import MAX_SECTION_TEXT, Message, clip, escape, human_size


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
    elif run.state is ActionState.FAILED and run.started_at is None:
        # Refused before it began (the service was busy, or its lock could not be taken): nothing was touched.
        reason = run.outcome.removeprefix("Not run: ") or "it was refused"
        text = f"⏸ Backup of `{service}` not started: {reason} ({how})"
    elif run.state is ActionState.FAILED:
        text = f"❌ Backup of `{service}` failed: {run.outcome or 'no reason was recorded'} ({how})"
    else:
        text = f"⚠️ Backup of `{service}` {run.state.value}: {run.outcome or 'no reason was recorded'} ({how})"
    text = clip(text, MAX_SECTION_TEXT)
    return Message.of(text, [SectionBlock(text=text)])
