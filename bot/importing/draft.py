"""A runbook file → a catalog `runbooks:` draft (YAML with each element's provenance as a comment) and its report.

Not responsible for parsing (`markdown`, `shell`) nor for mapping one command (`recognise`); the draft carries no
`approvals`, so every runbook lands behind the catalog's policy for its services.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from bot.importing.markdown import Procedure, procedures
from bot.importing.recognise import Mapped, Step, recognise
from bot.importing.services import Services
from bot.importing.shell import statements

MAX_STEPS = 40  # the catalog's limit on a runbook's steps
_NARRATION = frozenset({"echo", "printf"})
_BRACES = re.compile(r"([{}])(?=[{}])")
_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class ImportedRunbook:
    name: str
    procedure: Procedure
    mapped: tuple[Mapped, ...]
    services: tuple[str, ...]
    steps: tuple[tuple[Step, str], ...]  # each step with its provenance comment
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Draft:
    source: str  # the file's name, as provenance comments cite it
    runbooks: tuple[ImportedRunbook, ...]
    skipped: tuple[str, ...]  # what was not imported, and why

    @property
    def mapped(self) -> list[Mapped]:
        return [item for runbook in self.runbooks for item in runbook.mapped]


def import_runbook(text: str, source: str, services: tuple[str, ...] = ()) -> Draft:
    known = Services(services)
    names: set[str] = set()
    runbooks, skipped = [], []
    for procedure in procedures(text):
        mapped: list[Mapped] = []
        for block in procedure.blocks:
            if block.is_shell:
                mapped += _in_block(block.text, block.first_line, source, known)
            elif block.language in ("sql", "psql", "mysql"):
                last = block.first_line + max(block.text.count("\n") - 1, 0)
                mapped.append(Mapped(block.first_line, last, block.text.rstrip("\n"), "",
                                     manual=f"a {block.language} block: statements for a person to run (or to write "
                                            "as sql steps)"))
            else:
                skipped.append(f"{source}:{block.first_line}: a {block.language or 'plain'} block under "
                               f"{procedure.title!r} is not a command block")
        if not mapped:
            continue
        name = _unique(_slug(procedure.title) or "imported", names)
        runbook = _runbook(name, procedure, mapped, source, services)
        if runbook is None:
            skipped.append(f"{source}:{procedure.line}: {procedure.title!r} names no service: give --service")
            continue
        runbooks.append(runbook)
    return Draft(source, tuple(runbooks), tuple(skipped))


def _in_block(text: str, first_line: int, source: str, known: Services) -> list[Mapped]:
    """The block's statements mapped; after an interactive session opens, the rest is typed into it by a person."""
    found: list[Mapped] = []
    opened: Mapped | None = None
    for statement in statements(text, first_line):
        if statement.commands and statement.commands[0].program in _NARRATION and len(statement.commands) == 1:
            continue  # `echo "Checking…"` narrates the script: not a step
        item = recognise(statement, known)
        if opened is not None:
            item = dataclasses.replace(item, steps=(), parameters={}, session=False,
                                       manual=f"typed into the session opened at {source}:{opened.first_line}")
        elif item.session:
            opened = item
        found.append(item)
    return found


def _slug(title: str) -> str:
    return _SLUG.sub("-", title.lower()).strip("-")[:50].strip("-")


def _unique(name: str, taken: set[str]) -> str:
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name}-{number}", number + 1
    taken.add(candidate)
    return candidate


def _runbook(name: str, procedure: Procedure, mapped: list[Mapped], source: str,
             known: tuple[str, ...]) -> ImportedRunbook | None:
    steps: list[tuple[Step, str]] = []
    parameters: dict[str, dict[str, Any]] = {}
    manual: list[Mapped] = []  # consecutive manual statements become one manual step

    def flush() -> None:
        if manual:
            # The catalog reads `{{ … }}` as a template: a Go template in a command (`--format '{{.Name}}'`) is
            # spaced apart so the text stays text.
            text = _BRACES.sub(r"\1 ", "\n".join(item.text for item in manual))
            step: Step = {"kind": "manual", "instructions": text}
            if manual[0].comment:
                step["name"] = manual[0].comment[:120]
            steps.append((step, f"{_lines(source, manual[0].first_line, manual[-1].last_line)} manual: "
                                + "; ".join(dict.fromkeys(item.manual or "" for item in manual))))
            manual.clear()

    for item in mapped:
        if item.manual is not None:
            manual.append(item)
            continue
        flush()
        parameters.update(item.parameters)
        for step in item.steps:
            if item.comment and len(item.steps) == 1:
                step = {"name": item.comment[:120], **step}
            steps.append((step, f"{_lines(source, item.first_line, item.last_line)} recognised: "
                                + item.text.replace("\n", " ")[:100]))
    flush()
    services = sorted({service for item in mapped for service in item.services})
    if not services:
        if not known:
            return None
        services = list(known)
    return ImportedRunbook(name, procedure, tuple(mapped), tuple(services), tuple(steps[:MAX_STEPS]), parameters)


def _lines(source: str, first: int, last: int) -> str:
    return f"{source}:{first}" if first == last else f"{source}:{first}-{last}"


# --- YAML --------------------------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    pass


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _text)


def _flow(value: Any) -> str:
    return yaml.dump(value, Dumper=_Dumper, default_flow_style=True, sort_keys=False, width=10**6,
                     allow_unicode=True).strip()


def _block(value: Any, indent: int) -> list[str]:
    text = yaml.dump(value, Dumper=_Dumper, default_flow_style=False, sort_keys=False, width=10**6,
                     allow_unicode=True)
    return [" " * indent + line for line in text.rstrip("\n").splitlines()]


def render(draft: Draft) -> str:
    """The `runbooks:` fragment: merge it under a catalog that defines the services it names."""
    out = [f"# Imported from {draft.source} by `opsbot import`: review every step before merging.",
           "# No runbook sets `approvals`: each runs under the catalog's policy for its services.", "runbooks:"]
    for runbook in draft.runbooks:
        procedure = runbook.procedure
        recognised = sum(1 for step, _ in runbook.steps if step["kind"] != "manual")
        out.append(f"  # {draft.source}:{procedure.line} {procedure.title!r}: {recognised} of {len(runbook.steps)} "
                   "steps recognised")
        out.append(f"  {runbook.name}:")
        out.append(f"    description: {json.dumps(('Imported from ' + procedure.title)[:300], ensure_ascii=False)}")
        out.append(f"    services: {_flow(list(runbook.services))}")
        if runbook.parameters:
            out.append("    parameters:")
            out += [f"      {name}: {_flow(value)}" for name, value in runbook.parameters.items()]
        out.append("    steps:")
        for step, provenance in runbook.steps:
            comment = "  # " + provenance.replace("\n", " ")
            if any(isinstance(value, str) and "\n" in value for value in step.values()):
                lines = _block(step, 8)
                out.append("      -" + lines[0][7:] + comment)
                out += lines[1:]
            else:
                out.append(f"      - {_flow(step)}{comment}")
    return "\n".join(out) + "\n"


def report(draft: Draft) -> str:
    """What became what, what stayed manual and why, and what a person must decide."""
    mapped = draft.mapped
    recognised = [item for item in mapped if item.manual is None]
    out = [(f"{draft.source}: {len(draft.runbooks)} runbook(s) from {len(mapped)} command(s): {len(recognised)} "
            f"recognised, {len(mapped) - len(recognised)} manual")]
    for runbook in draft.runbooks:
        out.append(f"\n{runbook.name} ({draft.source}:{runbook.procedure.line} {runbook.procedure.title})")
        for item in runbook.mapped:
            where = _lines(draft.source, item.first_line, item.last_line)
            first = item.text.splitlines()[0] if item.text else ""
            if item.manual is None:
                kinds = ", ".join(f"{step['kind']}" + (f" {step['service']}" if "service" in step else "")
                                  for step in item.steps)
                out.append(f"  {where}: {first[:70]} → {kinds}")
            else:
                out.append(f"  {where}: {first[:70]} → manual: {item.manual}")
            out += [f"      decide: {note}" for note in item.decisions]
    if draft.skipped:
        out.append("\nnot imported:")
        out += [f"  {line}" for line in draft.skipped]
    return "\n".join(out) + "\n"
