"""Small pieces every view uses: time stamps readers see in their own time zone, error replies."""

from __future__ import annotations

from datetime import datetime, timezone

from slack_sdk.models.blocks import SectionBlock

from bot.views import MAX_SECTION_TEXT, Message, clip


def timestamp(at: datetime) -> str:
    """Slack renders <!date^…> in each reader's own time zone; UTC stands beside it for the record."""
    utc = at.astimezone(timezone.utc)
    fallback = utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"<!date^{int(utc.timestamp())}^{{date_short_pretty}} {{time_secs}}|{fallback}> ({utc:%H:%M:%S} UTC)"


def error_message(text: str) -> Message:
    body = clip(f":warning: {text}", MAX_SECTION_TEXT)
    return Message.of(text, [SectionBlock(text=body)])


def notice(text: str) -> Message:
    return Message.of(text, [SectionBlock(text=clip(text, MAX_SECTION_TEXT))])
