"""A shell word as bash reads it: its literal value, or its source text and its value in pieces — literal text with
quotes and escapes removed, and expansions (`$NAME`, `${NAME:-default}`, `$(…)`, backticks) kept apart.

Not responsible for what a word's variables hold (`variables`) nor for the statements around it (`shell`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tree_sitter import Node

_ESCAPED = re.compile(r'\\([\\"$`])')  # what a backslash escapes inside double quotes


@dataclass(frozen=True)
class Expansion:
    """`$NAME`, `${NAME}`, `${NAME:-default}`, `$1`: a variable read (`name`); `$(…)`, backticks, `$((…))`, `${#X}`
    and the like: a value worked out when the script runs (`name` None)."""

    written: str  # as written
    name: str | None = None
    default: str | None = None  # `${NAME:-default}`, when the default is written out


Part = str | Expansion  # a word's value in pieces: literal text (quotes removed) and expansions


@dataclass(frozen=True)
class Word:
    text: str  # the literal value, or the source text when not literal
    literal: bool
    variables: tuple[str, ...] = ()
    parts: tuple[Part, ...] = ()  # the value in pieces; () for a literal word: `text` itself

    @property
    def pieces(self) -> tuple[Part, ...]:
        if self.parts:
            return self.parts
        return (self.text,) if self.literal else (Expansion(self.text),)

    def after(self, prefix: str) -> Word | None:
        """The word without a literal prefix (`--replicas=$N` after `--replicas=`: `$N`), or None when it has none."""
        pieces = self.pieces
        if not prefix or not isinstance(pieces[0], str) or not pieces[0].startswith(prefix):
            return None
        rest = joined((pieces[0][len(prefix):], *pieces[1:]))
        text = self.text[len(prefix):] if self.text.startswith(prefix) else "".join(
            part if isinstance(part, str) else part.written for part in rest)
        literal = all(isinstance(part, str) for part in rest)
        return Word("".join(str(part) for part in rest) if literal else text, literal,
                    tuple(part.name for part in rest if isinstance(part, Expansion) and part.name), rest)


def word_of(node: Node) -> Word:
    """A word of the syntax tree: its literal value, or its source text and its value in pieces."""
    kind = node.type
    if kind in ("word", "number"):
        return Word(_unescape(_text(node)), True)
    if kind == "raw_string":
        return Word(_text(node)[1:-1], True)
    if kind in ("string", "translated_string"):
        inner = node.named_children
        if all(child.type == "string_content" for child in inner):
            return Word(_ESCAPED.sub(r"\1", _text(node)[1:-1]), True)  # "…" with no expansion: its content
        return Word(_text(node), False, _variables(node), _parts(node))
    if kind == "concatenation":
        parts = [word_of(child) for child in node.named_children]
        if all(part.literal for part in parts) and len(parts) == len(node.children):
            return Word("".join(part.text for part in parts), True)
        return Word(_text(node), False, tuple(name for part in parts for name in part.variables), _parts(node))
    return Word(_text(node), False, _variables(node), _parts(node))


def _parts(node: Node) -> tuple[Part, ...]:
    """A word's value as literal text and expansions, quotes and escapes removed as bash removes them."""
    kind = node.type
    if kind in ("word", "number"):
        return (_unescape(_text(node)),)
    if kind == "raw_string":
        return (_text(node)[1:-1],)
    if kind in ("string", "translated_string"):
        parts: list[Part] = []
        start = node.start_byte + (2 if kind == "translated_string" else 1)
        source = node.text or b""
        for child in node.named_children:
            if child.type == "string_content":
                continue
            parts.append(_quoted(source[start - node.start_byte:child.start_byte - node.start_byte]))
            parts += _parts(child)
            start = child.end_byte
        parts.append(_quoted(source[start - node.start_byte:len(source) - 1]))
        return joined(tuple(parts))
    if kind == "concatenation":
        return joined(tuple(part for child in node.children
                             for part in (_parts(child) if child.is_named else (_text(child),))))
    if kind == "simple_expansion":
        name = next((child for child in node.named_children if child.type == "variable_name"), None)
        return (Expansion(_text(node), _text(name) if name is not None else None),)
    if kind == "expansion":
        return (_expansion(node),)
    return (Expansion(_text(node)),)  # `$(…)`, backticks, `$((…))`, `$'…'`, `<(…)`: worked out when it runs


def _expansion(node: Node) -> Expansion:
    """`${NAME}` and `${NAME:-default}` (or `-`) read a variable; any other form (`${#X}`, `${X/a/b}`) works a value
    out."""
    inside = [child for child in node.children if child.type not in ("${", "}")]
    if not inside or inside[0].type != "variable_name":
        return Expansion(_text(node))
    name = _text(inside[0])
    if len(inside) == 1:
        return Expansion(_text(node), name)
    if len(inside) == 3 and inside[1].type in (":-", "-"):
        default = _parts(inside[2])
        if all(isinstance(part, str) for part in default):
            return Expansion(_text(node), name, "".join(str(part) for part in default))
    return Expansion(_text(node))


def _quoted(raw: bytes) -> str:
    """Text inside double quotes: a backslash escapes only `\\ " $ ``; one before a newline joins the lines."""
    return _ESCAPED.sub(r"\1", raw.decode(errors="replace").replace("\\\n", ""))


def joined(parts: tuple[Part, ...]) -> tuple[Part, ...]:
    out: list[Part] = []
    for part in parts:
        if isinstance(part, str) and not part:
            continue
        if isinstance(part, str) and out and isinstance(out[-1], str):
            out[-1] += part
        else:
            out.append(part)
    return tuple(out) or ("",)


def _variables(node: Node) -> tuple[str, ...]:
    names: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type in ("variable_name", "special_variable_name"):
            names.append(_text(current))
        stack.extend(current.named_children)
    return tuple(reversed(names))


def _unescape(text: str) -> str:
    out, escaped = [], False
    for char in text:
        if escaped or char != "\\":
            out.append(char)
            escaped = False
        else:
            escaped = True
    return "".join(out)


def _text(node: Node) -> str:
    return (node.text or b"").decode(errors="replace")
