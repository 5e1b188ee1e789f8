"""Line edits on a text that leave every line they do not touch byte for byte as it was, and blocks of lines moved
to another indentation. Not responsible for choosing the edits (`merge`).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.importing.yaml_spans import body, is_blank


class OverlappingEdits(Exception):
    """Two edits claim the same lines: a fault in the code that chose them, never in the input."""


@dataclass(frozen=True)
class Edit:
    """Lines `first` up to (not including) `stop` become `new`; `first == stop` inserts before line `first`.
    Insertions at one place go deepest first (`depth`: the length of the path they add to), so a check lands in its
    service's list before a key added after the list, whatever their columns (`checks:` items may sit at the key's)."""

    first: int
    stop: int
    new: tuple[str, ...]
    depth: int = 0


def apply(lines: list[str], edits: list[Edit], newline: str) -> str:
    order = sorted(enumerate(edits), key=lambda pair: (pair[1].first, pair[1].stop, -pair[1].depth, pair[0]))
    out: list[str] = []
    position = 0
    for _, edit in order:
        if edit.first < position:
            raise OverlappingEdits(f"lines {edit.first}-{edit.stop} overlap an earlier edit ending at {position}")
        out += lines[position:edit.first]
        if edit.new and out and out[-1] == body(out[-1]):  # the text ended without a line break
            out[-1] += newline
        out += edit.new
        position = edit.stop
    out += lines[position:]
    return "".join(out)


def moved(lines: list[str], column: int, to: int, newline: str) -> tuple[str, ...]:
    """`lines` written at `column`, moved to `to` (each keeps its depth below the first), with this text's breaks."""
    out = []
    for line in lines:
        text = body(line)
        if is_blank(line) and len(text) <= column:
            out.append(newline)
            continue
        depth = len(text) - len(text.lstrip(" "))
        out.append(" " * to + (text[column:] if depth >= column else text.lstrip(" ")) + newline)
    return tuple(out)
