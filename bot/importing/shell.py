"""Bash code as statements of commands, read with tree-sitter-bash: each command's argv from the syntax tree.

Not responsible for what a command means (`bot.importing.recognise`). Nothing here runs a process: the text is
parsed, and an element that is not a literal (a `$VAR`, a `$(…)`) is kept as written and marked so.
"""

from __future__ import annotations

from dataclasses import dataclass

import tree_sitter_bash
from tree_sitter import Language, Node, Parser

_BASH = Language(tree_sitter_bash.language())
# Statements whose parts are commands run one after the other: their commands are taken one by one.
_SEQUENCES = frozenset({"list"})
_SIMPLE = frozenset({"command", "pipeline", "redirected_statement"})


@dataclass(frozen=True)
class Word:
    text: str  # the literal value, or the source text when not literal
    literal: bool
    variables: tuple[str, ...] = ()


@dataclass(frozen=True)
class Command:
    argv: tuple[Word, ...]
    assignments: tuple[tuple[str, Word], ...]  # `NAME=value` written before the command

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(word.text for word in self.argv)

    @property
    def literal(self) -> bool:
        return all(word.literal for word in self.argv)

    @property
    def program(self) -> str:
        return self.argv[0].text.rsplit("/", 1)[-1] if self.argv else ""


@dataclass(frozen=True)
class Statement:
    text: str  # as written
    first_line: int  # 1-based, in the file
    last_line: int
    commands: tuple[Command, ...]  # a pipeline's commands in order; one for a plain command
    comment: str  # the comment lines right above it, joined ("" when none)
    redirect_in: bool = False  # input from a file or a here-document
    redirect_out: bool = False
    heredoc: bool = False
    complex: bool = False  # a loop, condition, function or syntax error: only a person can follow it
    assignments_only: tuple[tuple[str, Word], ...] = ()  # `NAME=value` / `export NAME=value` on its own


def statements(code: str, first_line: int) -> list[Statement]:
    """The statements of a bash block whose first line is line `first_line` of the file."""
    source = code.encode()
    tree = Parser(_BASH).parse(source)
    found: list[Statement] = []
    comment: list[str] = []
    last_comment_row = -2
    for node in tree.root_node.named_children:
        if node.type == "comment":
            if node.start_point[0] != last_comment_row + 1:
                comment = []
            comment.append(_text(node).lstrip("#").strip())
            last_comment_row = node.start_point[0]
            continue
        above = " ".join(comment) if last_comment_row == node.start_point[0] - 1 else ""
        comment, last_comment_row = [], -2
        found.extend(_statement(node, source, first_line, above))
    return found


def _statement(node: Node, source: bytes, first_line: int, comment: str) -> list[Statement]:
    if node.type in _SEQUENCES and not node.has_error:
        parts = [child for child in node.named_children if child.type != "comment"]
        return [item for index, child in enumerate(parts)
                for item in _statement(child, source, first_line, comment if index == 0 else "")]
    text = source[node.start_byte:node.end_byte].decode(errors="replace")
    lines = first_line + node.start_point[0], first_line + node.end_point[0]
    if node.type in ("variable_assignment", "declaration_command") and not node.has_error:
        return [Statement(text, *lines, (), comment, assignments_only=tuple(_assignments(node)))]
    if node.type not in _SIMPLE or node.has_error:
        return [Statement(text, *lines, (), comment, complex=True)]
    body, redirects = node, []
    if node.type == "redirected_statement":
        body = node.child_by_field_name("body") or node
        redirects = [child for child in node.named_children if child is not body]
    commands = [body] if body.type == "command" else [c for c in body.named_children if c.type == "command"]
    if body.type not in ("command", "pipeline") or (body.type == "pipeline" and len(commands) != len(body.named_children)):
        return [Statement(text, *lines, (), comment, complex=True)]
    redirects += [child for command in commands for child in command.named_children
                  if child.type in ("file_redirect", "heredoc_redirect", "herestring_redirect")]
    return [Statement(
        text, *lines, tuple(_command(command) for command in commands), comment,
        redirect_in=any(_reads(redirect) for redirect in redirects),
        redirect_out=any(redirect.type == "file_redirect" and not _reads(redirect) for redirect in redirects),
        heredoc=any(redirect.type in ("heredoc_redirect", "herestring_redirect") for redirect in redirects))]


def _reads(redirect: Node) -> bool:
    if redirect.type in ("heredoc_redirect", "herestring_redirect"):
        return True
    operator = next((child for child in redirect.children if not child.is_named), None)
    return operator is not None and _text(operator) in ("<", "<&", "<>")


def _assignments(node: Node) -> list[tuple[str, Word]]:
    found = []
    for child in [node, *node.named_children]:
        if child.type == "variable_assignment":
            name, value = child.child_by_field_name("name"), child.child_by_field_name("value")
            if name is not None:
                found.append((_text(name), _word(value) if value is not None else Word("", True)))
    return found


def _command(node: Node) -> Command:
    argv: list[Word] = []
    assignments: list[tuple[str, Word]] = []
    for child in node.named_children:
        if child.type == "variable_assignment":
            assignments.extend(_assignments(child))
        elif child.type == "command_name":
            argv.append(_word(child.named_children[0] if child.named_children else child))
        elif child.type not in ("file_redirect", "heredoc_redirect", "herestring_redirect", "comment"):
            argv.append(_word(child))
    return Command(tuple(argv), tuple(assignments))


def _text(node: Node) -> str:
    return (node.text or b"").decode(errors="replace")


def _word(node: Node) -> Word:
    kind = node.type
    if kind in ("word", "number"):
        return Word(_unescape(_text(node)), True)
    if kind == "raw_string":
        return Word(_text(node)[1:-1], True)
    if kind in ("string", "translated_string"):
        inner = node.named_children
        if all(child.type == "string_content" for child in inner):
            return Word(_text(node)[1:-1], True)  # "…" with no expansion: its content as written
        return Word(_text(node), False, _variables(node))
    if kind == "concatenation":
        parts = [_word(child) for child in node.named_children]
        if all(part.literal for part in parts) and len(parts) == len(node.children):
            return Word("".join(part.text for part in parts), True)
        return Word(_text(node), False, tuple(name for part in parts for name in part.variables))
    return Word(_text(node), False, _variables(node))


def _variables(node: Node) -> tuple[str, ...]:
    names: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == "variable_name":
            names.append(_text(current))
        stack.extend(current.named_children)
    return tuple(names)


def _unescape(text: str) -> str:
    out, escaped = [], False
    for char in text:
        if escaped or char != "\\":
            out.append(char)
            escaped = False
        else:
            escaped = True
    return "".join(out)
