"""`/ops help` and `/incident help`: what the bot can do, with what this catalog knows (services, severities).

Usage lines carry `<placeholders>`: they are escaped here (`placeholders`), or Slack would read them as links.
"""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import ContextBlock, HeaderBlock, MarkdownTextObject, SectionBlock

from bot.views import MAX_SECTION_TEXT, Message, clip, placeholders


def help_message(command: str, usages: Sequence[tuple[str, str]], services: Sequence[str] = (),
                 notes: Sequence[str] = ()) -> Message:
    """One line per usage, then `notes` (what else to know: the other command, the statuses), then the services."""
    lines = [placeholders(f"`{command} {usage}`  {description}") for usage, description in usages]
    listed = ", ".join(f"`{name}`" for name in services) if services else "_none yet: add them to the catalog_"
    context = [placeholders(note) for note in notes] + [f"Services: {listed}"]
    return Message.of(
        f"{command} commands: " + ", ".join(usage.split()[0] for usage, _ in usages),
        [
            HeaderBlock(text=f"opsbot · {command}"),
            SectionBlock(text=clip("\n".join(lines), MAX_SECTION_TEXT)),
            ContextBlock(elements=[MarkdownTextObject(text=clip(line, 3000)) for line in context]),
        ],
    )
