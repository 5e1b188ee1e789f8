"""How a run's ending and its story read: a typed `RunOutcome` (every ending, the engine's and the run flows') into
the run message's outcome and state lines, and the lines a run adds to an incident's timeline.

The one place these words are made (mrkdwn, every quoted text escaped); not responsible for deciding anything
(`bot.runs.engine` decides on the values) nor for the message's layout (`bot.views.runs`).
"""

from __future__ import annotations

from collections.abc import Callable

from bot.executors.base import Effect
from bot.runs.models import SCHEDULER, ActionKind, ActionRun
from bot.runs.outcomes import Ending, Holder, RunOutcome, StepRef, UndoFailure
from bot.views import escape
from bot.views.effects import effect_text


def outcome_text(run: ActionRun, outcome: RunOutcome) -> tuple[str, str]:
    """The run's `outcome` and `target_state` lines for how it ended."""
    builtin = run.kind is not ActionKind.RUNBOOK
    ending = outcome.ending
    around = _AROUND_THE_ENGINE.get(ending)
    if around is not None:
        return around(run, outcome)
    if ending is Ending.FINISHED:
        return _finished(run, outcome, builtin), ""
    if ending in (Ending.UNDONE, Ending.UNDO_FAILED):
        left = _left(outcome)
        if ending is Ending.UNDO_FAILED:
            return "The roll back did not finish: " + _undo_failures(outcome.undo_failed), left
        return (f"Rolled back. {left}" if outcome.undone else left[:1].upper() + left[1:]), ""
    if ending is Ending.CANCELLED:
        where = _where(outcome)
        text = f"Cancelled by <@{outcome.cancelled_by}> {where}; nothing more was started."
        if outcome.undo_failed:
            text += " Undo failed: " + _undo_failures(outcome.undo_failed)
        return text, _left(outcome)
    if ending is Ending.INTERRUPTED:
        why = ("opsbot lost its lease on the service (is its lock store reachable?)" if outcome.lease_lost
               else "opsbot was stopped")
        return (f"Interrupted: {why} while this was running.",
                f"unknown, possibly mid-change: check `/ops health {run.service}` before trying again")
    if ending is Ending.BROKE:
        return (f"opsbot failed: {escape(outcome.why)} (reference {outcome.reference})",
                f"unknown: check `/ops health {run.service}`")
    if ending is Ending.HALTED:
        return escape(outcome.why), "unchanged by the failing step; see the steps above"
    failed = _failed_step(outcome)
    if ending is Ending.UNKNOWN:
        step = outcome.step
        assert step is not None
        text = (f"{failed} What it did is unknown, so it was not tried again and nothing was undone: a person decides "
                "what next.")
        state = (f"unknown after step {step.index + 1} ({escape(step.title)}): {escape(outcome.state)}. Look at "
                 f"{_services(outcome)} (`/ops health`) before acting")
        if outcome.still_changed:
            state += ". Still changed, not undone: " + "; ".join(_step(s) for s in outcome.still_changed)
        return text, state
    if ending is Ending.STOPPED:
        if builtin:  # a few steps: the failure's own words, and what the steps before it changed
            state = escape(outcome.state)
            if outcome.still_changed:
                state += (f", after {'; '.join(_step(s) for s in outcome.still_changed)} changed it (nothing was "
                          f"undone): look at it now (`/ops health {run.service}`)")
            return escape(outcome.why), state
        return (f"{failed} Stopped there (`on_failure: stop`); nothing was undone.",
                f"as the steps above left it: {escape(outcome.state)}")
    assert ending is Ending.ROLLED_BACK
    rolled = ("Rolling back did not finish: " + _undo_failures(outcome.undo_failed) if outcome.undo_failed
              else "Rolled back" if outcome.undone else "Nothing to undo")
    return f"{failed} {rolled}.", _left(outcome)


_UNTOUCHED = "untouched: nothing ran"


def refusal(outcome: RunOutcome) -> str | None:
    """Why a run was refused before it started (busy, or its lease unreachable), without "Not run: "; None for any
    other ending."""
    if outcome.ending is Ending.BUSY:
        who = _holder(outcome.holder) if outcome.holder is not None else "another action"
        return f"{who} is running on `{escape(outcome.held)}`"
    if outcome.ending is Ending.UNREACHABLE:
        return escape(outcome.why)
    return None


def _busy(run: ActionRun, outcome: RunOutcome) -> tuple[str, str]:
    return f"Not run: {refusal(outcome)}. Ask again when it is done.", _UNTOUCHED


def _holder(holder: Holder) -> str:
    requester = "the schedule" if holder.requested_by == SCHEDULER else f"<@{holder.requested_by}>"
    return f"{escape(holder.label)} #{holder.id} (requested by {requester})"


def _recovered(run: ActionRun, outcome: RunOutcome) -> tuple[str, str]:
    text = ("Interrupted: opsbot stopped while this was running." if outcome.started
            else "Interrupted: approved, but opsbot stopped before it started.")
    return text, f"unknown: check `/ops health {run.service}` before trying again"


def _handed_over(run: ActionRun, outcome: RunOutcome) -> tuple[str, str]:
    where = "before it started" if outcome.step is None else f"before step {outcome.step.index + 1}"
    return f"Handed over {where}: this opsbot replica is stopping; the next one up goes on from there.", ""


def _denied(run: ActionRun, outcome: RunOutcome) -> tuple[str, str]:
    return f"Denied by <@{outcome.denied_by}>" + (f": {escape(outcome.why)}" if outcome.why else ""), ""


def _fixed(text: str, state: str = "") -> Callable[[ActionRun, RunOutcome], tuple[str, str]]:
    return lambda run, outcome: (text, state)


# The endings of a run that never started, or left this replica: no step story to tell.
_AROUND_THE_ENGINE: dict[Ending, Callable[[ActionRun, RunOutcome], tuple[str, str]]] = {
    Ending.BUSY: _busy,
    Ending.UNREACHABLE: lambda run, outcome: (f"Not run: {refusal(outcome)}", _UNTOUCHED),
    Ending.RECOVERED: _recovered,
    Ending.HANDED_OVER: _handed_over,
    Ending.DENIED: _denied,
    Ending.EXPIRED: _fixed("Expired: nobody approved in time; nothing ran."),
    Ending.PLAN_EXPIRED: _fixed("Expired: the plan was not sent in time; nothing ran."),
    Ending.WITHDRAWN: _fixed("Withdrawn: it could not be posted in the channel."),
    Ending.SUPERSEDED: _fixed("Not needed: another follow-up has this run."),
    Ending.DROPPED: _fixed("Dropped by the requester before it was sent; nothing ran."),
}


def _finished(run: ActionRun, outcome: RunOutcome, builtin: bool) -> str:
    if outcome.passed_over:
        passed = "; ".join(f"step {p.step.index + 1} failed ({escape(p.why)})"
                           + ("" if p.effect is not Effect.UNKNOWN else f"; {effect_text(p.effect)}")
                           for p in outcome.passed_over)
        return f"Finished, but {passed} (`on_failure: continue`)."
    if builtin:  # a built-in action says what each of its few steps did
        summary = "; ".join(escape(detail) for detail in outcome.details if detail) or "Done."
    else:
        summary = f"All {len(outcome.details)} steps done."
    if outcome.late_cancel_by:
        summary += (f" <@{outcome.late_cancel_by}>'s Cancel came during the last step: there was no next step to "
                    "stop before.")
    return summary


def _failed_step(outcome: RunOutcome) -> str:
    step = outcome.step
    assert step is not None
    return f"Step {step.index + 1} failed: {escape(outcome.why)}."


def _where(outcome: RunOutcome) -> str:
    step = outcome.step
    assert step is not None
    return f"before another try of step {step.index + 1}" if outcome.retrying else f"before step {step.index + 1}"


def _services(outcome: RunOutcome) -> str:
    return ", ".join(f"`{s}`" for s in outcome.services)


def _step(step: StepRef) -> str:
    return f"step {step.index + 1} ({escape(step.title)})"


def _undo_failures(failures: tuple[UndoFailure, ...]) -> str:
    return "; ".join(f"undo of step {f.step.index + 1} failed ({escape(f.why)})" for f in failures)


def _left(outcome: RunOutcome) -> str:
    """The state the services are left in, plainly."""
    parts = []
    if outcome.undo_failed:
        parts.append(f"partly put back: {_undo_failures(outcome.undo_failed)} — look at {_services(outcome)} now "
                     "(`/ops health`)")
    elif outcome.undone:
        parts.append(f"put back as before the run ({', '.join(f'step {s.index + 1}' for s in outcome.undone)} undone)")
    else:
        parts.append("nothing to undo")
    if outcome.stays:
        parts.append("still changed: " + "; ".join(f"{_step(s)} has no undo" for s in outcome.stays))
    return ". ".join(parts)


# --- the timeline of an incident a run was asked for in --------------------------------------------------------


def run_note(run: ActionRun, text: str) -> str:
    if run.kind is ActionKind.RUNBOOK:
        return f"Runbook run #{run.id} ({run.params.get('runbook')}): {text}"
    return f"Action #{run.id} ({run.label}): {text}"


def note_step_failed(step: StepRef, why: str, effect: Effect) -> str:
    return f"step {step.index + 1} ({step.title}) failed: {escape(why)} ({effect_text(effect)})"


def note_cancelled(outcome: RunOutcome) -> str:
    return f"cancelled by <@{outcome.cancelled_by}> {_where(outcome)}"


def note_undo_failed(failure: UndoFailure) -> str:
    return f"undo of step {failure.step.index + 1} failed: {escape(failure.why)}"


def note_undid(step: StepRef, detail: str) -> str:
    return f"undid step {step.index + 1} ({step.title}): {escape(detail)}"
