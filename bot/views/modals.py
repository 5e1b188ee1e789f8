"""Modals: the reason asked for when someone denies a request."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import InputBlock, PlainTextInputElement, SectionBlock
from slack_sdk.models.views import View

from bot.actions.models import ActionRun
from bot.views.actions import describe

DENY_CALLBACK = "approval.deny.reason"
REQUEST_CALLBACK = "action.request.reason"
REASON_BLOCK, REASON_INPUT = "reason", "reason.input"


def deny_modal(run: ActionRun, private_metadata: str) -> dict[str, Any]:
    view = View(
        type="modal",
        callback_id=DENY_CALLBACK,
        private_metadata=private_metadata,
        title="Deny this request",
        submit="Deny",
        close="Back",
        blocks=[
            SectionBlock(text=f"*{describe(run)}* ({run.environment}), requested by <@{run.requested_by}>. It will not run."),
            InputBlock(block_id=REASON_BLOCK, label="Why? (shown on the request)", optional=True,
                       element=PlainTextInputElement(action_id=REASON_INPUT, multiline=True, max_length=500)),
        ],
    )
    return view.to_dict()


def reason_modal(run: ActionRun, private_metadata: str) -> dict[str, Any]:
    """Asked when a request goes for approval without a reason: approvers want to know why."""
    view = View(
        type="modal",
        callback_id=REQUEST_CALLBACK,
        private_metadata=private_metadata,
        title="Request approval",
        submit="Request",
        close="Back",
        blocks=[
            SectionBlock(text=f"*{describe(run)}* ({run.environment}) needs {run.approvals_needed} approval(s)."),
            InputBlock(block_id=REASON_BLOCK, label="Why? (shown to the approvers)", optional=True,
                       element=PlainTextInputElement(action_id=REASON_INPUT, multiline=True, max_length=500)),
        ],
    )
    return view.to_dict()
