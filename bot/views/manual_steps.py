"""A `manual` step in the run's message: its instructions with Done / Skip / Failed while it waits, who answered
what, and the reminder posted in the run's thread.

Words and blocks only: not responsible for waiting or recording an answer (`bot.runs.steps.manual`,
`bot.runs.manual_answers`). Each button's value is `<run id>:<step position>`, never a command.
"""

from __future__ import annotations

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ConfirmObject, SectionBlock

from bot.runs.models import ActionRun, ActionState, Answer, StepAnswer, StepState
from bot.views import MAX_SECTION_TEXT, Message, clip, escape
from bot.views.common import timestamp

MANUAL = "manual"  # the step kind's name (bot.runs.steps.manual registers it; views import no step logic)
# Action ids of the buttons on messages already posted: keep them as they are.
DONE_ACTION, SKIP_ACTION, FAILED_ACTION = "manual.done", "manual.skip", "manual.failed"
ANSWER_OF = {DONE_ACTION: Answer.DONE, SKIP_ACTION: Answer.SKIPPED, FAILED_ACTION: Answer.FAILED}
_SAID = {Answer.DONE: "done", Answer.SKIPPED: "skipped", Answer.FAILED: "failed"}


def button_value(run_id: int, position: int) -> str:
    return f"{run_id}:{position}"


def waiting(run: ActionRun) -> list[int]:
    """The positions of the manual steps of a running run that wait for a person's answer now."""
    if run.state is not ActionState.RUNNING:
        return []
    return [index for index, planned in enumerate(run.plan)
            if planned.kind == MANUAL and index < len(run.steps) and run.steps[index].state is StepState.RUNNING
            and run.steps[index].answer is None]


def manual_blocks(run: ActionRun) -> list[Block]:
    """Each waiting manual step's instructions (the catalog's mrkdwn; parameter values were escaped when planned)
    and its three buttons."""
    blocks: list[Block] = []
    for index in waiting(run):
        step = run.plan[index]
        text = f"*Step {index + 1} is for a person:* {escape(step.title)}\n{step.args.get('instructions', '')}"
        value = button_value(run.id or 0, index)
        blocks.append(SectionBlock(text=clip(text, MAX_SECTION_TEXT)))
        blocks.append(ActionsBlock(block_id=f"manual.{index}", elements=[
            ButtonElement(text="Done", action_id=DONE_ACTION, value=value, style="primary"),
            ButtonElement(text="Skip", action_id=SKIP_ACTION, value=value),
            ButtonElement(text="Failed", action_id=FAILED_ACTION, value=value, style="danger", confirm=ConfirmObject(
                title="It failed?", confirm="It failed", deny="Back",
                text="The run stops here; what the step left is unknown until a person looks (Resume, Roll back "
                     "or Mark done follow).")),
        ]))
    return blocks


def answer_line(answer: StepAnswer) -> str:
    """How a step line says who answered (mrkdwn): `· marked done by @ann at …`."""
    return f" · _marked {_SAID[answer.answer]} by <@{answer.by}> {timestamp(answer.at)}_"


def answer_note(answer: StepAnswer, position: int, title: str) -> str:
    """The timeline's and the audit log's line (the run note adds the run)."""
    return f"step {position + 1} ({title}) marked {_SAID[answer.answer]} by a person"


def answered(answer: Answer, position: int) -> str:
    """What the person who pressed is told."""
    then = "it stops there for people to decide" if answer is Answer.FAILED else "it goes on"
    return f"Step {position + 1} marked {_SAID[answer]}; the run sees it within seconds and {then}."


def reminder_message(run: ActionRun, position: int, title: str) -> Message:
    text = (f"⏰ {run.requester}: step {position + 1} of run #{run.id} ({escape(title)}) is still waiting for a "
            "person. Press *Done*, *Skip* or *Failed* on the run's message.")
    return Message.of(f"Step {position + 1} of run #{run.id} is waiting for a person",
                      [SectionBlock(text=clip(text, MAX_SECTION_TEXT))])
