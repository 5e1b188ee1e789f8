"""A Markdown runbook as procedures: each heading's title, line, and the fenced code blocks under it with their lines.

Not responsible for what the code means (`bot.importing.shell`, `bot.importing.recognise`); reads text, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from markdown_it import MarkdownIt

SHELL_INFOS = frozenset({"", "bash", "sh", "shell", "console", "zsh", "terminal"})


@dataclass(frozen=True)
class CodeBlock:
    language: str  # the fence's info word, lowercased ("" when none)
    text: str
    first_line: int  # 1-based line of the block's first content line in the file

    @property
    def is_shell(self) -> bool:
        return self.language in SHELL_INFOS


@dataclass(frozen=True)
class Procedure:
    title: str  # its heading's text; "" for what comes before the first heading
    level: int
    line: int  # 1-based line of the heading
    blocks: tuple[CodeBlock, ...]


def procedures(text: str) -> list[Procedure]:
    """The file's headings in order, each with the code blocks up to the next heading (of any level)."""
    tokens = MarkdownIt("commonmark").parse(text)
    found: list[Procedure] = []
    title, level, line = "", 0, 1
    blocks: list[CodeBlock] = []
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            if blocks:
                found.append(Procedure(title, level, line, tuple(blocks)))
            inline = tokens[index + 1]
            title, level = inline.content.strip(), int(token.tag[1:])
            line, blocks = (token.map[0] + 1 if token.map else line), []
        elif token.type in ("fence", "code_block") and token.map:
            language = token.info.strip().split(" ")[0].lower() if token.type == "fence" else ""
            offset = 2 if token.type == "fence" else 1  # a fence's first content line follows its ``` line
            blocks.append(CodeBlock(language, token.content, token.map[0] + offset))
    if blocks:
        found.append(Procedure(title, level, line, tuple(blocks)))
    return found
