"""The catalog's runbooks in messages: the list (`/ops runbooks`) and the parameters modal.

A runbook's plan and its run are rendered as every run's are (`bot.views.runs`); this module holds what only the
catalog side has.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
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

from bot.runbooks.definitions import BackupParameter, ChoiceParameter, IntegerParameter, Runbook
from bot.runbooks.params import Problem, explain
from bot.runs.models import BackupRecord
from bot.views import (
    MAX_BLOCKS,
    MAX_HEADER_TEXT,
    MAX_SECTION_TEXT,
    Message,
    clip,
    escape,
    human_size,
    placeholders,
)

OFFER_ACTION = "runbook.offer"  # value: a runbook name; opens the parameters modal or shows the plan
PARAMS_CALLBACK = "runbook.params"
PARAM_INPUT = "value"


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
