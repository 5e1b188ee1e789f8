"""Each crontab line joined to what it runs: the backups of the script (or command) it names get its schedule, and
a runbook the script became gets it as a comment to switch on.

Not responsible for finding cron lines (`schedules`) nor for the services and runbooks (`assemble`).
"""

from __future__ import annotations

from dataclasses import replace

from bot.importing.context import Context
from bot.importing.model import CronFinding, Found, ImportedRunbook, Mapped, Reading, manual
from bot.importing.recognise import recognise
from bot.importing.script import Scripts
from bot.importing.shell import statements
from bot.importing.variables import Variables


def joined(readings: list[Reading], scripts: Scripts, context: Context) -> list[Reading]:
    """Each cron line joined to what it runs: a backup's schedule, or the runbook the script it runs became."""
    out = []
    for reading in readings:
        items = []
        for item in reading.items:
            if item.found.crons:
                item = _cron(item, scripts, context)
            items.append(item)
        out.append(Reading(reading.procedure, tuple(items)))
    return out


def _cron(item: Mapped, scripts: Scripts, context: Context) -> Mapped:
    cron = item.found.crons[0]
    ran = scripts.find(cron.command)
    if ran is None:
        code = cron.command.split(">")[0].strip()
        ran = [recognise(statement, context, Variables()) for statement in statements(code, cron.line)]
    backups = tuple(backup for mapped in ran for backup in mapped.found.backups)
    if backups:
        return replace(item, found=Found(crons=item.found.crons, backups=backups, consumed=(
            f"schedules the backups of {', '.join(sorted({b.service for b in backups}))} ({cron.cron})")))
    if any(mapped.steps or mapped.found.manual for mapped in ran) and scripts.find(cron.command) is not None:
        return replace(item, found=Found(crons=item.found.crons, consumed=f"schedules {cron.command.split()[0]} "
                                                                           f"({cron.cron})"))
    return replace(item, found=manual(f"a cron line running {cron.command.split()[0]!r}, which the runbook does not "
                                      "hold: schedule what it does in the catalog by hand"))


def runbooks(readings: list[Reading], scripts: Scripts, crons: dict[int, CronFinding]) -> dict[int, CronFinding]:
    """The procedure whose runbook a cron line runs (a script written in it), by the reading's id."""
    out: dict[int, CronFinding] = {}
    for cron in crons.values():
        ran = scripts.find(cron.command)
        if not ran or any(mapped.found.backups for mapped in ran):
            continue
        for reading in readings:
            if any(item is ran[0] or item.lines == ran[0].lines for item in reading.items):
                out.setdefault(id(reading), cron)
    return out


def note(runbook: ImportedRunbook) -> str:
    manual_steps = sum(1 for placed in runbook.steps if placed.step["kind"] == "manual")
    why = "a scheduled run posts to the ops channel: set `schedules.channel`"
    if manual_steps:
        why += f"; its {manual_steps} manual step(s) would wait for a person at night"
    return why
