"""Runbook messages: the list (`/ops runbooks`), the plan with every step resolved, and the parameters modal.

The live run message is the action message (`bot.views.actions`), which adds a runbook's Cancel, Resume and
Roll back buttons; this module holds what only runbooks have.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.actions.models import ActionRun, ActionState, BackupRecord, StepState
from bot.actions.policy import mention
from bot.runbooks.definitions import BackupParameter, ChoiceParameter, IntegerParameter, Runbook
from bot.runbooks.effects import awaits_people, needs_undo, unknown_step
from bot.runbooks.params import Problem, explain
from bot.views import (
    MAX_BLOCKS,
    MAX_HEADER_TEXT,
    MAX_SECTION_TEXT,
    Message,
    clip,
    escape,
    human_size,
    line_sections,
    placeholders,
)
from bot.views.common import timestamp
from bot.views.words import link_channels

OFFER_ACTION = "runbook.offer"  # value: a runbook name; opens the parameters modal or shows the plan
PARAMS_CALLBACK = "runbook.params"
CANCEL_RUN_ACTION, RESUME_ACTION, ROLL_BACK_ACTION = "runbook.cancel", "runbook.resume", "runbook.rollback"
MARK_DONE_ACTION = "runbook.mark_done"  # value: a run id; its step of unknown effect was checked by hand
PARAM_INPUT = "value"
_FAILURE = {"rollback": "roll back", "stop": "stop there", "continue": "go on"}


def runbooks_message(runbooks: dict[str, Runbook], service: str | None = None) -> Message:
    chosen = {name: rb for name, rb in sorted(runbooks.items()) if service is None or service in rb.services}
    title = f"Runbooks for {service}" if service else "Runbooks"
    if not chosen:
        text = (f"No runbook touches `{service}`." if service else "The catalog has no `runbooks:` yet.")
        return Message.of(text, [SectionBlock(text=text)])
    blocks: list[Block] = [HeaderBlock(text=clip(title, MAX_HEADER_TEXT))]
    for name, runbook in list(chosen.items())[:MAX_BLOCKS - 3]:
        params = " ".join(f"`{p}=…`" for p in runbook.parameters)
        lines = [f"*{name}* — {escape(runbook.description) or '_no description_'}",
                 f"{len(runbook.steps)} steps on " + ", ".join(f"`{s}`" for s in runbook.services)
                 + (f" · parameters: {params}" if params else "")]
        blocks.append(SectionBlock(text=clip("\n".join(lines), MAX_SECTION_TEXT),
                                   accessory=ButtonElement(text="Run…", action_id=OFFER_ACTION, value=name)))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(
        text=placeholders("`/ops run <runbook> name=value …` plans one; nothing runs before the plan is sent and approved."))]))
    return Message.of(title, blocks)


def describe_runbook(run: ActionRun) -> str:
    """`runbook deploy-api (version=2.0)`, or the Resume / Roll back of an earlier run."""
    values = " ".join(f"{k}={v}" for k, v in (run.params.get("values") or {}).items())
    name = f"runbook {run.params.get('runbook')}" + (f" ({values})" if values else "")
    mode = run.params.get("mode")
    if mode == "resume":
        return f"resume {name} from run #{run.params.get('of')}"
    if mode == "rollback":
        return f"roll back {name} of run #{run.params.get('of')}"
    if mode == "done":
        return f"go on with {name} from run #{run.params.get('of')}, step {int(run.params.get('checked', 0)) + 1} checked by hand"
    return name


def plan_lines(run: ActionRun) -> list[str]:
    """Each step as the approvers see it: what, where, its undo, what happens if it fails, and read-only looks;
    for a Roll back, the undos it will run, newest first."""
    if run.params.get("mode") == "rollback":
        return _undo_lines(run)
    lines = []
    for index, step in enumerate(run.params.get("plan") or []):
        row = run.steps[index] if index < len(run.steps) else None
        done = " _(done in the earlier run)_" if row is not None and row.state is StepState.SUCCEEDED else ""
        if run.params.get("mode") == "done" and run.params.get("checked") == index:
            done = " _(checked by hand and marked done: not run again)_"
        notes = [f"undo: {step['undo']}" if step["undo"] else "no undo",
                 f"if it fails: {_FAILURE[step['on_failure']]}"]
        if step["retries"]:
            notes.append(f"{step['retries']} retr{'y' if step['retries'] == 1 else 'ies'}")
        line = f"{index + 1}. {link_channels(escape(step['title']))}{done}\n      _{' · '.join(notes)}_"
        if step.get("probe"):
            line += f"\n      _{escape(step['probe'][:300])}_"
        lines.append(line)
    return lines


def _undo_lines(run: ActionRun) -> list[str]:
    from bot.runbooks.steps import PlannedStep, can_undo, undo_title

    plan = [PlannedStep.of(data) for data in run.params.get("plan") or []]
    lines: list[str] = []
    stays: list[str] = []
    for index in range(min(len(plan), len(run.steps)) - 1, -1, -1):
        step, row = plan[index], run.steps[index]
        if not needs_undo(row, chosen_by_people=True):  # what the engine's Roll back will undo
            continue
        if can_undo(step, row.undo):
            lines.append(f"{len(lines) + 1}. ↩ {link_channels(escape(undo_title(step, row.undo or {})))}")
        elif step.undo is None and row.state is StepState.SUCCEEDED:
            stays.append(f"step {index + 1} ({escape(step.title)})")
    if not lines:
        lines.append("_Nothing that ran can be put back._")
    if stays:
        lines.append("_Stays as it is (no undo): " + "; ".join(stays) + "_")
    return lines


def runbook_plan_message(run: ActionRun, request_action: str, cancel_action: str) -> Message:
    needs = (f"{run.approvals_needed} approval{'s' if run.approvals_needed > 1 else ''} from "
             + (mention(run.approvers) if run.approvers else "anyone but you")
             if run.approvals_needed else "none: it runs when you press *Run now*")
    values = run.params.get("values") or {}
    shown = clip(", ".join(f"`{k}` = `{escape(str(v))}`" for k, v in values.items()) or "none", 1900)
    mode = run.params.get("mode")
    blocks: list[Block] = [
        HeaderBlock(text=clip(f"📝 Plan: {describe_runbook(run)}", MAX_HEADER_TEXT)),
        SectionBlock(fields=[
            MarkdownTextObject(text="*Services*\n" + ", ".join(f"`{s}`" for s in run.services)
                               + f" · _{escape(run.environment)}_"),
            MarkdownTextObject(text=f"*Parameters*\n{shown}"),
            MarkdownTextObject(text=f"*Approval*\n{needs}"),
            MarkdownTextObject(text=f"*Reason*\n{escape(run.reason) or '_none given_'}"),
        ]),
    ]
    title = "*Steps*"
    if mode == "rollback":
        title = ("*Undo, newest first,* what the interrupted run changed and can put back (the step it stopped on "
                 "included)")
    blocks += line_sections(plan_lines(run), title)
    blocks.append(ContextBlock(elements=[MarkdownTextObject(
        text=f"Nothing has been touched to make this plan (read-only looks say so). It can be sent until "
             f"{timestamp(run.expires_at)}.")]))
    label = "Request approval" if run.approvals_needed else "Run now"
    go = ButtonElement(text=label, action_id=request_action, value=str(run.id), style="primary")
    if not run.approvals_needed:
        go = ButtonElement(text=label, action_id=request_action, value=str(run.id), style="primary", confirm=ConfirmObject(
            title="Run it now?", text=clip(f"{describe_runbook(run)} starts at once.", 300), confirm="Run", deny="Not yet"))
    blocks.append(ActionsBlock(block_id="runbook.plan", elements=[
        go, ButtonElement(text="Cancel", action_id=cancel_action, value=str(run.id))]))
    return Message.of(f"Plan: {describe_runbook(run)}", blocks[:MAX_BLOCKS])


def run_buttons(run: ActionRun) -> list[ButtonElement]:
    """The live message's runbook buttons: Cancel while it may still start a step; Resume / Roll back once
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


def params_modal(name: str, runbook: Runbook, given: dict[str, str], problems: list[Problem],
                 backups: dict[str, list[BackupRecord]], private_metadata: str) -> dict[str, Any]:
    """Typed inputs for every parameter, prefilled with what was typed; `problems` shown under the inputs."""
    wrong = {p.parameter: p.message for p in problems}
    blocks: list[Block] = [SectionBlock(text=clip(f"*{name}* — {escape(runbook.description) or 'no description'}\n"
                                                  f"{len(runbook.steps)} steps on "
                                                  + ", ".join(f"`{s}`" for s in runbook.services), MAX_SECTION_TEXT))]
    stray = [p for p in problems if p.parameter not in runbook.parameters]
    if stray:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip("⚠️ " + "; ".join(p.message for p in stray), 2000))]))
    for pname, parameter in list(runbook.parameters.items())[:MAX_BLOCKS - 3]:
        default = getattr(parameter, "default", None)  # a backup parameter has none
        current = given.get(pname) or (None if default is None else str(default))
        hint = f"⚠️ {wrong[pname]}" if pname in wrong else (parameter.description or explain(parameter))
        blocks.append(InputBlock(block_id=f"param.{pname}", label=clip(pname, 2000), hint=clip(hint, 2000),
                                 element=_element(parameter, current, backups)))
    return View(type="modal", callback_id=PARAMS_CALLBACK, private_metadata=private_metadata,
                title=clip(f"Run {name}", 24), submit="Plan", close="Back", blocks=blocks).to_dict()


def _element(parameter: Any, current: str | None, backups: dict[str, list[BackupRecord]]) -> Any:
    if isinstance(parameter, ChoiceParameter):
        options = [Option(text=c, value=c) for c in parameter.choices]
        initial = next((o for o in options if o.value == current), None)
        return StaticSelectElement(action_id=PARAM_INPUT, options=options, initial_option=initial)
    if isinstance(parameter, BackupParameter):
        records = backups.get(parameter.service, [])[:99]
        options = [Option(text="latest verified", value="latest")] + [
            Option(text=clip(f"{r.id} · {r.created_at:%Y-%m-%d %H:%M} UTC · {human_size(r.size)} · {r.label.value}", 75),
                   value=str(r.id)) for r in records]
        initial = next((o for o in options if o.value == current), None)
        return StaticSelectElement(action_id=PARAM_INPUT, options=options, initial_option=initial)
    if isinstance(parameter, IntegerParameter):
        return NumberInputElement(action_id=PARAM_INPUT, is_decimal_allowed=False, min_value=str(parameter.min),
                                  max_value=str(parameter.max), initial_value=current if current and current.lstrip("-").isdigit()
                                  else None)
    return PlainTextInputElement(action_id=PARAM_INPUT, initial_value=clip(current, 200) if current else None, max_length=500)


def modal_values(view: dict[str, Any]) -> dict[str, str]:
    """What the parameters modal was submitted with, by parameter name."""
    found: dict[str, str] = {}
    for block_id, inputs in ((view.get("state") or {}).get("values") or {}).items():
        if not block_id.startswith("param."):
            continue
        value = inputs.get(PARAM_INPUT) or {}
        chosen = value.get("selected_option") or {}
        text = chosen.get("value") if chosen else value.get("value")
        if text is not None:
            found[block_id.removeprefix("param.")] = str(text)
    return found
