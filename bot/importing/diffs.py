"""The words of `opsbot import --merge`: the catalog's unified diff, and what happened to each element with the
small diff of its values. Not responsible for deciding anything (`merge`).
"""

from __future__ import annotations

import difflib
from typing import Any

import yaml

from bot.importing.elements import show
from bot.importing.merge import Finding, Merged, Outcome
from bot.importing.yaml_spans import body, split_lines

MAX_DIFF_LINES = 30

# Each outcome in words: `{path}` the element, `{source}` the runbook's file.
_WORDS: dict[Outcome, str] = {
    Outcome.ADDED: "added {path}",
    Outcome.UNCHANGED: "{path} unchanged",
    Outcome.KEPT_YOURS: "{path} exists and differs: kept yours",
    Outcome.UPDATED: "{path} changed in {source}: updated (not edited since the import)",
    Outcome.EDITED: "{path} changed in {source}, but was edited since the import: kept yours",
    Outcome.REMOVED: "{path} is no longer in {source}: removed (not edited since the import)",
    Outcome.KEPT_REMOVED: "{path} is no longer in {source}, but was edited since the import: kept",
    Outcome.BY_HAND: "{path} {blocker}: add it by hand",
}
_WITH_DIFF = frozenset({Outcome.KEPT_YOURS, Outcome.UPDATED, Outcome.EDITED, Outcome.BY_HAND})
_ORDER = (Outcome.ADDED, Outcome.KEPT_YOURS, Outcome.BY_HAND, Outcome.UPDATED, Outcome.EDITED, Outcome.REMOVED,
          Outcome.KEPT_REMOVED)
_REIMPORT = frozenset({Outcome.UNCHANGED, Outcome.UPDATED, Outcome.EDITED, Outcome.REMOVED, Outcome.KEPT_REMOVED})


def catalog_diff(merged: Merged, name: str) -> str:
    """The proposal as a unified diff of the catalog file (`patch name < diff` applies it); empty: nothing to do."""
    lines = difflib.unified_diff([body(line) for line in split_lines(merged.before)],
                                 [body(line) for line in split_lines(merged.text)],
                                 fromfile=name, tofile=name, lineterm="")
    text = "\n".join(lines)
    return text + "\n" if text else ""


class _Dumper(yaml.SafeDumper):
    """Multi-line text as `|` blocks, so a changed command shows as the line that changed."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _text)


def value_diff(yours: Any, theirs: Any) -> list[str]:
    """How the runbook's value differs from the catalog's, as YAML lines (`-` yours, `+` the runbook's)."""
    def dump(value: Any) -> list[str]:
        if value is None:
            return []
        return yaml.dump(value, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True,
                         width=100).splitlines()

    lines = [line for line in difflib.unified_diff(dump(yours), dump(theirs), lineterm="", n=1)
             if not line.startswith(("---", "+++"))]
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"… {len(lines) - MAX_DIFF_LINES} more lines"]
    return lines


def describe(merged: Merged, catalog_name: str) -> str:
    """What the merge added, kept, updated and left, element by element."""
    counts = {outcome: len(merged.of(outcome)) for outcome in Outcome}
    out = [f"--merge {catalog_name}: " + (", ".join(f"{counts[outcome]} {outcome.value}" for outcome in _ORDER
                                                    if counts[outcome] and outcome not in _REIMPORT)
                                          or "nothing new to add")]
    if any(counts[outcome] for outcome in _REIMPORT):
        out.append(f"re-import of {merged.source}: " + ", ".join(
            f"{counts[outcome]} {outcome.value}" for outcome in (Outcome.UNCHANGED, *_ORDER)
            if counts[outcome] and outcome in _REIMPORT))
    for outcome in _ORDER:
        for finding in merged.of(outcome):
            out += _finding(finding, merged.source)
    return "\n".join(out) + "\n"


def _finding(finding: Finding, source: str) -> list[str]:
    blocker = finding.blocker.value if finding.blocker else ""
    out = ["  " + _WORDS[finding.outcome].format(path=show(finding.path), source=source, blocker=blocker)]
    if finding.lines:
        out += ["      " + line for line in finding.lines]
    elif finding.outcome in _WITH_DIFF:
        out += ["      " + line for line in value_diff(finding.yours, finding.theirs)]
    return out
