"""`/ops help`: what the bot can do, with the services this catalog knows."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import ContextBlock, HeaderBlock, MarkdownTextObject, SectionBlock

from bot.views import MAX_SECTION_TEXT, Message, clip


def help_message(command: str, usages: Sequence[tuple[str, str]], services: Sequence[str]) -> Message:
    lines = [f"`{command} {usage}`  {description}" for usage, description in usages]
    listed = ", ".join(f"`{name}`" for name in services) if services else "_none yet: add them to the catalog_"
    return Message.of(
        f"{command} commands: " + ", ".join(usage.split()[0] for usage, _ in usages),
        [
            HeaderBlock(text="opsbot"),
            SectionBlock(text=clip("\n".join(lines), MAX_SECTION_TEXT)),
            ContextBlock(elements=[MarkdownTextObject(text=clip(f"Services: {listed}", 3000))]),
        ],
    )
