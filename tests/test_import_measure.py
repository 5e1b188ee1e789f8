"""The import's measure: the share of a runbook's commands that became catalog elements, and of its procedures
(headings with commands) that became a check, a backup or a runbook with a recognised step — what
`bench/import.py` prints."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from bot.importing.draft import import_runbook
from bot.importing.measure import coverage
from tests.imports import runbook

BENCH = Path(__file__).resolve().parents[1] / "bench" / "import.py"


def test_commands_and_procedures_are_counted_by_what_they_became() -> None:
    text = runbook(
        ("Restart", "docker compose restart api\nsleep 5\ndocker compose ps"),  # all three recognised
        ("Escalate", "./page-oncall.sh\nsleep 60"),  # a checklist: a manual step and a wait
        ("Backup", "pg_dump -h db app | gzip > /backups/app.sql.gz\naws s3 cp /backups s3://b --recursive"))
    share = coverage(import_runbook(text, "ops.md"))
    assert (share.commands, share.recognised_commands) == (7, 5)
    assert (share.procedures, share.recognised_procedures, share.fully) == (3, 2, 1)
    assert share.procedure_share == pytest.approx(2 / 3)


def test_a_runbook_without_commands_measures_zero_not_an_error() -> None:
    share = coverage(import_runbook("# Notes\nNothing to run here.\n", "notes.md"))
    assert (share.commands, share.procedures, share.command_share, share.procedure_share) == (0, 0, 0.0, 0.0)


def test_the_bench_prints_one_row_per_runbook(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ops.md"
    path.write_text(runbook(("Restart", "docker compose restart api")))
    monkeypatch.setattr(sys, "argv", [str(BENCH), str(path)])
    with pytest.raises(SystemExit) as ended:
        runpy.run_path(str(BENCH), run_name="__main__")
    assert ended.value.code == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[1].split() == ["ops.md", "1", "of", "1", "100%", "1", "of", "1", "100%", "1"]
