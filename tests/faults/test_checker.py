"""The checker catches each kind of violation it is there for: an effect twice, an effect without its approvals or
past their expiry, a lost effect, a run left running, an archive twice or unrecorded, an incident half-made or a
channel without its incident, an acknowledged request without its audit entry. In milliseconds, on made-up records."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playground.slack_api import Delivery, FakeSlack
from tests.faults.checker import Run, _audited, _backups, _effects, _incidents, _runs_rest
from tests.faults.workload import ALICE, BOB, Effect, EffectTarget, History, Sent

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def run(*, state: str = "succeeded", approvals: tuple[tuple[str, datetime], ...] = ((BOB, T0),), needed: int = 1,
        marker: str = "t1") -> Run:
    return Run(7, "runbook", state, marker, ALICE, needed, T0 + timedelta(minutes=30), T0 + timedelta(seconds=1), approvals)


def target(*effects: tuple[str, datetime]) -> EffectTarget:
    return EffectTarget(effects=[Effect("poke0", step, "t1", at) for step, at in effects])


def test_one_effect_per_step_after_its_approval_is_no_violation() -> None:
    assert _effects(History(), target(("a", T0 + timedelta(seconds=2)), ("b", T0 + timedelta(seconds=3))), [run()]) == []


def test_an_effect_twice_is_a_violation() -> None:
    [problem] = _effects(History(), target(("a", T0 + timedelta(seconds=2)), ("a", T0 + timedelta(seconds=5))), [run()])
    assert "happened 2 times" in problem


def test_an_effect_without_its_approval_or_before_it_or_past_expiry_is_a_violation() -> None:
    at = T0 + timedelta(seconds=2)
    assert _effects(History(), target(("a", at)), [run(approvals=())])
    assert _effects(History(), target(("a", at)), [run(approvals=((ALICE, T0),))]), "a self-approval does not count"
    assert _effects(History(), target(("a", T0 - timedelta(seconds=1))), [run()]), "before the approval"
    assert _effects(History(), target(("a", at)), [run(approvals=((BOB, T0 + timedelta(hours=1)),))]), "past expiry"


def test_an_effect_of_a_step_the_store_holds_as_never_started_is_a_violation() -> None:
    at = T0 + timedelta(seconds=2)
    interrupted = Run(7, "runbook", "interrupted", "t1", ALICE, 1, T0 + timedelta(minutes=30), T0, ((BOB, T0),),
                      ("succeeded", "succeeded", "waiting"))
    [problem] = _effects(History(), target(("a", at), ("b", at)), [interrupted])
    assert "holds that step as waiting" in problem


def test_an_effect_no_run_asked_for_and_a_success_without_effect_are_violations() -> None:
    assert _effects(History(), target(("a", T0)), [])
    [problem] = _effects(History(), EffectTarget(), [run()])
    assert "saw no effect" in problem


def test_a_run_left_running_or_approved_is_a_violation() -> None:
    assert _runs_rest([run(state="interrupted"), run(state="failed"), run(state="pending")]) == []
    assert len(_runs_rest([run(state="running"), run(state="approved")])) == 2


def test_two_archives_for_one_run_a_missing_one_and_an_unrecorded_one_are_violations(tmp_path: Path) -> None:
    (tmp_path / "0").mkdir()
    kept, stray = tmp_path / "0" / "files0-manual-1.tar.gz", tmp_path / "0" / "files0-manual-2.tar.gz"
    kept.write_text("x")
    stray.write_text("y")
    (tmp_path / "0" / ".files0-manual-3.tar.gz.partial").write_text("z")  # a cut-short run's, removed by a chore later
    rows: list[dict[str, Any]] = [
        {"id": 1, "run_id": 7, "path": str(kept), "label": "manual", "deleted_at": None},
        {"id": 2, "run_id": 7, "path": str(tmp_path / "0" / "gone.tar.gz"), "label": "manual", "deleted_at": None},
    ]
    problems = _backups([run(state="succeeded")], rows, tmp_path)
    assert any("made 2 archives" in p for p in problems)
    assert any("is missing" in p for p in problems)
    [unknown] = [p for p in problems if "known to no backup row" in p]
    assert unknown.startswith(f"archive {stray.name} on disk is known to no backup row")


def test_an_incident_half_made_or_without_channel_and_a_channel_without_incident_are_violations() -> None:
    slack = FakeSlack()
    slack.channels["C1"] = {"id": "C1", "name": "inc-1"}
    slack.channels["C2"] = {"id": "C2", "name": "inc-orphan"}
    rows: list[dict[str, Any]] = [
        {"id": 1, "title": "whole", "channel_id": "C1", "declare_stage": "declared"},
        {"id": 2, "title": "half", "channel_id": None, "declare_stage": "creating"},
    ]
    problems = _incidents(rows, slack, {"C0OPS", "C0INCIDENTS"})
    assert any("left half-made" in p for p in problems)
    assert any("#2 (half) has no channel" in p for p in problems)
    assert any("inc-orphan" in p for p in problems)
    assert not any("#1" in p for p in problems)


def test_an_acknowledged_request_needs_an_entry_or_the_refusal_log_line(tmp_path: Path) -> None:
    history = History(sent=[Sent("command", "/ops", ALICE, "backup files0 x", Delivery(((200, ""), (200, ""))))],
                      outcomes=Counter())
    entry = {"kind": "command", "name": "/ops", "actor_id": ALICE, "args": "backup files0 x"}
    log = tmp_path / "r0.log"
    log.write_text("")
    [problem] = _audited(history, [entry], [log])
    assert "acknowledged 2×, audited 1×" in problem
    log.write_text("2026-12-03 11:02:29,956 WARNING bot.audit_trail: request refused and not in the audit log (the store "
                   f"could not be reached): command /ops by {ALICE} in C0OPS at 2026-12-03T11:02:29.955646+00:00, args "
                   "'backup files0 x' [req=r-f96ca25cb4df user=U0ALICE]\n")
    assert _audited(history, [entry], [log]) == []
