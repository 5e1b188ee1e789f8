"""The catalog's elements that a merge adds, compares and re-imports as units (services, their checks and backup,
runbooks, queries, digests), found in a YAML text with their lines, provenance and import stamp.

Not responsible for deciding what to change (`merge`) nor for changing text (`edits`). An element is told by its
path alone (`ELEMENTS` is a table), so a draft that grows new parts needs a row here, not new code.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from bot import checks
from bot.importing.yaml_spans import (
    Span,
    body,
    entries,
    entry_span,
    indent,
    is_alias,
    is_block,
    item_span,
    split_lines,
)

Path = tuple[str, ...]  # mapping keys; a list item's segment is "[its identity]"
PENDING = "pending"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the same nodes and marks, parsed in C
_EMPTY_LIST = re.compile(r"^(\s*[^\s:#]+:)\s*\[\]")  # `checks: []`, the key as digested: `checks:`
_STAMP = re.compile(r"^\s*# opsbot import: (?P<source>.+) (?P<digest>[0-9a-f]{12}|pending)\s*$")


@dataclass(frozen=True)
class Rule:
    """Paths matching `pattern` ("*" any key, "[]" any item of a list) are elements; `nested` names the keys that
    hold elements of their own, left out of this one's value and text (a service's checks and backup)."""

    pattern: tuple[str, ...]
    nested: tuple[str, ...] = ()

    def matches(self, path: Path) -> bool:
        return len(path) == len(self.pattern) and all(
            want == got or (want == "*" and not is_item(got)) or (want == "[]" and is_item(got))
            for want, got in zip(self.pattern, path, strict=True))


ELEMENTS: tuple[Rule, ...] = (
    Rule(("services", "*"), nested=("checks", "backup")),
    Rule(("services", "*", "checks", "[]")),
    Rule(("services", "*", "backup")),
    Rule(("runbooks", "*")),
    Rule(("queries", "*")),
    Rule(("schedules", "digests", "*")),
    # Settings sections are one unit each: a draft's approval policy is never mixed into yours, key by key.
    Rule(("approvals",)),
    Rule(("health",)),
    Rule(("incidents",)),
    Rule(("alerts",)),
)


def check_label(item: Any) -> str:
    """A check's identity within its service: its label, as the catalog keeps labels unique."""
    kind = item.get("type") if isinstance(item, dict) else None
    if isinstance(kind, str) and kind in checks.KINDS:
        try:
            return str(checks.model(kind).model_validate(item).label)
        except ValidationError:  # not (yet) valid: its name, else all it says
            pass
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        return str(item["name"])
    return json.dumps(item, sort_keys=True, default=str)


# Lists whose items are elements, and how an item is known within its list.
KEYED_LISTS: tuple[tuple[tuple[str, ...], Callable[[Any], str]], ...] = (
    (("services", "*", "checks"), check_label),
)


def is_item(segment: str) -> bool:
    return segment.startswith("[") and segment.endswith("]")


def rule_for(path: Path) -> Rule | None:
    return next((rule for rule in ELEMENTS if rule.matches(path)), None)


def identity_for(path: Path) -> Callable[[Any], str] | None:
    return next((identity for pattern, identity in KEYED_LISTS if Rule(pattern).matches(path)), None)


def show(path: Path) -> str:
    return "".join(segment if is_item(segment) or not index else "." + segment
                   for index, segment in enumerate(path))


def own_value(value: Any, rule: Rule) -> Any:
    if rule.nested and isinstance(value, dict):
        return {key: item for key, item in value.items() if key not in rule.nested}
    return value


def is_stamp(line: str) -> bool:
    return bool(_STAMP.match(body(line)))


def stamp_line(source: str, digest: str, column: int, newline: str) -> str:
    return f"{' ' * column}# opsbot import: {source} {digest}{newline}"


@dataclass(frozen=True)
class Stamp:
    line: int
    source: str
    digest: str


@dataclass(frozen=True)
class Element:
    path: Path
    rule: Rule
    value: Any
    span: Span | None  # None: written where lines cannot be added or cut (a flow collection, an alias)
    own_lines: tuple[int, ...]  # its lines, less its stamp and its nested elements' entries
    stamp: Stamp | None
    heading: tuple[str, ...]  # its header comments and its first line: where its provenance is written
    # The lines of its nested lists' keys (`checks:`): digested as the key, whether its list is written `[]` (a
    # re-import that removed the last item writes it so) or holds items
    nested_keys: tuple[int, ...] = ()

    def cites(self, source: str) -> bool:
        cited = re.compile(r"(?:^|\s)#.*?(?<![\w.-])" + re.escape(source) + r":\d")
        return (self.stamp is not None and self.stamp.source == source) or any(
            cited.search(line) for line in self.heading)


class Doc:
    """A YAML text with its nodes (for where things are) and its values (for what they say)."""

    def __init__(self, text: str) -> None:
        self.lines = split_lines(text)
        self.root: yaml.Node | None = yaml.compose(text, Loader=_LOADER)
        self.value: Any = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader (libyaml's when installed)
        self.elements: dict[Path, Element] = {element.path: element for element in self._walk((), self.root,
                                                                                                 self.value)}

    def has(self, path: Path) -> bool:
        return self.get(path)[0]

    def get(self, path: Path) -> tuple[bool, Any]:
        value = self.value
        for index, segment in enumerate(path):
            if is_item(segment):
                identity = identity_for(path[:index])
                found = [item for item in value if identity is not None and f"[{identity(item)}]" == segment] \
                    if isinstance(value, list) else []
                if not found:
                    return False, None
                value = found[0]
            elif isinstance(value, dict) and segment in value:
                value = value[segment]
            else:
                return False, None
        return True, value

    def node(self, path: Path) -> yaml.Node | None:
        """The node written at `path`, or None when it is not written there (a merge key, an alias on the way)."""
        node, value = self.root, self.value
        for index, segment in enumerate(path):
            if node is None:
                return None
            if is_item(segment):
                identity = identity_for(path[:index])
                if not isinstance(node, yaml.SequenceNode) or identity is None or not isinstance(value, list):
                    return None
                pairs = [(item, item_value) for item, item_value in zip(node.value, value, strict=True)
                         if f"[{identity(item_value)}]" == segment]
                if not pairs:
                    return None
                node, value = pairs[0]
                continue
            found = [(key, child) for name, key, child in entries(node) if name == segment]
            if not found or is_alias(*found[0]) or not isinstance(value, dict):
                return None
            node, value = found[0][1], value.get(segment)
        return node

    def digest(self, element: Element) -> str:
        """What a person may not have changed for the element to count as not edited since its import."""
        column = element.span.column if element.span else 0

        def own(line: int) -> str:
            text = body(self.lines[line])[column:] if indent(self.lines[line]) >= column else \
                body(self.lines[line]).lstrip(" ")
            return _EMPTY_LIST.sub(r"\1", text) if line in element.nested_keys else text

        text = "\n".join(own(line) for line in element.own_lines)
        return hashlib.sha256(text.rstrip().encode()).hexdigest()[:12]

    def unedited(self, element: Element, source: str) -> bool:
        return (element.stamp is not None and element.stamp.source == source
                and element.stamp.digest == self.digest(element))

    def under(self, path: Path) -> list[Element]:
        """The elements at `path` and below it."""
        return [element for found, element in self.elements.items() if found[:len(path)] == path]

    # --- finding the elements ---------------------------------------------------------------------------------

    def _walk(self, path: Path, node: yaml.Node | None, value: Any) -> Iterator[Element]:
        if isinstance(node, yaml.MappingNode) and isinstance(value, dict):
            for name, key, child in entries(node):
                if name not in value:
                    continue
                aliased = is_alias(key, child)

                def span(key: yaml.Node = key, child: yaml.Node = child, aliased: bool = aliased) -> Span | None:
                    if aliased or not self._own_line(key.start_mark.line, key.start_mark.column):
                        return None
                    return entry_span(self.lines, key, child)

                yield from self._visit((*path, name), span, None if aliased else child, value[name])
        elif isinstance(node, yaml.SequenceNode) and isinstance(value, list):
            identity = identity_for(path)
            if identity is None:
                return
            for item, item_value in zip(node.value, value, strict=True):

                def item_at(item: yaml.Node = item, block: bool = is_block(node)) -> Span | None:
                    return item_span(self.lines, item) if block else None

                yield from self._visit((*path, f"[{identity(item_value)}]"), item_at, item, item_value)

    def _visit(self, path: Path, span: Callable[[], Span | None], node: yaml.Node | None,
               value: Any) -> Iterator[Element]:
        rule = rule_for(path)
        if rule is not None:
            yield self._element(path, rule, span(), node, value)
        if node is not None and (rule is None or rule.nested):
            yield from self._walk(path, node, value)

    def _own_line(self, line: int, column: int) -> bool:
        return not body(self.lines[line])[:column].strip()

    def _element(self, path: Path, rule: Rule, span: Span | None, node: yaml.Node | None, value: Any) -> Element:
        if span is None:
            return Element(path, rule, value, None, (), None, ())
        stamp = None
        for line in span.lines:
            if line >= span.start:
                break
            found = _STAMP.match(body(self.lines[line]))
            if found:
                stamp = Stamp(line, found.group("source"), found.group("digest"))
        left_out = {stamp.line} if stamp else set()
        keys: set[int] = set()
        for name, key, child in entries(node) if node is not None else ():
            if name in rule.nested:
                whole = entry_span(self.lines, key, child)
                items = self._item_spans(child) if rule_for((*path, name)) is None else None
                if items is None:  # an element itself (a backup), or items written where lines cannot be told
                    left_out.update(whole.lines)
                    continue
                # Only the items are elements of their own: the key and anything else written among them (a
                # person's comment) stay this element's, or removing it would take them along unseen.
                left_out.update(line for item in items for line in item.lines)
                keys.add(key.start_mark.line)
        heading = tuple(body(self.lines[line]) for line in range(span.header, span.start + 1))
        return Element(path, rule, value, span, tuple(line for line in span.lines if line not in left_out), stamp,
                       heading, tuple(sorted(keys)))

    def _item_spans(self, node: yaml.Node) -> list[Span] | None:
        """A nested list's items' spans (none for `[]` or nothing), or None when one cannot be told by its lines."""
        if isinstance(node, yaml.ScalarNode) or (isinstance(node, yaml.SequenceNode) and not node.value):
            return []
        if not isinstance(node, yaml.SequenceNode) or not is_block(node):
            return None
        spans = [item_span(self.lines, item) for item in node.value]
        return None if any(span is None for span in spans) else spans  # type: ignore[return-value]
