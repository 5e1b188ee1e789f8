"""Block Kit builders: pure functions from domain objects to messages. No I/O here.

They live in the core because scheduled work renders messages with no inbound request behind it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import Block

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_FALLBACK_TEXT = 4000


@dataclass(frozen=True)
class Message:
    """What a Slack message carries: notification text plus blocks (as JSON-ready dicts)."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, text: str, blocks: list[Block]) -> Message:
        if len(blocks) > MAX_BLOCKS:
            raise ValueError(f"{len(blocks)} blocks: Slack takes at most {MAX_BLOCKS}")
        # to_dict() runs slack_sdk's validators (lengths, required fields): a bad block fails here, not in Slack.
        return cls(text=clip(text, MAX_FALLBACK_TEXT), blocks=[block.to_dict() for block in blocks])


def code_block(text: str) -> str:
    """`text` as a Slack code block: inside ``` Slack still reads &, < and >, and three backticks in the text would end
    the block (zero-width spaces between them keep them shown as they are)."""
    return "```" + escape(text).replace("```", "`\u200b`\u200b`") + "```"


def clip(text: str, limit: int, ellipsis: str = "…") -> str:
    return text if len(text) <= limit else text[: limit - len(ellipsis)] + ellipsis


def human_size(size: int) -> str:
    """Bytes as people read backup sizes: 512 B, 12.3 KiB, 4.5 MiB, 1.2 GiB."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def escape(text: str) -> str:
    """Escape the three characters mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# `<service>`, `<backup-id>`, `<revision|tag>`, `<investigating|identified|…>`: placeholders in usage texts. Slack's
# own sequences start with @ # ! or a URL scheme (`<https://…|label>`, `<mailto:…>`), which this never matches.
_PLACEHOLDER = re.compile(r"<([A-Za-z][A-Za-z0-9 _.…-]*(?:\|[A-Za-z0-9 _.…-]+)*)>")


def placeholders(text: str) -> str:
    """Usage and help text with its `<placeholder>`s escaped, so Slack shows them instead of reading a link or
    a control sequence; the Slack markup around them (mentions, channel links, dates) is left as it is."""
    return _PLACEHOLDER.sub(lambda m: f"&lt;{m.group(1)}&gt;", text)


_BROADCAST = re.compile(r"<!(channel|here|everyone)(?:\|[^>]*)?>")
_GROUP = re.compile(r"<!subteam\^[A-Z0-9]+(?:\|([^>]*))?>")


def quiet(text: str) -> str:
    """Text a person typed in a slash command (Slack already escaped &, <, >), with @channel, @here,
    @everyone and group mentions made harmless: opsbot repeats it, and must not ping anyone for them."""
    text = _BROADCAST.sub(lambda m: f"@{m.group(1)}", text)
    return _GROUP.sub(lambda m: m.group(1) or "@group", text)


def line_sections(lines: list[str], title: str = "") -> list[Any]:
    """Lines in as few section blocks as Slack's 3000-character limit allows (a long run's steps)."""
    from slack_sdk.models.blocks import SectionBlock

    blocks: list[Any] = []
    text = title
    for line in lines:
        line = clip(line, MAX_SECTION_TEXT)
        if text and len(text) + len(line) + 1 > MAX_SECTION_TEXT:
            blocks.append(SectionBlock(text=text))
            text = ""
        text = f"{text}\n{line}" if text else line
    if text:
        blocks.append(SectionBlock(text=text))
    return blocks
