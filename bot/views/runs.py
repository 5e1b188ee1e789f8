"""Every run's messages, built-in actions and runbooks alike: the plan the requester sees, the channel message that
follows a run from approval through its live steps to its result (with Cancel, Resume, Roll back and Mark done),
the pending approvals and the history.

Re-rendered from the stored run every time, so it always says what the store says. Not responsible for deciding
anything (the run flows, `bot.runs`) nor for how a run's ending reads (`bot.views.run_words`); it imports no step
logic and no flow.
"""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.executors.base import Revision
from bot.runs.effects import awaits_people, unknown_step
from bot.runs.models import (
    ActionKind,
    ActionRun,
    ActionState,
    ActionStep,
    ApprovalDecision,
    Decision,
    StepState,
)
from bot.runs.policy import mention
from bot.views import (
    MAX_BLOCKS,
    MAX_HEADER_TEXT,
    MAX_SECTION_TEXT,
    Message,
    clip,
    code_block,
    escape,
    line_sections,
    placeholders,
)
from bot.views.common import timestamp
from bot.views.effects import effect_text
from bot.views.manual_steps import answer_line, manual_blocks
from bot.views.offers import declare_button
from bot.views.run_words import outcome_text
from bot.views.words import link_channels, plural
from bot.views.words import seconds as format_seconds

# Action ids of buttons on messages already posted: kept as they were, whatever the run.
REQUEST_ACTION, CANCEL_ACTION, ROLLBACK_ACTION = "action.request", "action.cancel", "rollback.to"
APPROVE_ACTION, DENY_ACTION = "approval.approve", "approval.deny"
CANCEL_RUN_ACTION, RESUME_ACTION, ROLL_BACK_ACTION = "runbook.cancel", "runbook.resume", "runbook.rollback"
MARK_DONE_ACTION = "runbook.mark_done"  # value: a run id; its step of unknown effect was checked by hand
_FAILURE = {"rollback": "roll back", "stop": "stop there", "continue": "go on"}

_HEADLINE = {
    ActionState.DRAFT: "📝 Plan", ActionState.PENDING: "🔐 Approval needed", ActionState.APPROVED: "✅ Approved",
    ActionState.RUNNING: "⏳ Running", ActionState.SUCCEEDED: "✅ Done", ActionState.FAILED: "❌ Failed",
    ActionState.DENIED: "⛔ Denied", ActionState.EXPIRED: "⌛ Expired", ActionState.INTERRUPTED: "⚠️ Interrupted",
    ActionState.CANCELLED: "➖ Withdrawn", ActionState.HANDED_OVER: "🔁 Handed over",
}
_STEP = {StepState.WAITING: "⬜", StepState.RUNNING: "⏳", StepState.SUCCEEDED: "✅", StepState.FAILED: "❌",
         StepState.SKIPPED: "⏭", StepState.UNDONE: "↩"}


def describe(run: ActionRun) -> str:
    """`restart api`, `restore db from backup 12`, `rollback api to v1.4`, `runbook deploy-api (version=2.0)`, or
    the Resume / Roll back of an earlier run."""
    if run.kind is ActionKind.RUNBOOK:
        values = " ".join(f"{k}={v}" for k, v in (run.params.get("values") or {}).items())
        name = f"runbook {run.params.get('runbook')}" + (f" ({values})" if values else "")
    else:
        extra = ""
        if run.params.get("backup_id") is not None:
            extra = f" from backup {run.params['backup_id']}"
        elif run.params.get("to"):
            extra = f" to {run.params['to']}"
        name = f"{run.kind.value} {run.service}{extra}"
    mode = run.params.get("mode")
    if mode == "resume":
        return f"resume {name} from run #{run.params.get('of')}"
    if mode == "rollback":
        return f"roll back {name} of run #{run.params.get('of')}"
    if mode == "done":
        return f"go on with {name} from run #{run.params.get('of')}, step {int(run.params.get('checked', 0)) + 1} checked by hand"
    return name


def plan_message(run: ActionRun) -> Message:
    """What the requester sees before anything happens (ephemeral): what it touches, every step with its undo and
    what happens if it fails, approvals, and the buttons."""
    needs = (f"{run.approvals_needed} approval{'s' if run.approvals_needed > 1 else ''} from "
             + (mention(run.approvers) if run.approvers else "anyone but you")
             if run.approvals_needed else "none: it runs when you press *Run now*")
    if run.kind is ActionKind.RUNBOOK:
        values = run.params.get("values") or {}
        shown = clip(", ".join(f"`{k}` = `{escape(str(v))}`" for k, v in values.items()) or "none", 1900)
        what = [MarkdownTextObject(text="*Services*\n" + ", ".join(f"`{s}`" for s in run.services)
                                   + f" · _{escape(run.environment)}_"),
                MarkdownTextObject(text=f"*Parameters*\n{shown}")]
    else:
        what = [MarkdownTextObject(text=f"*Service*\n`{run.service}` · _{escape(run.environment)}_"),
                MarkdownTextObject(text=f"*Target*\n{escape(run.target)}")]
    blocks: list[Block] = [
        HeaderBlock(text=clip(f"📝 Plan: {describe(run)}", MAX_HEADER_TEXT)),
        SectionBlock(fields=[*what, MarkdownTextObject(text=f"*Approval*\n{needs}"),
                             MarkdownTextObject(text=f"*Reason*\n{escape(run.reason) or '_none given_'}")]),
    ]
    title = "*Steps*"
    if run.params.get("mode") == "rollback":
        title = ("*Undo, newest first,* what the interrupted run changed and can put back (the step it stopped on "
                 "included)")
    blocks += line_sections(plan_lines(run), title)
    blocks.append(ContextBlock(elements=[MarkdownTextObject(
        text="Nothing has been touched yet (read-only looks say so). This plan can be sent until "
             f"{timestamp(run.expires_at)}.")]))
    label = "Request approval" if run.approvals_needed else "Run now"
    go = ButtonElement(text=label, action_id=REQUEST_ACTION, value=str(run.id), style="primary")
    if not run.approvals_needed:
        go = ButtonElement(text=label, action_id=REQUEST_ACTION, value=str(run.id), style="primary", confirm=ConfirmObject(
            title="Run it now?", text=clip(f"{describe(run)} ({run.environment}) starts at once.", 300), confirm="Run",
            deny="Not yet"))
    blocks.append(ActionsBlock(block_id="run.plan", elements=[
        go, ButtonElement(text="Cancel", action_id=CANCEL_ACTION, value=str(run.id))]))
    return Message.of(f"Plan: {describe(run)} ({run.environment})", blocks[:MAX_BLOCKS])


def plan_lines(run: ActionRun) -> list[str]:
    """Each step as the approvers see it: what, where, its undo, what happens if it fails, and read-only looks;
    for a Roll back, the undos it will run, newest first."""
    if run.params.get("mode") == "rollback":
        return _undo_lines(run)
    if not run.plan:  # a run asked for before actions were plans: its step titles
        return [f"{i + 1}. {link_channels(escape(step.title))}" for i, step in enumerate(run.steps)]
    lines = []
    for index, step in enumerate(run.plan):
        row = run.steps[index] if index < len(run.steps) else None
        done = " _(done in the earlier run)_" if row is not None and row.state is StepState.SUCCEEDED else ""
        if run.params.get("mode") == "done" and run.params.get("checked") == index:
            done = " _(checked by hand and marked done: not run again)_"
        notes = [f"undo: {step.undo}" if step.undo else "no undo", f"if it fails: {_FAILURE[step.on_failure]}"]
        if step.retries:
            notes.append(f"{step.retries} retr{'y' if step.retries == 1 else 'ies'}")
        line = f"{index + 1}. {link_channels(escape(step.title))}{done}\n      _{' · '.join(notes)}_"
        if step.probe:
            line += f"\n      _{escape(step.probe[:300])}_"
        lines.append(line)
    return lines


def _undo_lines(run: ActionRun) -> list[str]:
    """A Roll back's plan: the undos its follow-up worked out (`undos`), and the changes that stay (`stays`)."""
    lines = [f"{i + 1}. ↩ {link_channels(escape(title))}" for i, title in enumerate(run.params.get("undos") or [])]
    if not lines:
        lines.append("_Nothing that ran can be put back._")
    stays = [f"step {index + 1} ({escape(title)})" for index, title in run.params.get("stays") or []]
    if stays:
        lines.append("_Stays as it is (no undo): " + "; ".join(stays) + "_")
    return lines


def run_message(run: ActionRun, decisions: list[ApprovalDecision]) -> Message:
    """The channel message of a requested run, in whatever state it is."""
    mark = "🛑 Cancelled" if run.state is ActionState.CANCELLED and run.started_at else _HEADLINE[run.state]
    headline = f"{mark}: {describe(run)}"
    approved = [d for d in decisions if d.decision is Decision.APPROVE]
    approvals = (f"{len(approved)} of {run.approvals_needed}"
                 + (f" ({', '.join(f'<@{d.user_id}>' for d in approved)})" if approved else "")
                 if run.approvals_needed else "not needed")
    fields = [
        MarkdownTextObject(text=f"*Requested by*\n{run.requester}"),
        MarkdownTextObject(text=f"*Service*\n`{run.service}` · _{escape(run.environment)}_"),
        MarkdownTextObject(text=f"*Target*\n{escape(run.target)}"),
        MarkdownTextObject(text=f"*Approvals*\n{approvals}"),
    ]
    if run.reason:
        fields.append(MarkdownTextObject(text=f"*Reason*\n{escape(run.reason)}"))
    blocks: list[Block] = [HeaderBlock(text=clip(headline, MAX_HEADER_TEXT)), SectionBlock(fields=fields)]
    if run.steps:
        blocks += line_sections([_step_line(step) for step in run.steps])
    blocks += manual_blocks(run)  # a step waiting for a person: its instructions and Done / Skip / Failed
    outcome = _outcome(run)
    if outcome:
        blocks.append(SectionBlock(text=clip(outcome, MAX_SECTION_TEXT)))
    if run.state is ActionState.PENDING:
        who = mention(run.approvers) if run.approvers else "anyone but the requester"
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=f"Approvers: {who}. It runs as soon as it has its approvals. "
                 f"Expires {timestamp(run.expires_at)}; then nothing runs.")]))
        blocks.append(approval_buttons(run))
    buttons = run_buttons(run)
    if run.cancel_requested_by and run.state in (ActionState.APPROVED, ActionState.RUNNING):
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=f"Cancel asked by <@{run.cancel_requested_by}>: it stops before its next step and undoes what it "
                 "changed.")]))
    if awaits_people(run) and run.followed_by:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"Followed up by run #{run.followed_by}.")]))
    if awaits_people(run):
        checked = unknown_step(run)
        done = ("" if checked is None else f" Mark done: step {checked + 1} was checked by hand and is done; the "
                "run goes on after it.")
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text="Resume runs it on from the step it was on; Roll back undoes what it changed, newest first."
                 f"{done} Each needs the same approvals as the run. opsbot does not guess which.")]))
    if buttons:
        blocks.append(ActionsBlock(block_id="runbook.run", elements=buttons))
    if run.state in (ActionState.FAILED, ActionState.INTERRUPTED) and run.started_at is not None:
        # Something was touched and did not end well: the next step may well be an incident.
        blocks.append(ActionsBlock(block_id="action.incident", elements=[declare_button(f"run:{run.id}")]))
    kind = "Runbook run" if run.kind is ActionKind.RUNBOOK else "Action"
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"{kind} #{run.id} · requested {timestamp(run.created_at)}")]))
    return Message.of(f"{headline} ({run.environment})", blocks)


def _step_line(step: ActionStep) -> str:
    state, title, detail, seconds = step.state, step.title, step.detail, step.seconds
    line = f"{_STEP[state]} {link_channels(escape(title))}"
    first, _, rest = (detail or "").partition("\n")  # lines after the first (a query's table) show as a code block
    if first:
        line += f" — {link_channels(escape(clip(first, 300)))}"
    effect = getattr(step, "effect", None)
    if state is StepState.FAILED and effect is not None:
        line += f" · _{effect_text(effect)}_"
    if seconds is not None:
        line += f" _({format_seconds(seconds)})_"
    if step.answer is not None:
        line += answer_line(step.answer)
    if rest.strip():
        line += "\n" + code_block(clip(rest, 600))
    return line


def _outcome(run: ActionRun) -> str:
    # Words made now from how the run ended, as data; a run that ended before that was kept has the words written
    # then: `outcome` and `target_state`, mrkdwn escaped.
    outcome, target_state = (outcome_text(run, run.outcome_data) if run.outcome_data is not None
                             else (run.outcome, run.target_state))
    if run.state is ActionState.SUCCEEDED:
        took = ""
        if run.finished_at and run.started_at:
            took = f" in {format_seconds((run.finished_at - run.started_at).total_seconds())}"
        return f"*Done{took}.* {outcome}"
    if run.state is ActionState.FAILED:
        state = f"\n*State now:* {target_state}" if target_state else ""
        return f"*Failed:* {outcome}{state}"
    if run.state is ActionState.INTERRUPTED or (run.state is ActionState.CANCELLED and run.started_at):
        return f"*{outcome}*\n*State now:* {target_state}"
    if run.state in (ActionState.DENIED, ActionState.EXPIRED, ActionState.CANCELLED):
        return outcome or "Nothing ran."
    if run.state is ActionState.HANDED_OVER:
        return f"*{outcome}*"
    return ""


def run_buttons(run: ActionRun) -> list[ButtonElement]:
    """The live message's buttons: Cancel while it may still start a step; Resume / Roll back once
    interrupted or stopped on a step of unknown effect, and Mark done for that step after a person checked it
    (each a new request needing the same approvals)."""
    value = str(run.id)
    rolling_back = run.params.get("mode") == "rollback"  # undos are not cancelled half-way
    if run.state in (ActionState.APPROVED, ActionState.RUNNING) and not run.cancel_requested_by and not rolling_back:
        return [ButtonElement(text="Cancel", action_id=CANCEL_RUN_ACTION, value=value, style="danger",
                              confirm=ConfirmObject(title="Cancel this run?", confirm="Cancel the run", deny="Let it run",
                                                    text="It stops before its next step and undoes what it changed."))]
    if awaits_people(run) and not rolling_back:
        buttons = [ButtonElement(text="Resume…", action_id=RESUME_ACTION, value=value, style="primary"),
                   ButtonElement(text="Roll back…", action_id=ROLL_BACK_ACTION, value=value, style="danger")]
        if unknown_step(run) is not None:
            buttons.append(ButtonElement(text="Checked by hand: mark done…", action_id=MARK_DONE_ACTION, value=value))
        return buttons
    if run.state is ActionState.INTERRUPTED:
        return [ButtonElement(text="Roll back again…", action_id=ROLL_BACK_ACTION, value=value, style="danger")]
    return []


def history_message(service: str | None, runs: list[ActionRun], revisions: list[Revision]) -> Message:
    """`/ops history [service]`: recent runs (of every service, or those touching one: a runbook counts for each
    service it touched), and a service's deploy revisions with a Roll back button on older ones."""
    title = f"History of {service}" if service else "Recent history of every service"
    empty = "No actions yet." if service else "No actions yet on any service."
    blocks: list[Block] = [HeaderBlock(text=clip(title, MAX_HEADER_TEXT)),
                           SectionBlock(text=clip(_runs_text(runs, empty), MAX_SECTION_TEXT))]
    if service is None:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=placeholders(
            "`/ops history <service>` adds a service's deploy revisions, with Roll back buttons."))]))
        return Message.of(title, blocks)
    if revisions:
        blocks.append(SectionBlock(text="*Deploy revisions*"))
        for revision in revisions[:10]:
            line = f"{'▶️ current' if revision.current else '•'} `{escape(revision.id)}` {escape(revision.image)}"
            if revision.created_at:
                line += f" · {timestamp(revision.created_at)}"
            accessory = None
            if not revision.current and len(f"{service} {revision.id}") <= 2000:
                accessory = ButtonElement(text="Roll back to this…", action_id=ROLLBACK_ACTION, value=f"{service} {revision.id}")
            blocks.append(SectionBlock(text=clip(line, MAX_SECTION_TEXT), accessory=accessory))
    return Message.of(title, blocks)


def approval_buttons(run: ActionRun) -> ActionsBlock:
    """Approve and Deny of a pending request: on its own message and in `/ops approvals`, handled alike.

    Approve has no "Approve?" dialog: Slack shows a button's confirm to everyone, so the requester would confirm
    first and be refused after. Refused at once is what a person woken at 3 a.m. wants; an approver has the whole
    plan in the message above the button, and the line under it says it runs once approved."""
    return ActionsBlock(block_id=f"approval.buttons.{run.id}", elements=[
        ButtonElement(text="Approve", action_id=APPROVE_ACTION, value=str(run.id), style="primary"),
        ButtonElement(text="Deny…", action_id=DENY_ACTION, value=str(run.id), style="danger"),
    ])


def approvals_message(runs: list[ActionRun], links: dict[int, str]) -> Message:
    """`/ops approvals`: each pending request linked to its message (`links`: run id → permalink), with the
    same Approve and Deny as there."""
    title = "Pending approvals"
    if not runs:
        text = "Nothing is waiting for approval."
        return Message.of(text, [SectionBlock(text=text)])
    blocks: list[Block] = [HeaderBlock(text=title)]
    room = (MAX_BLOCKS - 2) // 2
    for run in runs[:room]:
        link = links.get(run.id or 0)
        where = f"<{link}|#{run.id}>" if link else f"#{run.id}"
        needs = f"{plural(run.approvals_needed, 'approval')} needed"
        line = (f"🔐 {where} *{escape(describe(run))}* · _{escape(run.environment)}_ · asked by {run.requester} "
                f"{timestamp(run.created_at)} · {needs} · expires {timestamp(run.expires_at)}")
        if run.reason:
            line += f"\n_{escape(clip(run.reason, 300))}_"
        blocks += [SectionBlock(text=clip(line, MAX_SECTION_TEXT)), approval_buttons(run)]
    if len(runs) > room:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"…and {len(runs) - room} more, oldest not shown.")]))
    return Message.of(f"{title}: {len(runs)}", blocks)


def _runs_text(runs: list[ActionRun], empty: str) -> str:
    lines = [f"{_HEADLINE[run.state].split(' ')[0]} #{run.id} *{escape(describe(run))}* · {run.state.value} · "
             f"{run.requester} · {timestamp(run.created_at)}" for run in runs]
    return "\n".join(lines) if lines else empty
