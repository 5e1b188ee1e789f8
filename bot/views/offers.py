"""Buttons that lead from one flow into another: **Declare incident…** under a red health report or a failed run.

Only the button; the form it opens is `bot.views.incidents.declare_modal`, prefilled by `bot.incidents.offers`.
"""

from __future__ import annotations

from slack_sdk.models.blocks import ButtonElement

DECLARE_OFFER = "incident.declare.offer"  # value `health:<run id>` or `run:<action run id>`: opens a prefilled form


def declare_button(source: str) -> ButtonElement:
    """`source` is `health:<id>` or `run:<id>`: what the form is prefilled from."""
    return ButtonElement(text="Declare incident…", action_id=DECLARE_OFFER, value=source)
