"""Whether this replica's Socket Mode connection is up, and for how long it has been down: `/readyz` turns 503 once
it has been down longer than SOCKET_DOWN_SECONDS, which is logged and counted once per outage.

Not responsible for reconnecting (slack_sdk's client does that) nor for serving `/readyz` (`bot.ops_endpoints`).
A Socket Mode connection can die silently: the client's own `is_connected()` (session open, not stale, ping-pong
answered) is asked on a timer, so an outage is timed from when it began, not from the next probe.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from bot.clock import Clock
from bot.views.words import seconds

log = logging.getLogger(__name__)


class Connection(Protocol):
    async def is_connected(self) -> bool: ...


class Counter(Protocol):
    def inc(self, amount: float = 1) -> None: ...


@dataclass(frozen=True)
class LinkState:
    up: bool
    down_for: float  # seconds; 0 while up
    limit: float

    @property
    def ready(self) -> bool:
        return self.up or self.down_for <= self.limit

    def reason(self) -> str:
        """`/readyz`' word on the link: ok, or how long it has been down against the limit."""
        if self.up:
            return "ok"
        if self.ready:
            return f"reconnecting: down for {seconds(self.down_for)} (SOCKET_DOWN_SECONDS is {seconds(self.limit)})"
        return (f"Socket Mode connection down for {seconds(self.down_for)} (SOCKET_DOWN_SECONDS is "
                f"{seconds(self.limit)}); Slack cannot reach this replica")


class SocketLink:
    """Follows one Socket Mode client. Until `follow` is called (before start-up connects) the link is down."""

    def __init__(self, clock: Clock, limit: float, outages: Counter) -> None:
        self._clock, self._limit, self._outages = clock, limit, outages
        self._connection: Connection | None = None
        self._down_since: float | None = clock.monotonic()
        self._reported = False

    def follow(self, connection: Connection) -> None:
        self._connection = connection

    @property
    def interval(self) -> float:
        """How often `watch` looks: often enough that the limit is noticed within a quarter of it, at most 1 s."""
        return min(1.0, max(self._limit / 4, 0.05))

    async def observe(self) -> LinkState:
        up = self._connection is not None and await self._connection.is_connected()
        now = self._clock.monotonic()
        if up:
            if self._down_since is not None and self._reported:
                log.info("the Socket Mode connection is back after %s; /readyz answers 200 again",
                         seconds(now - self._down_since))
            self._down_since, self._reported = None, False
            return LinkState(True, 0.0, self._limit)
        if self._down_since is None:
            self._down_since = now
            log.warning("the Socket Mode connection is down; the client is reconnecting")
        state = LinkState(False, now - self._down_since, self._limit)
        if not state.ready and not self._reported:
            self._reported = True
            self._outages.inc()
            log.error("%s: /readyz answers 503 until it is back", state.reason())
        return state

    async def watch(self) -> None:
        while True:
            await self.observe()
            await self._clock.sleep(self.interval)


SOCKET_LINK_KEY = web.AppKey("socket_link", SocketLink)
