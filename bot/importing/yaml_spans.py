"""Where each part of a YAML document sits in its text: the lines of a mapping entry or a sequence item, with the
comments that belong to it. Not responsible for what the parts mean (`elements`) nor for changing the text (`edits`).

Lines are counted from 0, as PyYAML's marks count them, and split at YAML's own line breaks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

_BREAK = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")


def split_lines(text: str) -> list[str]:
    """The text's lines, each with its line break (the last one may have none): joined again, they are the text."""
    lines, start = [], 0
    for found in _BREAK.finditer(text):
        lines.append(text[start:found.end()])
        start = found.end()
    if start < len(text):
        lines.append(text[start:])
    return lines


def newline_of(lines: list[str]) -> str:
    """The document's own line break, for lines added to it."""
    for line in lines:
        found = _BREAK.search(line)
        if found:
            return found.group()
    return "\n"


def body(line: str) -> str:
    """The line without its line break."""
    return _BREAK.sub("", line)


def indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def is_blank(line: str) -> bool:
    return not body(line).strip()


def is_comment(line: str) -> bool:
    return body(line).lstrip(" ").startswith("#")


@dataclass(frozen=True)
class Span:
    """Lines `header`..`end` (inclusive): the comments at its column just above it, the part itself from `start`,
    and the comments indented deeper than it that follow it (they still speak about it)."""

    column: int
    header: int
    start: int
    end: int

    @property
    def lines(self) -> range:
        return range(self.header, self.end + 1)


def last_line(lines: list[str], node: yaml.Node) -> int:
    """The last line that holds some of the node's own text (not the blank lines or comments after it)."""
    if isinstance(node, yaml.MappingNode) and not node.flow_style and node.value:
        key, value = node.value[-1]
        return max(last_line(lines, key), last_line(lines, value))
    if isinstance(node, yaml.SequenceNode) and not node.flow_style and node.value:
        return last_line(lines, node.value[-1])
    start, end = node.start_mark, node.end_mark
    last = end.line if end.column > 0 or end.line == start.line else end.line - 1
    while last > start.line and (last >= len(lines) or is_blank(lines[last])):
        last -= 1
    return last


def _span(lines: list[str], column: int, start: int, content_end: int) -> Span:
    header = start
    while header > 0 and is_comment(lines[header - 1]) and indent(lines[header - 1]) == column:
        header -= 1
    end = content_end
    while end + 1 < len(lines) and is_comment(lines[end + 1]) and indent(lines[end + 1]) > column:
        end += 1
    return Span(column, header, start, end)


def is_alias(key: yaml.Node, value: yaml.Node) -> bool:
    """A value written as `*name`: its node (and marks) are the anchor's, elsewhere in the text."""
    return bool(value.start_mark.index < key.end_mark.index)


def entry_span(lines: list[str], key: yaml.Node, value: yaml.Node) -> Span:
    content_end = key.end_mark.line if is_alias(key, value) else max(last_line(lines, key), last_line(lines, value))
    return _span(lines, key.start_mark.column, key.start_mark.line, content_end)


def item_span(lines: list[str], item: yaml.Node) -> Span | None:
    """A block sequence item from its `-`; None when the dash is not where a block sequence puts it."""
    line, column = item.start_mark.line, item.start_mark.column
    before = body(lines[line])[:column].rstrip(" ")
    if not before.strip():  # `-` alone on a line above, the item below it
        line -= 1
        while line >= 0 and (is_blank(lines[line]) or is_comment(lines[line])):
            line -= 1
        if line < 0:
            return None
        before = body(lines[line]).rstrip(" ")
    if not before.endswith("-") or before[:-1].strip():
        return None
    return _span(lines, len(before) - 1, line, max(line, last_line(lines, item)))


def entries(node: yaml.Node) -> list[tuple[str, yaml.Node, yaml.Node]]:
    """A mapping node's entries with text keys (a merge key `<<` is not written here; a number or a date as a key
    is nothing a catalog has)."""
    if not isinstance(node, yaml.MappingNode):
        return []
    return [(str(key.value), key, value) for key, value in node.value
            if isinstance(key, yaml.ScalarNode) and key.tag == "tag:yaml.org,2002:str"]


def entry(node: yaml.Node, name: str) -> tuple[yaml.Node, yaml.Node] | None:
    for key_text, key, value in entries(node):
        if key_text == name:
            return key, value
    return None


def is_block(node: yaml.Node) -> bool:
    return isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and not node.flow_style and bool(node.value)


def is_empty_flow(node: yaml.Node) -> bool:
    return isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and bool(node.flow_style) and not node.value

