"""How much of a runbook an import turned into catalog elements: the share of its shell commands that became
checks, backups, schedules or steps (not manual ones), and the share of its procedures (headings with commands)
that became a check, a backup or a runbook with a recognised step. `bench/import.py` prints them.

Not responsible for the import itself (`draft`).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.importing.model import Draft, ProcedureResult

_NOT_WORK = frozenset({"manual", "wait"})  # a runbook of these alone is a checklist, not a recognised procedure


@dataclass(frozen=True)
class Coverage:
    source: str
    commands: int
    recognised_commands: int
    procedures: int  # headings with commands
    recognised_procedures: int  # …that became a check, a backup or a runbook with a recognised step
    fully: int  # …whose every command became an element

    @property
    def command_share(self) -> float:
        return self.recognised_commands / self.commands if self.commands else 0.0

    @property
    def procedure_share(self) -> float:
        return self.recognised_procedures / self.procedures if self.procedures else 0.0


def coverage(draft: Draft) -> Coverage:
    steps = {runbook.name: runbook.steps for runbook in draft.runbooks}
    results = [result for result in draft.procedures if result.commands]

    def became(result: ProcedureResult) -> bool:
        work = any(placed.step["kind"] not in _NOT_WORK for placed in steps.get(result.runbook or "", ()))
        return bool(result.checks or result.backups or work)

    return Coverage(draft.source, sum(r.commands for r in results), sum(r.recognised for r in results), len(results),
                    sum(1 for r in results if became(r)), sum(1 for r in results if r.status == "recognised"))
