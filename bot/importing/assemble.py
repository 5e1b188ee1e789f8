"""The items read from a runbook's procedures → the draft: its services (each with its target, merged checks, backup
with retention and schedule), its runbooks (steps in the text's order, consecutive manual lines as one step), and
each procedure's result.

Not responsible for reading commands (`script`, `recognise`) nor for writing YAML (`render`); whether the draft
loads is checked by `draft` against the catalog loader.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from bot.importing import crontabs
from bot.importing.context import Context
from bot.importing.markdown import Procedure
from bot.importing.model import (
    EVERY_KUBERNETES_SERVICE,
    HIGH,
    BackupFinding,
    CheckFinding,
    CronFinding,
    Draft,
    DraftService,
    Found,
    ImportedRunbook,
    Lines,
    Mapped,
    PlacedCheck,
    PlacedStep,
    ProcedureResult,
    Reading,
    RetentionFinding,
    ServicePart,
    Step,
    TargetHint,
)
from bot.importing.script import Scripts

MAX_STEPS = 40  # the catalog's limit on a runbook's steps
MAX_INSTRUCTIONS = 2800  # …and on a manual step's text
_BRACES = re.compile(r"([{}])(?=[{}%])")  # `{{`, `}}`, `{%`: what the catalog reads as a template
_SLUG = re.compile(r"[^a-z0-9]+")
_NEEDS_TARGET = frozenset({"restart", "stop", "start", "deploy", "rollback", "scale", "collect-logs", "exec"})
_NEEDS_BACKUP = frozenset({"backup", "restore", "retention"})


def assemble(source: str, readings: list[Reading], scripts: Scripts, context: Context,
             skipped: Iterable[str] = ()) -> Draft:
    readings = crontabs.joined(readings, scripts, context)
    services = _services(readings)
    notes: list[str] = []
    runbooks: list[ImportedRunbook] = []
    results: list[ProcedureResult] = []
    names: set[str] = set()
    crons = {id(item): cron for reading in readings for item in reading.items for cron in item.found.crons}
    scheduled = crontabs.runbooks(readings, scripts, crons)
    for reading in readings:
        items = tuple(_feasible(item, services) for item in reading.items)
        name = _unique(_slug(reading.procedure.title) or "imported", names)
        runbook = _runbook(name, reading.procedure, items, services, context)
        if runbook is not None and id(reading) in scheduled:
            runbook = replace(runbook, schedule=scheduled[id(reading)], schedule_note=crontabs.note(runbook))
        if runbook is None and any(item.steps for item in items):
            notes.append(f"{source}:{reading.procedure.line} {reading.procedure.title!r}: no runbook (no service "
                         "is named anywhere in the runbook)")
        if runbook is not None:
            runbooks.append(runbook)
        else:
            names.discard(name)
        results.append(_result(reading.procedure, items, runbook))
    return Draft(source, tuple(runbooks), tuple(skipped), tuple(services.values()), tuple(results), tuple(notes))


# --- services ----------------------------------------------------------------------------------------------------


def _services(readings: list[Reading]) -> dict[str, DraftService]:
    first: dict[str, Lines] = {}
    hints: dict[str, list[tuple[TargetHint, Lines]]] = {}
    findings: list[tuple[CheckFinding, Lines]] = []
    backups: dict[str, list[tuple[BackupFinding, Lines]]] = {}
    retention: list[RetentionFinding] = []
    schedules: dict[str, CronFinding] = {}
    parts: dict[str, dict[str, ServicePart]] = {}
    for reading in readings:
        for item in reading.items:
            found = item.found
            named = [*(hint.service for hint in found.targets), *(step.get("service") for step in found.steps),
                     *(f.service for f in found.checks), *(b.service for b in found.backups),
                     *(p.get("service") for p in found.parameters.values())]
            for service in named:
                if isinstance(service, str) and service != EVERY_KUBERNETES_SERVICE:
                    first.setdefault(service, item.lines)
            for hint in found.targets:
                hints.setdefault(hint.service, []).append((hint, item.lines))
            findings += [(finding, item.lines) for finding in found.checks]
            for backup in found.backups:
                backups.setdefault(backup.service, []).append((backup, item.lines))
            retention += found.retention
            for part in found.parts:
                first.setdefault(part.service, item.lines)
                known = parts.setdefault(part.service, {})
                before = known.get(part.key)
                known[part.key] = part if before is None else replace(before, data={**part.data, **before.data})
            for service, cron in _backup_schedules(found):
                schedules.setdefault(service, cron)
    kubernetes = [name for name in first if any(h.target["type"] == "kubernetes" for h, _ in hints.get(name, []))]
    checks: dict[str, dict[tuple[Any, ...], PlacedCheck]] = {}
    for finding, lines in findings:
        for service in (kubernetes if finding.service == EVERY_KUBERNETES_SERVICE else [finding.service]):
            if finding.check["type"] == "kubernetes-pods" and service not in kubernetes:
                continue
            placed = checks.setdefault(service, {})
            placed[finding.key] = _merge(placed.get(finding.key), finding, lines)
    out: dict[str, DraftService] = {}
    for name, lines in first.items():
        target = _best(hints.get(name, []))
        chosen = _best_backup(backups.get(name, []))
        kept = next((r for r in retention if chosen is not None and _under(chosen[0].backup["directory"], r.directory)),
                    None)
        out[name] = DraftService(
            name, lines, target[0] if target else None, target[1] if target else None,
            _unique_names(list(checks.get(name, {}).values())), chosen[0] if chosen else None,
            tuple(lines for _, lines in backups.get(name, [])), kept, schedules.get(name),
            tuple(parts.get(name, {}).values()))
    return out


def _backup_schedules(found: Found) -> list[tuple[str, CronFinding]]:
    return [(backup.service, cron) for cron in found.crons for backup in found.backups]


def _best(hints: list[tuple[TargetHint, Lines]]) -> tuple[TargetHint, Lines] | None:
    if not hints:
        return None
    return max(hints, key=lambda pair: (pair[0].sure.level.rank, -hints.index(pair)))


def _best_backup(found: list[tuple[BackupFinding, Lines]]) -> tuple[BackupFinding, Lines] | None:
    """The surest backup; directory backups into one directory are one, of all their paths."""
    if not found:
        return None
    best, lines = max(found, key=lambda pair: (pair[0].sure.level.rank, -found.index(pair)))
    if best.backup["type"] == "directory":
        paths = list(dict.fromkeys(path for finding, _ in found if finding.backup["type"] == "directory"
                                   and finding.backup["directory"] == best.backup["directory"]
                                   for path in finding.backup["paths"]))
        best = replace(best, backup={**best.backup, "paths": paths})
    return best, lines


def _under(path: str, directory: str) -> bool:
    path, directory = posixpath.normpath(path), posixpath.normpath(directory)
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _merge(placed: PlacedCheck | None, finding: CheckFinding, lines: Lines) -> PlacedCheck:
    if placed is None:
        return PlacedCheck(dict(finding.check), (lines,), finding.sure, finding.complete, finding.missing)
    check = dict(placed.check)
    new = finding.check
    if new.get("type") == "http-json" and check.get("type") == "http":
        check = {**check, "type": "http-json"}
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(check.get(key), dict):
            check[key] = {**value, **check[key]}  # levels and fields the first did not say
        elif key not in check:
            check[key] = value
    complete = placed.complete or finding.complete
    sure = placed.sure if placed.complete or not finding.complete else finding.sure
    return PlacedCheck(check, (*placed.lines, lines), sure, complete, "" if complete else placed.missing)


def _unique_names(checks: list[PlacedCheck]) -> tuple[PlacedCheck, ...]:
    seen: set[str] = set()
    out = []
    for placed in checks:
        name, number = placed.check["name"], 2
        while name in seen:
            name, number = f"{placed.check['name'][:76]} ({number})", number + 1
        seen.add(name)
        out.append(placed if name == placed.check["name"] else replace(placed, check={**placed.check, "name": name}))
    return tuple(out)


def check_name(service: DraftService, finding: CheckFinding) -> str | None:
    """The name the service's merged check for `finding` has in the draft (None when it was dropped)."""
    for placed in service.checks:
        if placed.complete and placed.check["type"] == _kind(finding) and _same(placed, finding):
            return str(placed.check["name"])
    return None


def _kind(finding: CheckFinding) -> str:
    return "http-json" if finding.check["type"] == "http" and "fields" in finding.check else finding.check["type"]


def _same(placed: PlacedCheck, finding: CheckFinding) -> bool:
    fields = ("url", "query", "paths", "pattern", "address", "host")
    return all(placed.check.get(field) == finding.check.get(field) for field in fields)


# --- runbooks ----------------------------------------------------------------------------------------------------


def _feasible(item: Mapped, services: dict[str, DraftService]) -> Mapped:
    """A recognised item whose steps the draft's services cannot take (no target, no backup) is a manual step."""
    found = item.found
    if found.manual is not None or not (found.steps or found.retention):
        return item
    for step in found.steps:
        service = services.get(step.get("service", ""))
        kind = step["kind"]
        if step.get("service") == EVERY_KUBERNETES_SERVICE:
            if not any(s.target and s.target.target["type"] == "kubernetes" for s in services.values()):
                return _downgrade(item, "no Kubernetes deployment is named in the runbook to check the pods of")
            continue
        if service is None:
            continue
        if kind in _NEEDS_TARGET and service.target is None:
            return _downgrade(item, f"{kind} needs to know where {service.name} runs, and no command says (a "
                                    "compose service, container or deployment)")
        if kind == "check" and not any(placed.complete for placed in service.checks):
            return _downgrade(item, f"a check step needs {service.name}'s checks, and none was recognised")
        if kind == "maintenance" and not any(part.key == "maintenance" for part in service.parts):
            return _downgrade(item, f"maintenance needs to know how {service.name} turns it on")
        if kind in _NEEDS_BACKUP and service.backup is None:
            return _downgrade(item, f"{kind} needs {service.name}'s backup, and no command in the runbook takes one")
        if kind == "restore" and service.backup is not None and service.backup.backup["type"] == "redis":
            return _downgrade(item, "opsbot does not restore Redis (it reads an RDB file only as it starts)")
    if found.retention and not found.steps:
        kept = [s.name for s in services.values() if s.backup is not None and any(
            _under(s.backup.backup["directory"], r.directory) for r in found.retention)]
        if not kept:
            directories = ", ".join(r.directory for r in found.retention)
            return _downgrade(item, f"deletes old files in {directories}: no backup in the draft is kept there")
        return replace(item, found=replace(found, steps=tuple({"kind": "retention", "service": name}
                                                              for name in kept)))
    return item


def _downgrade(item: Mapped, why: str) -> Mapped:
    return replace(item, found=Found(manual=why, decisions=item.found.decisions, checks=item.found.checks,
                                     targets=item.found.targets))


def _runbook(name: str, procedure: Procedure, items: tuple[Mapped, ...], services: dict[str, DraftService],
             context: Context) -> ImportedRunbook | None:
    placed: list[PlacedStep] = []
    parameters: dict[str, dict[str, Any]] = {}
    pending: list[Mapped] = []

    def flush() -> None:
        if any(item.text.strip(" \t\n\\") for item in pending):  # `\` line continuations alone: nothing to do
            placed.append(_manual_step(pending))
        pending.clear()

    gated: set[str] = set()  # check steps since the last step that changes something: one gate each is enough
    for item in items:
        if item.found.manual is not None:
            if not item.control or pending:
                pending.append(item)
            continue
        if not item.steps:
            continue
        flush()
        renamed = _parameters(item.found.parameters, parameters)
        for step in item.steps:
            for one in _expand(step, item, services):
                one = _rename(one, renamed)
                if one["kind"] == "retention" and any(placed_step.step == one for placed_step in placed):
                    continue  # a second `find -delete` of the same backups
                if one["kind"] == "check":
                    key = repr((one["service"], one.get("checks")))
                    if key in gated:
                        continue
                    gated.add(key)
                elif one["kind"] not in ("query", "collect-logs", "wait") and not one.get("read_only"):
                    gated.clear()
                if item.comment and len(item.steps) == 1 and "name" not in one:
                    one = {"name": item.comment[:120], **one}
                placed.append(PlacedStep(one, item.lines, "recognised: " + " ".join(item.text.split())[:100],
                                         item.found.sure, item.text))
    flush()
    if not placed:
        return None
    touched = list(dict.fromkeys(str(p.step["service"]) for p in placed if "service" in p.step))
    touched += [str(spec["service"]) for spec in parameters.values() if spec.get("type") == "backup"
                and spec["service"] not in touched]
    if not touched:
        fallback = context.app if context.app in services else next(iter(services), None)
        if fallback is None:
            return None
        touched = [fallback]
    return ImportedRunbook(name, procedure, items, tuple(touched), tuple(placed[:MAX_STEPS]), parameters)


def _expand(step: Step, item: Mapped, services: dict[str, DraftService]) -> list[Step]:
    """A gate on every deployment's pods, one step each; a check step gating on the check's name in the draft."""
    if step.get("service") == EVERY_KUBERNETES_SERVICE:
        return [{**step, "service": s.name} for s in services.values()
                if s.target is not None and s.target.target["type"] == "kubernetes"]
    if step["kind"] == "check" and "checks" in step:
        service = services.get(step["service"])
        names = []
        for finding in item.found.checks:
            if finding.service in (step["service"], EVERY_KUBERNETES_SERVICE) and service is not None:
                found = check_name(service, finding)
                if found is not None:
                    names.append(found)
        if names:
            return [{**step, "checks": list(dict.fromkeys(names))}]
        return [{key: value for key, value in step.items() if key != "checks"}]
    return [step]


def _parameters(new: dict[str, dict[str, Any]], taken: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Add an item's parameters; a name already taken by a different one is renamed (old → new returned)."""
    renamed = {}
    for name, spec in new.items():
        final, number = name, 2
        while final in taken and taken[final] != spec:
            suffix = _SLUG.sub("_", str(spec.get("service", number))).strip("_")
            final = f"{name}_{suffix}"[:40] if f"{name}_{suffix}"[:40] not in taken else f"{name}_{number}"
            number += 1
        taken[final] = spec
        if final != name:
            renamed[name] = final
    return renamed


def _rename(step: Step, renamed: dict[str, str]) -> Step:
    if not renamed:
        return step

    def one(value: Any) -> Any:
        if isinstance(value, str):
            for old, new in renamed.items():
                value = value.replace(f"params.{old} ", f"params.{new} ")
            return value
        if isinstance(value, list):
            return [one(v) for v in value]
        return value

    return {key: one(value) for key, value in step.items()}


def _manual_step(items: list[Mapped]) -> PlacedStep:
    text = as_text("\n".join(item.text for item in items))
    lines = Lines(items[0].lines.source, items[0].lines.first, items[-1].lines.last)
    if len(text) > MAX_INSTRUCTIONS:
        text = text[:MAX_INSTRUCTIONS - 60].rstrip() + f"\n… (the rest: {lines})"
    step: Step = {"kind": "manual", "instructions": text}
    comment = next((item.comment for item in items if item.comment), "")
    if comment:
        step["name"] = comment[:120]
    reasons = "; ".join(dict.fromkeys(item.found.manual or "" for item in items if not item.control))
    return PlacedStep(step, lines, "manual: " + (reasons or "the outcome test of a manual step"), HIGH, text)


def as_text(text: str) -> str:
    """A manual step's text as the catalog keeps it: a Go template in a command (`--format '{{.Name}}'`) or a Jinja
    tag is spaced apart (`{ {.Name} }`), as the catalog reads `{{ … }}` and `{% … %}` as templates."""
    return _BRACES.sub(r"\1 ", text)


def _result(procedure: Procedure, items: tuple[Mapped, ...], runbook: ImportedRunbook | None) -> ProcedureResult:
    commands = [item for item in items if not item.control]
    recognised = [item for item in commands if item.elements]
    return ProcedureResult(procedure, len(commands), len(recognised), runbook.name if runbook else None,
                           sum(1 for item in items for finding in item.found.checks if finding.complete),
                           sum(len(item.found.backups) for item in items), items)


def _slug(title: str) -> str:
    return _SLUG.sub("-", title.lower()).strip("-")[:50].strip("-")


def _unique(name: str, taken: set[str]) -> str:
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name}-{number}", number + 1
    taken.add(candidate)
    return candidate
