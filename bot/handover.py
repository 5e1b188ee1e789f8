"""A graceful stop (SIGTERM): this replica stops taking new work, lets running steps end, and hands its runs over.

Holds the drain state every part reads (readiness, the Bolt middleware that turns new Slack requests away, the
runbook engine's step boundary, the take-over chore); not responsible for the runs themselves
(`bot.runs.execution.hand_over`, `take_over`) nor for the order of the stop (`bot.app.serve`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

log = logging.getLogger(__name__)

RESTARTING = "opsbot is restarting; try again in a moment."


@dataclass
class Handover:
    """Whether this replica is draining, and which handed-over runs it is taking over right now (so two chore
    passes never start the same run twice in one process)."""

    draining: bool = False
    taking: set[int] = field(default_factory=set)

    def begin(self) -> None:
        if not self.draining:
            log.info("stopping: no new work is taken; running steps may finish, then runs are handed over")
        self.draining = True


def refuse_while_draining(handover: Handover) -> Callable[..., Awaitable[BoltResponse]]:
    """Bolt global middleware. While draining, a request starts nothing here, and is answered as Slack's rules allow:
    - an Events API event (HTTP or Socket Mode) gets no ack (a 503): Slack sends it again, and by then the load
      balancer (HTTP) or Slack (Socket Mode: this replica's socket is closed) picks a replica that is up;
    - a slash command is not retried by Slack, so the person is told in one ephemeral line to try again;
    - an interaction (a button, a menu) is not retried either: the line goes to its response_url when it has one;
      a modal submission has none, so it gets the 503 and Slack shows the person that it did not go through.
    """

    async def middleware(req: AsyncBoltRequest, next_: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:
        if not handover.draining:
            return await next_()
        body: dict[str, Any] = req.body
        if "command" in body:
            return BoltResponse(status=200, body={"response_type": "ephemeral", "text": RESTARTING})
        respond = req.context.respond
        if body.get("type") != "event_callback" and respond is not None:
            try:
                await respond(text=RESTARTING, response_type="ephemeral", replace_original=False)
            except Exception:  # noqa: BLE001 - a failed courtesy line must not turn into an error page
                log.warning("could not tell a person that opsbot is restarting (response_url failed)")
            return BoltResponse(status=200, body="")
        return BoltResponse(status=503, body="", headers={"Retry-After": "1"})

    return middleware
