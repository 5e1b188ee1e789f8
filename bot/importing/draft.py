"""A runbook file → a catalog draft (services, checks, backups, runbooks, schedules) and its report: read twice
(first for what the file says about its services as a whole, then each command with that), assembled, and held
to the catalog loader — an element the loader refuses becomes a manual step or is left out, and the report says so.

Not responsible for parsing (`markdown`, `shell`), one command (`recognise`) nor the YAML (`render`). Nothing here
runs a command or connects anywhere.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from typing import Any

from bot.catalog_loading import CatalogInvalid, parse_catalog
from bot.importing import sql
from bot.importing.argv import option
from bot.importing.assemble import as_text, assemble
from bot.importing.context import Context, application, most_common
from bot.importing.markdown import Procedure, procedures
from bot.importing.model import Draft, Found, ImportedRunbook, Lines, Mapped, PlacedStep, Reading, medium
from bot.importing.render import render, report
from bot.importing.script import Scripts, read
from bot.importing.services import Services
from bot.importing.shell import Statement, looks_like_shell, statements

__all__ = ["Draft", "import_runbook", "render", "report"]
_SQL_BLOCKS = frozenset({"sql", "psql", "mysql", "postgresql"})
_DECLARED = re.compile(r"^(?:#!.*\n)?\s*#\s*(/[\w./-]+\.sh)\b")  # a block that starts `# /srv/app/backup.sh (…)`
_ROUNDS = 6  # refusals fixed per round: each round can only make the draft smaller


def import_runbook(text: str, source: str, services: tuple[str, ...] = ()) -> Draft:
    found = procedures(text)
    known = Services(services)
    # Read three times: what one command means depends on the file as a whole (which service runs MySQL, where the
    # backups go, which scripts take them), and the second reading knows the services by their final names.
    first, scripts, _ = _read(found, Context(source, known))
    second, scripts, _ = _read(found, _context(first, scripts, found, source, known))
    draft = _draft(found, _context(second, scripts, found, source, known), source)
    return _loadable(draft)


def _draft(found: list[Procedure], context: Context, source: str) -> Draft:
    readings, scripts, skipped = _read(found, context)
    return assemble(source, readings, scripts, context, skipped)


def _read(found: list[Procedure], context: Context) -> tuple[list[Reading], Scripts, list[str]]:
    scripts = Scripts()
    readings: list[Reading] = []
    skipped: list[str] = []
    for procedure in found:
        items: list[Mapped] = []
        for block in procedure.blocks:
            if block.is_shell and (block.language or looks_like_shell(block.text)):
                block_items = read(block.text, block.first_line, context, scripts)
                declared = _DECLARED.match(block.text)
                if declared and block_items:
                    scripts.by_path.setdefault(declared.group(1), block_items)
                items += block_items
            elif block.language in _SQL_BLOCKS:
                items += _sql(block.text, block.first_line, block.language, context)
            else:
                skipped.append(f"{context.source}:{block.first_line}: a {block.language or 'plain'} block under "
                               f"{procedure.title!r} is not a command block")
        if items:
            readings.append(Reading(procedure, tuple(items)))
    return readings, scripts, skipped


def _sql(code: str, first_line: int, language: str, context: Context) -> list[Mapped]:
    """A ```sql block: a query or sql step per statement, on the database the runbook uses."""
    resolved, engine = context.database({"mysql": "mysql", "psql": "postgres", "postgresql": "postgres"}.get(language))
    out = []
    for statement in sql.split(code, first_line):
        lines = Lines(context.source, statement.first_line, statement.last_line)
        if resolved.service is None:
            found = Found(manual=f"SQL for a database the import cannot tell: {resolved.why}")
        else:
            sure = medium(resolved.why) if resolved.why else medium(f"the runbook's {engine} database, "
                                                                    f"{resolved.service}")
            found = sql.step(statement, resolved.service, engine, sure)
        out.append(Mapped(lines, statement.written, "", found))
    return out


def _context(first: list[Reading], scripts: Scripts, found: list[Procedure], source: str, known: Services) -> Context:
    """What the whole file says: the application, where each database runs, the compose project, the namespace."""
    named: list[str] = []
    engines: Counter[tuple[str, str]] = Counter()
    for reading in first:
        for item in reading.items:
            found_ = item.found
            named += [hint.service for hint in found_.targets]
            named += [str(step["service"]) for step in found_.steps if isinstance(step.get("service"), str)]
            for finding in found_.checks:
                if finding.check["type"] in ("postgres", "mysql", "redis", "rabbitmq", "memcached"):
                    engines[(finding.check["type"], finding.service)] += 1
            for backup in found_.backups:
                if backup.backup["type"] in ("postgres", "mysql", "redis"):
                    engines[(backup.backup["type"], backup.service)] += 1
            for step in found_.steps:
                if step["kind"] in ("query", "sql") and isinstance(step.get("service"), str):
                    engines[(step.get("engine", "postgres"), step["service"])] += 1
    projects, namespaces = _platform(found)
    by_engine: dict[str, str] = {}
    for (engine, service), _ in engines.most_common():
        by_engine.setdefault(engine, service)
    directories: dict[str, list[str]] = {}
    for reading in first:
        for item in reading.items:
            for backup in item.found.backups:
                services = directories.setdefault(backup.backup["directory"], [])
                if backup.service not in services:
                    services.append(backup.service)
    taken = {path: tuple(dict.fromkeys(b.service for item in items for b in item.found.backups))
             for path, items in scripts.by_path.items()}
    return Context(source, known, application(named), by_engine, most_common(projects), most_common(namespaces),
                   tuple(dict.fromkeys(named)), {key: tuple(value) for key, value in directories.items()},
                   {path: services for path, services in taken.items() if services})


def _platform(found: list[Procedure]) -> tuple[list[str], list[str]]:
    projects: list[str] = []
    namespaces: list[str] = []
    for procedure in found:
        for block in procedure.blocks:
            if not block.is_shell:
                continue
            for statement in _all(statements(block.text, block.first_line)):
                for command in statement.commands:
                    words = command.words
                    if command.program == "docker-compose" or words[1:2] == ("compose",):
                        project = option(list(words), "-p", "--project-name")
                        file = option(list(words), "-f", "--file")
                        if project is None and file is not None and "/" in file and "$" not in file:
                            project = file.rstrip("/").rsplit("/", 2)[-2] or None
                        projects.append(project or "")
                    if command.program == "kubectl":
                        namespace = option(list(words), "-n", "--namespace") or ""
                        namespaces.append(namespace if re.fullmatch(r"[a-z0-9][a-z0-9-]*", namespace) else "")
    return [p for p in projects if p and re.fullmatch(r"[a-z0-9][a-z0-9_-]*", p)], namespaces


def _all(found: list[Statement]) -> list[Statement]:
    out: list[Statement] = []
    for statement in found:
        out.append(statement)
        if statement.test is not None:
            out += _all([*statement.test.then_body, *statement.test.else_body])
        if statement.condition is not None:
            out.append(statement.condition)
        out += _all(list(statement.loop))
        if statement.body:
            out += _all(statements(statement.body, statement.body_line))
    return out


# --- held to the loader -------------------------------------------------------------------------------------------

_CHECK = re.compile(r"^services\.([^.\[]+)\.checks\[(\d+)\]")
_PART = re.compile(r"^services\.([^.\[]+)\.(target|backup)\b")
_STEP = re.compile(r"^runbooks\.([^.\[]+)\.steps\[(\d+)\]")
_PARAMETER = re.compile(r"^runbooks\.([^.\[]+)\.parameters\.([^.\[]+)")


def _loadable(draft: Draft) -> Draft:
    """The draft as the catalog loader accepts it: each refused element dropped, or its step made manual."""
    for _ in range(_ROUNDS):
        try:
            parse_catalog(render(draft), draft.source)
        except CatalogInvalid as exc:
            fixed = _without(draft, [(problem.path, problem.message) for problem in exc.problems])
            if fixed is draft:
                return replace(draft, notes=(*draft.notes, *(f"the catalog loader refuses: {problem.render('draft')}"
                                                             for problem in exc.problems)))
            draft = fixed
            continue
        return draft
    return draft


def _without(draft: Draft, problems: list[tuple[str, str]]) -> Draft:
    services = {service.name: service for service in draft.services}
    runbooks = {runbook.name: runbook for runbook in draft.runbooks}
    notes = list(draft.notes)
    changed = False
    for path, message in problems:
        note = f"left out of the draft, as the catalog refuses it: {path}: {message}"
        if (match := _CHECK.match(path)) and match.group(1) in services:
            service = services[match.group(1)]
            complete = [placed for placed in service.checks if placed.complete]
            index = int(match.group(2))
            if index < len(complete):
                services[service.name] = replace(service, checks=tuple(p for p in service.checks
                                                                       if p is not complete[index]))
                notes.append(note)
                changed = True
        elif (match := _PART.match(path)) and match.group(1) in services:
            service = services[match.group(1)]
            services[service.name] = (replace(service, target=None, target_lines=None) if match.group(2) == "target"
                                      else replace(service, backup=None, backup_lines=(), retention=None,
                                                   schedule=None))
            notes.append(note)
            changed = True
        elif (match := _STEP.match(path)) and match.group(1) in runbooks:
            runbook = runbooks[match.group(1)]
            index = int(match.group(2)) - 1  # check-config numbers steps from 1
            if 0 <= index < len(runbook.steps) and runbook.steps[index].step["kind"] != "manual":
                runbooks[runbook.name] = _manual_at(runbook, index, message)
                changed = True
        elif (match := _PARAMETER.match(path)) and match.group(1) in runbooks:
            runbook = runbooks[match.group(1)]
            parameters = {k: v for k, v in runbook.parameters.items() if k != match.group(2)}
            runbooks[runbook.name] = replace(runbook, parameters=parameters)
            changed = True
    if not changed:
        return draft
    return replace(draft, services=tuple(services.values()), runbooks=tuple(runbooks.values()), notes=tuple(notes))


def _manual_at(runbook: ImportedRunbook, index: int, message: str) -> ImportedRunbook:
    placed = runbook.steps[index]
    text = as_text(placed.text or str(placed.step))[:2800]
    step: dict[str, Any] = {"kind": "manual", "instructions": text}
    manual = PlacedStep(step, placed.lines, f"manual: the catalog refuses the recognised step ({message})", placed.sure,
                        placed.text)
    steps = (*runbook.steps[:index], manual, *runbook.steps[index + 1:])
    return replace(runbook, steps=steps)

