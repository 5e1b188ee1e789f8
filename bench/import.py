"""The import's measure: per runbook, the share of its shell commands that became catalog elements and the share
of its procedures (headings with commands) that became a check, a backup or a runbook with a recognised step.

    python3 bench/import.py [RUNBOOK.md …]   (default: the runbooks in tests/data/runbooks/)

The goal is at least 80 % of procedures on runbooks the importer was never tuned on. Nothing is run or connected.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bot.importing.draft import import_runbook
from bot.importing.measure import Coverage, coverage

DEFAULT = Path(__file__).resolve().parents[1] / "tests" / "data" / "runbooks"


def main(paths: list[str]) -> int:
    files = [Path(path) for path in paths] or sorted(DEFAULT.glob("*.md"))
    rows = [coverage(import_runbook(path.read_text(encoding="utf-8"), path.name)) for path in files]
    print(f"{'runbook':<28} {'commands':>14} {'share':>6}   {'procedures':>12} {'share':>6}  {'fully':>5}")
    for row in rows:
        print(_row(row))
    if len(rows) > 1:
        total = Coverage("all", sum(r.commands for r in rows), sum(r.recognised_commands for r in rows),
                         sum(r.procedures for r in rows), sum(r.recognised_procedures for r in rows),
                         sum(r.fully for r in rows))
        print(_row(total))
    return 0


def _row(row: Coverage) -> str:
    return (f"{row.source:<28} {row.recognised_commands:>6} of {row.commands:<5} {row.command_share:>6.0%}   "
            f"{row.recognised_procedures:>4} of {row.procedures:<4} {row.procedure_share:>6.0%}  {row.fully:>5}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
