"""Silences as people see them: the "Silence until…" form (a date-and-time picker Slack shows in the person's own time
zone, and the reason that becomes the silence's comment), its errors naming the times that are valid, and the
approval request a silence posts when `alerts.silence_approvals` asks for a second person.

Pure rendering; what is checked and done is bot/alerts/silencing.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    DateTimePickerElement,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.alerts.models import SilenceAsk, SilenceDecision, SilenceRequest, SilenceState, Verdict
from bot.alerts.silence_times import TimeProblem, UntilRefused
from bot.runs.policy import mention
from bot.views import MAX_SECTION_TEXT, Message, clip, escape
from bot.views.common import timestamp
from bot.views.words import duration, plural

SILENCE_FORM = "alert.silence.until.form"
UNTIL_BLOCK, UNTIL_INPUT = "until", "until.input"
REASON_BLOCK, REASON_INPUT = "reason", "reason.input"
APPROVE_SILENCE = "alert.silence.approve"
DENY_SILENCE = "alert.silence.deny"
DEFAULT_PICK = timedelta(hours=8)  # where the picker starts: the rest of a working day


def until_form(name: str, now: datetime, longest: timedelta, *, approvals: int, metadata: str) -> dict[str, Any]:
    """The "Silence until…" modal; `metadata` carries the group and where to answer (the handler's)."""
    ahead = f"at most {duration(longest)} ahead"
    intro = f"Silence *{escape(name)}* in Alertmanager until the time you pick (in your time zone), {ahead}."
    if approvals:
        intro += f"\n:lock: It needs {plural(approvals, 'approval')} first (`alerts.silence_approvals`)."
    pick = int((now + min(DEFAULT_PICK, longest)).timestamp())
    return View(
        type="modal", callback_id=SILENCE_FORM, private_metadata=metadata, title="Silence until…",
        submit="Ask approval" if approvals else "Silence", close="Cancel",
        blocks=[
            SectionBlock(text=clip(intro, MAX_SECTION_TEXT)),
            InputBlock(block_id=UNTIL_BLOCK, label="Until",
                       element=DateTimePickerElement(action_id=UNTIL_INPUT, initial_date_time=pick)),
            InputBlock(block_id=REASON_BLOCK, label="Why? (the silence's comment in Alertmanager)",
                       element=PlainTextInputElement(action_id=REASON_INPUT, multiline=True, max_length=500)),
        ],
    ).to_dict()


def until_error(refused: UntilRefused, tz: str | None) -> str:
    """The form's error under the picker: what is wrong and the times that are valid, in the person's time zone."""
    window = f"between {local(refused.earliest, tz)} and {local(refused.latest, tz)}"
    if refused.problem is TimeProblem.MISSING:
        return f"Pick a date and a time: {window}."
    if refused.problem is TimeProblem.PAST:
        return f"That time has passed (or is under a minute away). Pick one {window}."
    return f"That is more than {duration(refused.longest)} ahead (alerts.silence_max). Pick a time {window}."


def local(at: datetime, tz: str | None) -> str:
    """`Thu 10 Dec 14:00 Europe/Berlin (13:00 UTC)`: plain text, for where Slack renders no date markup."""
    utc = at.astimezone(UTC)
    zone = _zone(tz)
    if zone is None:
        return f"{utc:%a %d %b %H:%M} UTC"
    return f"{utc.astimezone(zone):%a %d %b %H:%M} {tz} ({utc:%H:%M} UTC)"


def _zone(tz: str | None) -> ZoneInfo | None:
    if not tz or tz == "UTC":
        return None
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def asked(ask: SilenceAsk) -> str:
    """How long a silence was asked for: `for 4 h` or `until <date>` (each reader's time zone)."""
    if ask.until is not None:
        return f"until {timestamp(ask.until)}"
    return f"for {duration(ask.lasting)}"


def request_message(request: SilenceRequest, name: str, decisions: Sequence[SilenceDecision]) -> Message:
    """A silence waiting for approval, and then how it was decided; Approve / Deny while it waits."""
    approvals = [d for d in decisions if d.verdict is Verdict.APPROVE]
    head = (f":no_bell: <@{request.requested_by}> asks to silence *{escape(name)}* {asked(request.ask)}: "
            f"“{escape(request.ask.comment)}”")
    who = f" from {mention(request.approvers)}" if request.approvers else " (anyone but the requester)"
    lines = [(f"Needs {plural(request.approvals_needed, 'approval')}{who}; asked {timestamp(request.created_at)}, "
             f"expires {timestamp(request.expires_at)}.")]
    if approvals:
        lines.append("Approved by " + ", ".join(f"<@{d.user_id}>" for d in approvals) +
                     f" ({len(approvals)} of {request.approvals_needed})")
    lines.append(_state_line(request))
    blocks: list[Any] = [SectionBlock(text=clip(head, MAX_SECTION_TEXT)),
                         ContextBlock(elements=[MarkdownTextObject(text=clip("\n".join(filter(None, lines)),
                                                                             MAX_SECTION_TEXT))])]
    if request.state is SilenceState.PENDING:
        value = str(request.id)
        blocks.append(ActionsBlock(block_id="alert.silence.decide", elements=[
            ButtonElement(text="Approve", action_id=APPROVE_SILENCE, value=value, style="primary"),
            ButtonElement(text="Deny", action_id=DENY_SILENCE, value=value, style="danger")]))
    text = f"Silence {name} {_plain_asked(request.ask)}? {request.state.value}"
    return Message.of(text, blocks)


def _plain_asked(ask: SilenceAsk) -> str:
    if ask.until is not None:
        return f"until {ask.until.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    return f"for {duration(ask.lasting)}"


def _state_line(request: SilenceRequest) -> str:
    by = f"<@{request.decided_by}>" if request.decided_by else "someone"
    return {
        SilenceState.PENDING: ":hourglass_flowing_sand: Waiting for approval.",
        SilenceState.APPROVED: f":hourglass_flowing_sand: Approved by {by}: asking Alertmanager…",
        SilenceState.SILENCED: f":white_check_mark: Approved by {by}: silenced in Alertmanager "
                               f"(silence `{escape(request.silence_id or '')}`).",
        SilenceState.FAILED: f":x: Approved by {by}, but no silence was made: {escape(request.problem or '')}",
        SilenceState.DENIED: f":no_entry_sign: Denied by {by}: no silence.",
        SilenceState.WITHDRAWN: f":leftwards_arrow_with_hook: Withdrawn by {by}: no silence.",
        SilenceState.EXPIRED: ":hourglass: Expired: nobody approved it in time; no silence.",
    }[request.state]


def pending_line(request: SilenceRequest) -> str:
    """On the alert's message while a silence waits for approval."""
    return (f":hourglass_flowing_sand: Silence {asked(request.ask)} asked by <@{request.requested_by}>: "
            f"waiting for {plural(request.approvals_needed, 'approval')}")
