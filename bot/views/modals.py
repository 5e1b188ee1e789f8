"""Modals of the action flow: the reason asked for when a request is sent without one, or denied."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import InputBlock, PlainTextInputElement, SectionBlock
from slack_sdk.models.views import View

from bot.runs.models import ActionRun
from bot.views.runs import describe

DENY_CALLBACK = "approval.deny.reason"
REQUEST_CALLBACK = "action.request.reason"
REASON_BLOCK, REASON_INPUT = "reason", "reason.input"


def deny_modal(run: ActionRun, private_metadata: str) -> dict[str, Any]:
    intro = f"*{describe(run)}* ({run.environment}), requested by {run.requester}. It will not run."
    return _reason(DENY_CALLBACK, "Deny this request", "Deny", intro, "Why? (shown on the request)", private_metadata)


def reason_modal(run: ActionRun, private_metadata: str) -> dict[str, Any]:
    """Asked when a request goes for approval without a reason: approvers want to know why."""
    intro = f"*{describe(run)}* ({run.environment}) needs {run.approvals_needed} approval(s)."
    return _reason(REQUEST_CALLBACK, "Request approval", "Request", intro, "Why? (shown to the approvers)", private_metadata)


def _reason(callback_id: str, title: str, submit: str, intro: str, label: str, private_metadata: str) -> dict[str, Any]:
    return View(
        type="modal", callback_id=callback_id, private_metadata=private_metadata, title=title, submit=submit, close="Back",
        blocks=[
            SectionBlock(text=intro),
            InputBlock(block_id=REASON_BLOCK, label=label, optional=True,
                       element=PlainTextInputElement(action_id=REASON_INPUT, multiline=True, max_length=500)),
        ],
    ).to_dict()
