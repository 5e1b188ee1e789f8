"""Small pieces every view uses: time stamps readers see in their own time zone, error replies."""

from __future__ import annotations

from datetime import UTC, datetime

from slack_sdk.models.blocks import SectionBlock

from bot.views import MAX_SECTION_TEXT, Message, clip, placeholders


def timestamp(at: datetime) -> str:
    """Slack renders <!date^…> in each reader's own time zone; UTC stands beside it for the record."""
    utc = at.astimezone(UTC)
    fallback = utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"<!date^{int(utc.timestamp())}^{{date_short_pretty}} {{time_secs}}|{fallback}> ({utc:%H:%M:%S} UTC)"


def error_message(text: str) -> Message:
    """An error's text (plain data, often naming the usage: `/ops restore <service> <backup-id>`) as one section."""
    text = placeholders(text)
    body = clip(f":warning: {text}", MAX_SECTION_TEXT)
    return Message.of(text, [SectionBlock(text=body)])


def notice(text: str) -> Message:
    text = placeholders(text)
    return Message.of(text, [SectionBlock(text=clip(text, MAX_SECTION_TEXT))])
