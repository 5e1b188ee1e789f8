"""The `notify` kind: a message to a channel (the run's by default), with mentions; changes no service.

Not responsible for posting (`StepDeps.chat`).
"""

from __future__ import annotations

import html
from typing import Annotated, Any, Literal

from pydantic import Field
from slack_sdk.models.blocks import SectionBlock

from bot.executors.base import Effect
from bot.runs.models import ActionRun
from bot.runs.steps.base import (
    CHANNEL_ID,
    MENTION_ID,
    Note,
    PlannedStep,
    StepDeps,
    StepKind,
    Template,
    Traits,
    UndoBook,
    _Step,
    refused,
    register,
)
from bot.views import Message
from bot.views.words import channel_ref


class NotifyStep(_Step):
    kind: Literal["notify"]
    text: Template = Field(min_length=1, max_length=2000)
    channel: str | None = Field(default=None, pattern=CHANNEL_ID.pattern, description="None: the run's channel")
    mention: list[Annotated[str, Field(pattern=MENTION_ID.pattern)]] = Field(default_factory=list)


async def _describe(deps: StepDeps, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    # A plain title like every step's (the views escape it and link the channel); the text was escaped for
    # posting, so it is unescaped here rather than shown escaped twice.
    to = channel_ref(args["channel"]) if args["channel"] else "this channel"
    return f"Post to {to}: {html.unescape(str(args['text']))[:150]}", ""


async def _perform(deps: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note) -> str:
    channel = step.args.get("channel") or run.channel_id
    if not channel:
        raise refused("no channel to post to")
    mentions = " ".join(f"<!subteam^{i}>" if i.startswith("S") else f"<@{i}>" for i in step.args.get("mention") or [])
    text = f"{mentions} {step.args['text']}".strip()
    await deps.chat.post(channel, Message.of(text[:3000], [SectionBlock(text=text[:3000])]))
    return f"posted to {channel_ref(channel)}"


KIND = register(StepKind("notify", NotifyStep,
                         Traits(changes=False, undo=None, cut_short=Effect.UNTOUCHED, on_failure="continue"),
                         _describe, _perform, escape_values=True))
