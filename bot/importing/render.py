"""The draft as catalog YAML, every element with its provenance and confidence as a comment (`# gitte.md:136-156
medium: why`), and the import's report: procedures, what became what, each manual command with why, decisions.

Not responsible for what the draft holds (`assemble`).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from bot.importing.model import Confidence, Draft, DraftService, ImportedRunbook, Lines, PlacedStep, Sure

ENVIRONMENT = "production"
_UNPRINTABLE = re.compile("[^\t\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class _Dumper(yaml.SafeDumper):
    pass


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value and not value.endswith("\n"):  # `|+` (kept final newlines) would end the YAML document
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _text)


def _flow(value: Any) -> str:
    text = yaml.dump(value, Dumper=_Dumper, default_flow_style=True, sort_keys=False, width=10**6, allow_unicode=True)
    return text.removesuffix("\n...\n").strip()  # a lone scalar ends its document: not here, inside one


def _block(value: Any, indent: int) -> list[str]:
    text = yaml.dump(value, Dumper=_Dumper, default_flow_style=False, sort_keys=False, width=10**6,
                     allow_unicode=True)
    return [" " * indent + line for line in text.removesuffix("...\n").rstrip("\n").splitlines()]


def _item(value: dict[str, Any], indent: int, comment: str) -> list[str]:
    """`- {…}  # comment`, or a block mapping with the comment on its first line when a value spans lines."""
    note = "  # " + _c(comment) if comment else ""
    if any(isinstance(v, str) and "\n" in v for v in value.values()):
        lines = _block(value, indent + 2)
        return [" " * indent + "- " + lines[0].lstrip() + note, *lines[1:]]
    return [" " * indent + f"- {_flow(value)}{note}"]


def _c(text: str) -> str:
    """Text for a YAML comment: one line, and only characters YAML allows (a runbook may hold any)."""
    return _UNPRINTABLE.sub("?", " ".join(text.splitlines()))


def _where(lines: tuple[Lines, ...] | list[Lines]) -> str:
    shown = [str(line) for line in dict.fromkeys(lines)]
    return _c(", ".join(shown[:3]) + (f" and {len(shown) - 3} more" if len(shown) > 3 else ""))


def _sure(sure: Sure) -> str:
    return _c(sure.render())


def render(draft: Draft) -> str:
    """The catalog draft: services with their targets, checks and backups, and runbooks, each with where it came
    from. It loads on its own (`opsbot check-config`, warnings for unset secrets allowed)."""
    out = [f"# Imported from {_c(draft.source)} by `opsbot import`: a draft to review before anything runs from it.",
           "# Each element says where it came from and how sure the import is: high (as written), medium (one guess,",
           "# said), low (guessed: check it first). Secrets are not in it: each *_env names a variable to set.",
           "version: 1",
           "approvals:",
           "  environments:",
           f"    {ENVIRONMENT}:",
           "      # No imported element sets `approvals`: every change waits for one person's approval. Name the",
           "      # approvers (Slack user or group IDs), and give kinds their own policies (restore: 2).",
           "      default: {approvals: 1}"]
    if draft.services:
        out.append("services:")
        for service in draft.services:
            out += _service(service)
    if draft.runbooks:
        out.append("runbooks:")
        for runbook in draft.runbooks:
            out += _runbook(draft.source, runbook)
    return "\n".join(out) + "\n"


def _service(service: DraftService) -> list[str]:
    out = [f"  # {_where([service.lines])}: first named here", f"  {_flow(service.name)}:",
           f"    description: {_flow(f'Imported from {service.lines.source}')}",
           f"    environment: {ENVIRONMENT}"]
    if service.target is not None:
        lines = service.target_lines or service.lines
        out.append(f"    target: {_flow(service.target.target)}  # {_where([lines])} {_sure(service.target.sure)}")
    complete = [placed for placed in service.checks if placed.complete]
    proposed = [placed for placed in service.checks if not placed.complete]
    if complete:
        out.append("    checks:")
        for placed in complete:
            out += _item(placed.check, 6, f"{_where(placed.lines)} {_sure(placed.sure)}")
    for placed in proposed:
        out.append(f"    # proposed check, needs {placed.missing} ({_where(placed.lines)}):")
        out.append(f"    #   - {_c(_flow(placed.check))}")
    for part in service.parts:
        out.append(f"    {part.key}: {_flow(part.data)}  # {_sure(part.sure)}")
    if service.backup is not None:
        backup = dict(service.backup.backup)
        notes = [f"{_where(service.backup_lines)} {_sure(service.backup.sure)}"]
        if service.retention is not None:
            backup["retention_days"] = service.retention.days
            notes.append(f"retention: find -mtime +{service.retention.days}")
        if service.schedule is not None:
            backup["schedule"] = service.schedule.cron
            notes.append(f"schedule: the crontab line at {service.lines.source}:{service.schedule.line}")
        out.append(f"    backup: {_flow(backup)}  # " + _c("; ".join(notes)))
    return out


def _runbook(source: str, runbook: ImportedRunbook) -> list[str]:
    procedure = runbook.procedure
    recognised = sum(1 for placed in runbook.steps if placed.step["kind"] != "manual")
    out = [_c(f"  # {source}:{procedure.line} {procedure.title!r}: {recognised} of {len(runbook.steps)} steps "
              "recognised"),
           f"  {_flow(runbook.name)}:",  # `'2024'`, `'null'`: names YAML would read as numbers or nothing
           f"    description: {_flow(('Imported from ' + procedure.title)[:300])}",
           f"    services: {_flow(list(runbook.services))}"]
    if runbook.parameters:
        out.append("    parameters:")
        out += [f"      {name}: {_flow(value)}" for name, value in runbook.parameters.items()]
    if runbook.schedule is not None:
        out.append(f"    # schedule: {_flow(runbook.schedule.cron)}  # " + _c(
            f"the crontab line at {source}:{runbook.schedule.line}; {runbook.schedule_note}, then uncomment"))
    out.append("    steps:")
    for placed in runbook.steps:
        out += _item(placed.step, 6, _step_note(placed))
    return out


def _step_note(placed: PlacedStep) -> str:
    note = f"{placed.lines} {placed.note}"
    if placed.sure.level is not Confidence.HIGH:
        note += f" ({_sure(placed.sure)})"
    return note


# --- the report --------------------------------------------------------------------------------------------------


def report(draft: Draft) -> str:
    """Procedures found; recognised, partly recognised and manual; the draft's elements; each command that stayed
    manual with its line and why; what a person must decide."""
    results = [result for result in draft.procedures if result.commands or result.mapped]
    status = [result.status for result in results]
    commands = sum(result.commands for result in results)
    recognised = sum(result.recognised for result in results)
    checks = sum(1 for service in draft.services for placed in service.checks if placed.complete)
    backups = [service for service in draft.services if service.backup is not None]
    steps = [placed for runbook in draft.runbooks for placed in runbook.steps]
    share = f" ({100 * recognised // commands} %)" if commands else ""
    out = [(f"{draft.source}: {len(results)} procedures with commands: {status.count('recognised')} recognised, "
            f"{status.count('partly recognised')} partly recognised, {status.count('manual')} manual"),
           (f"  draft: {len(draft.services)} services, {checks} checks, {len(backups)} backups "
            f"({sum(1 for s in backups if s.schedule)} scheduled), {len(draft.runbooks)} runbooks "
            f"({sum(1 for p in steps if p.step['kind'] != 'manual')} of {len(steps)} steps recognised)"),
           (f"  commands: {commands}, {recognised} became checks, backups, schedules or steps{share}, "
            f"{commands - recognised} stayed manual"), "", "procedures:"]
    for result in results:
        became = [f"runbook {result.runbook}"] if result.runbook else []
        became += [f"{result.checks} check(s)"] if result.checks else []
        became += [f"{result.backups} backup(s)"] if result.backups else []
        out.append(f"  {draft.source}:{result.procedure.line} {result.procedure.title}: {result.status} "
                   f"({result.recognised} of {result.commands} commands)" + (f" → {', '.join(became)}" if became else ""))
    manual = [item for item in draft.mapped if item.found.manual is not None and not item.control]
    if manual:
        out += ["", "manual (a person does these; each is a manual step):"]
        for item in manual:
            first = item.text.splitlines()[0] if item.text else ""
            out.append(f"  {item.lines}: {first[:70]} — {item.found.manual}")
    decisions = [(item.lines, note) for item in draft.mapped for note in item.found.decisions]
    unsure = [(service.name, service.target.sure) for service in draft.services if service.target is not None
              and service.target.sure.level is Confidence.LOW]
    if decisions or unsure or draft.notes:
        out += ["", "decide:"]
        out += [f"  {lines}: {note}" for lines, note in dict.fromkeys(decisions)]
        out += [f"  services.{name}.target: {sure.render()}" for name, sure in unsure]
        out += [f"  {note}" for note in draft.notes]
    if draft.skipped:
        out.append("\nnot imported:")
        out += [f"  {line}" for line in draft.skipped]
    return "\n".join(out) + "\n"
