"""`opsbot import --merge`: a draft's elements proposed into a catalog a person wrote, and a re-import's changes.

Not responsible for the draft (`draft`), the words of the report (`diffs`) nor for validating the catalog. Every
line a person wrote stays byte for byte: elements are added as blocks of the draft's own lines (provenance
comments included) at the end of the mapping or list they belong to. An element the catalog already has is changed
only when a previous import wrote it and nobody edited it since: its `# opsbot import: <source> <digest>` stamp
still matches its text (comments included). Everything else is reported, never rewritten.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import yaml

from bot.errors import ConfigError
from bot.importing.edits import Edit, apply, moved
from bot.importing.elements import (
    PENDING,
    Doc,
    Element,
    Path,
    Rule,
    identity_for,
    is_stamp,
    own_value,
    rule_for,
    stamp_line,
)
from bot.importing.yaml_spans import (
    Span,
    body,
    entries,
    entry_span,
    is_block,
    is_empty_flow,
    item_span,
    newline_of,
)


class Outcome(enum.Enum):
    ADDED = "added"
    UNCHANGED = "unchanged"  # a previous import's element the runbook still yields as it is
    KEPT_YOURS = "kept yours"  # the catalog has it, not from this runbook, and it differs
    UPDATED = "updated"  # changed in the runbook and not edited since its import: the change is proposed
    EDITED = "edited"  # changed in the runbook but edited since its import: reported only
    REMOVED = "removed"  # gone from the runbook and not edited since its import: its removal is proposed
    KEPT_REMOVED = "kept removed"  # gone from the runbook but edited since its import: reported only
    BY_HAND = "by hand"  # its place is written in a way lines cannot be added to without rewriting them


class Blocker(enum.Enum):
    ONE_LINE = "is written on one line (flow style or null)"
    ELSEWHERE = "is written elsewhere (an alias or a merge key)"


@dataclass(frozen=True)
class Finding:
    outcome: Outcome
    path: Path
    yours: Any = None  # the catalog's value (its own part, for a service)
    theirs: Any = None  # the runbook's value
    blocker: Blocker | None = None
    lines: tuple[str, ...] = ()  # BY_HAND: the draft's lines to add by hand


@dataclass(frozen=True)
class Merged:
    source: str
    before: str
    text: str
    findings: tuple[Finding, ...]

    def of(self, *outcomes: Outcome) -> list[Finding]:
        return [finding for finding in self.findings if finding.outcome in outcomes]


class Unmergeable(ConfigError):
    def __init__(self, name: str, problem: str, line: int | None = None) -> None:
        self.name, self.problem, self.line = name, problem, line
        super().__init__(f"{name}:{line}: {problem}" if line else f"{name}: {problem}")


def merge(catalog: str, draft: str, source: str, catalog_name: str = "catalog") -> Merged:
    """`draft` (an `opsbot import` draft of runbook `source`) proposed into `catalog`: the catalog's new text and
    what was done or left, element by element."""
    catalog_doc = _parse(catalog, catalog_name)
    draft_doc = _parse(stamped(draft, source), source)
    merging = _Merging(catalog_doc, draft_doc, source)
    if isinstance(draft_doc.root, yaml.MappingNode):
        merging.mapping((), catalog_doc.root, draft_doc.root)
    merging.removals()
    text = apply(catalog_doc.lines, merging.edits, merging.newline)
    return Merged(source, catalog, finish_stamps(text), tuple(merging.findings))


def stamped(text: str, source: str) -> str:
    """`text` with a pending stamp above each element it can hold one for (an earlier stamp replaced)."""
    doc = Doc(text)
    newline = newline_of(doc.lines)
    edits = []
    for element in doc.elements.values():
        if element.span is None:
            continue
        line = stamp_line(source, PENDING, element.span.column, newline)
        if element.stamp is not None:
            edits.append(Edit(element.stamp.line, element.stamp.line + 1, (line,)))
        else:
            edits.append(Edit(element.span.start, element.span.start, (line,), len(element.path)))
    return apply(doc.lines, edits, newline)


def finish_stamps(text: str) -> str:
    """Each pending stamp given the digest of its element as it now stands."""
    doc = Doc(text)
    newline = newline_of(doc.lines)
    edits = [Edit(element.stamp.line, element.stamp.line + 1,
                  (stamp_line(element.stamp.source, doc.digest(element), element.span.column, newline),))
             for element in doc.elements.values()
             if element.stamp is not None and element.stamp.digest == PENDING and element.span is not None]
    return apply(doc.lines, edits, newline)


def _parse(text: str, name: str) -> Doc:
    try:
        doc = Doc(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise Unmergeable(name, f"not valid YAML: {getattr(exc, 'problem', None) or exc}",
                          mark.line + 1 if mark else None) from None
    if doc.root is not None and not isinstance(doc.value, dict):
        raise Unmergeable(name, "not a catalog: its top level must be a mapping (services:, runbooks:, …)", 1)
    return doc


@dataclass
class _Merging:
    catalog: Doc
    draft: Doc
    source: str
    edits: list[Edit] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def newline(self) -> str:
        return newline_of(self.catalog.lines)

    # --- walking the draft ------------------------------------------------------------------------------------

    def mapping(self, path: Path, node: yaml.Node | None, draft: yaml.Node, only: tuple[str, ...] = ()) -> None:
        """The draft mapping `draft` at `path` into the catalog's (`node`, None when it is not written out)."""
        _, values = self.catalog.get(path)
        for name, key, child in entries(draft):
            if only and name not in only:
                continue
            sub = (*path, name)
            theirs = self.draft.get(sub)[1]
            if theirs in (None, {}, []):
                continue
            if not isinstance(values, dict) or name not in values:
                self.add(sub, node, self.draft_span(key, child))
                continue
            yours = values[name]
            here = self.catalog.node(sub)
            rule = rule_for(sub)
            if rule is not None:
                self.element(sub, rule, here, child, yours, theirs)
            elif yours in (None, {}, []):
                self.fill(sub, here, child)
            elif identity_for(sub) is not None and isinstance(yours, list) and isinstance(theirs, list):
                self.sequence(sub, here, child)
            elif isinstance(yours, dict) and isinstance(theirs, dict):
                self.mapping(sub, here, child)
            elif yours != theirs:
                self.findings.append(Finding(Outcome.KEPT_YOURS, sub, yours, theirs))

    def sequence(self, path: Path, node: yaml.Node | None, draft: yaml.Node) -> None:
        identity = identity_for(path)
        assert identity is not None and isinstance(draft, yaml.SequenceNode)
        items = self.draft.get(path)[1]
        for item, value in zip(draft.value, items, strict=True):
            sub = (*path, f"[{identity(value)}]")
            found, yours = self.catalog.get(sub)
            theirs = self.draft.get(sub)[1]
            if not found:
                self.add(sub, node, item_span(self.draft.lines, item) if is_block(draft) else None)
                continue
            rule = rule_for(sub)
            if rule is not None:
                self.element(sub, rule, self.catalog.node(sub), item, yours, theirs)
            elif yours != theirs:
                self.findings.append(Finding(Outcome.KEPT_YOURS, sub, yours, theirs))

    def element(self, path: Path, rule: Rule, node: yaml.Node | None, draft: yaml.Node, yours: Any,
                theirs: Any) -> None:
        """An element both have: kept, or (a previous import's, not edited since) brought up to the runbook's."""
        mine, coming = self.catalog.elements.get(path), self.draft.elements.get(path)
        ours, new = own_value(yours, rule), own_value(theirs, rule)
        from_here = mine is not None and mine.cites(self.source)
        if ours == new or (not from_here and _within(new, ours, rule)):
            if from_here:
                self.findings.append(Finding(Outcome.UNCHANGED, path, ours, new))
        elif mine is None or not from_here:
            if rule.nested and isinstance(ours, dict) and isinstance(new, dict):  # what the runbook says of it
                ours = {key: value for key, value in ours.items() if key in new}
            self.findings.append(Finding(Outcome.KEPT_YOURS, path, ours, new))
        elif not self.catalog.unedited(mine, self.source):
            self.findings.append(Finding(Outcome.EDITED, path, ours, new))
        elif mine.span is None or coming is None or coming.span is None or (
                rule.nested and not (node is not None and is_block(node) and is_block(draft))):
            self.by_hand(path, Blocker.ONE_LINE, coming.span if coming else None)
        else:
            if rule.nested:
                self.update_own_keys(mine, node, draft)
            else:
                self.replace(mine.span, coming.span)
            self.findings.append(Finding(Outcome.UPDATED, path, ours, new))
        if rule.nested and isinstance(draft, yaml.MappingNode):
            self.mapping(path, node, draft, only=rule.nested)

    # --- changing the catalog ---------------------------------------------------------------------------------

    def draft_span(self, key: yaml.Node, value: yaml.Node) -> Span | None:
        line = body(self.draft.lines[key.start_mark.line])
        return entry_span(self.draft.lines, key, value) if not line[:key.start_mark.column].strip() else None

    def block(self, span: Span, to: int) -> tuple[str, ...]:
        return moved(self.draft.lines[span.header:span.end + 1], span.column, to, self.newline)

    def add(self, path: Path, parent: yaml.Node | None, span: Span | None) -> None:
        """A part the catalog lacks, appended to the mapping or list at `path[:-1]` (`parent`)."""
        added = [Finding(Outcome.ADDED, element.path, theirs=element.value) for element in self.draft.under(path)]
        findings = added or [Finding(Outcome.ADDED, path, theirs=self.draft.get(path)[1])]
        place = self.place(path, parent)
        if span is None or isinstance(place, Blocker):
            self.by_hand(path, place if isinstance(place, Blocker) else Blocker.ONE_LINE, span)
            return
        line, column = place
        separator = (self.newline,) if len(path) == 1 and line > 0 and not _ends_blank(self.catalog.lines, line) \
            else ()
        self.edits.append(Edit(line, line, separator + self.block(span, column), len(path)))
        self.findings += findings

    def place(self, path: Path, parent: yaml.Node | None) -> tuple[int, int] | Blocker:
        """Where a new entry or item of `parent` goes (the line before which, its column)."""
        lines = self.catalog.lines
        if not path[:-1] and parent is None:  # an empty catalog (or comments only)
            return len(lines), 0
        if parent is None:
            return Blocker.ELSEWHERE
        if isinstance(parent, yaml.MappingNode) and is_block(parent):
            key, value = parent.value[-1]
            first = parent.value[0][0]
            return entry_span(lines, key, value).end + 1, first.start_mark.column
        if isinstance(parent, yaml.SequenceNode) and is_block(parent):
            spans = [item_span(lines, item) for item in parent.value]
            if any(span is None for span in spans):
                return Blocker.ONE_LINE
            return spans[-1].end + 1, spans[0].column  # type: ignore[union-attr]
        return Blocker.ONE_LINE

    def fill(self, path: Path, node: yaml.Node | None, draft: yaml.Node) -> None:
        """The catalog has `key:` with nothing (or `{}`, `[]`) under it: the draft's entries or items below it."""
        parent = self.catalog.node(path[:-1])
        found = [(key, value) for name, key, value in entries(parent)] if parent is not None else []
        pair = next(((key, value) for key, value in found if str(key.value) == path[-1]), None)
        spans = self.draft_children(draft)
        if pair is None or node is None or spans is None or not (is_empty_flow(node) or _nothing(node)):
            self.by_hand(path, Blocker.ONE_LINE if pair else Blocker.ELSEWHERE)
            return
        key, _ = pair
        row = key.start_mark.line
        line = self.catalog.lines[row]
        replaced = line
        if is_empty_flow(node):  # `checks: []`: the brackets go, the key and any comment stay
            start, end = node.start_mark, node.end_mark
            if start.line != row or end.line != row:
                self.by_hand(path, Blocker.ONE_LINE)
                return
            replaced = line[:start.column].rstrip(" ") + line[end.column:]
        if replaced == body(replaced):  # the file's last line, with no line break
            replaced += self.newline
        column = key.start_mark.column + 2
        new: tuple[str, ...] = ()
        for span in spans:
            new += self.block(span, column)
        self.edits.append(Edit(row, row + 1, (replaced, *new), len(path)))
        self.findings += [Finding(Outcome.ADDED, element.path, theirs=element.value)
                          for element in self.draft.under(path)] or [
            Finding(Outcome.ADDED, path, theirs=self.draft.get(path)[1])]

    def by_hand(self, path: Path, blocker: Blocker, span: Span | None = None) -> None:
        """Reported with the draft's lines for it (its entry or item; stamps left out: they are digested once
        written), for a person to add."""
        if span is None:
            parent, name = self.draft.node(path[:-1]), path[-1]
            found = [(key, value) for key_text, key, value in entries(parent) if key_text == name] \
                if parent is not None else []
            span = self.draft_span(*found[0]) if found else None
        lines = self.draft.lines[span.header:span.end + 1] if span else []
        self.findings.append(Finding(Outcome.BY_HAND, path, theirs=self.draft.get(path)[1], blocker=blocker,
                                     lines=tuple(body(line) for line in lines if not is_stamp(line))))

    def draft_children(self, draft: yaml.Node) -> list[Span] | None:
        if isinstance(draft, yaml.MappingNode) and is_block(draft):
            return [entry_span(self.draft.lines, key, value) for key, value in draft.value]
        if isinstance(draft, yaml.SequenceNode) and is_block(draft):
            spans = [item_span(self.draft.lines, item) for item in draft.value]
            return None if any(span is None for span in spans) else spans  # type: ignore[return-value]
        return None

    def replace(self, old: Span, new: Span) -> None:
        self.edits.append(Edit(old.header, old.end + 1, self.block(new, old.column)))

    def update_own_keys(self, mine: Element, node: yaml.Node | None, draft: yaml.Node) -> None:
        """A service's own keys made the runbook's, entry by entry: its checks and backup are elements of their own."""
        assert mine.span is not None and mine.stamp is not None and isinstance(node, yaml.MappingNode)
        yours = {name: (key, value) for name, key, value in entries(node)}
        theirs = {name: (key, value) for name, key, value in entries(draft)}
        nested = mine.rule.nested
        ours = self.catalog.get(mine.path)[1]
        new = self.draft.get(mine.path)[1]
        for name, (key, value) in theirs.items():
            if name in nested:
                continue
            span = self.draft_span(key, value)
            assert span is not None
            if name not in yours:
                line, column = self.place((*mine.path, name), node)  # type: ignore[misc]
                self.edits.append(Edit(line, line, self.block(span, column), len(mine.path) + 1))
            elif ours[name] != new[name]:
                self.replace(entry_span(self.catalog.lines, *yours[name]), span)
        for name, (key, value) in yours.items():
            if name not in nested and name not in theirs:
                old = entry_span(self.catalog.lines, key, value)
                self.edits.append(Edit(old.header, old.end + 1, ()))
        self.edits.append(Edit(mine.stamp.line, mine.stamp.line + 1,
                               (stamp_line(self.source, PENDING, mine.span.column, self.newline),)))

    # --- what the runbook no longer yields --------------------------------------------------------------------

    def removals(self) -> None:
        gone = [element for path, element in sorted(self.catalog.elements.items(), key=lambda pair: len(pair[0]))
                if element.cites(self.source) and not self.draft.has(path)]
        removed: list[Path] = []
        for element in gone:
            if any(element.path[:len(path)] == path for path in removed):
                continue  # inside an element already being removed
            inside = self.catalog.under(element.path)
            if element.span is not None and all(
                    part.span is not None and self.catalog.unedited(part, self.source)
                    and not self.draft.has(part.path) for part in inside):
                removed.append(element.path)
                self.findings.append(Finding(Outcome.REMOVED, element.path, yours=element.value))
            else:
                self.findings.append(Finding(Outcome.KEPT_REMOVED, element.path, yours=element.value))
        self.edits += self.cuts(removed)

    def cuts(self, removed: list[Path]) -> list[Edit]:
        """The removed elements' lines; a mapping or list left empty is written `{}` or `[]` on its key's line
        (`checks:` alone would not load), the key and its comments as they were."""
        by_parent: dict[Path, list[Path]] = {}
        for path in removed:
            by_parent.setdefault(path[:-1], []).append(path)
        edits = []
        for parent, paths in by_parent.items():
            node = self.catalog.node(parent)
            children = len(node.value) if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) else 0
            holder = self.catalog.node(parent[:-1])
            pair = next(((key, value) for name, key, value in entries(holder) if name == parent[-1]), None) \
                if holder is not None else None
            if children == len(paths) and pair is not None and not self.draft.get(parent)[1]:
                key = pair[0]
                line = self.catalog.lines[key.end_mark.line]
                colon = line.find(":", key.end_mark.column)
                empty = " []" if isinstance(node, yaml.SequenceNode) else " {}"
                if colon >= 0:
                    edits.append(Edit(key.end_mark.line, key.end_mark.line + 1,
                                      (line[:colon + 1] + empty + line[colon + 1:],)))
            for path in paths:
                span = self.catalog.elements[path].span
                assert span is not None
                edits.append(Edit(span.header, span.end + 1, ()))
        return edits


def _within(new: Any, ours: Any, rule: Rule) -> bool:
    """A service of yours that says all the runbook's says of it (and more of its own) does not differ."""
    return bool(rule.nested) and isinstance(new, dict) and isinstance(ours, dict) and all(
        key in ours and ours[key] == value for key, value in new.items())


def _nothing(node: yaml.Node) -> bool:
    """`key:` with nothing after it (not a written `null` or `~`, which lines cannot be added below)."""
    return isinstance(node, yaml.ScalarNode) and node.value == "" and not node.style  # libyaml's plain: ""


def _ends_blank(lines: list[str], line: int) -> bool:
    return line > 0 and not body(lines[line - 1]).strip()
