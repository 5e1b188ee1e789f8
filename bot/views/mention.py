"""The answer to an @-mention: where to start."""

from __future__ import annotations

from slack_sdk.models.blocks import SectionBlock

from bot.views import Message


def mention_reply(user: str | None) -> Message:
    who = f"<@{user}> " if user else ""
    text = f"{who}I answer slash commands: try `/ops health` for every service, or `/ops help` for the list."
    return Message.of(text, [SectionBlock(text=text)])
