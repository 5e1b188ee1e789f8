"""TCP check: a port accepts a connection. Nothing is sent."""

from __future__ import annotations

import asyncio
from typing import Literal

from pydantic import Field

from bot.checks.base import CheckDeps, CheckSpec, Probe, Status


class TcpCheck(CheckSpec):
    """The port accepts a connection within the timeout (nothing is sent); refused, unreachable or slower is critical."""

    type: Literal["tcp"]
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(ge=1, le=65535)

    def default_label(self) -> str:
        return f"tcp {self.host}:{self.port}"

    async def probe(self, deps: CheckDeps) -> Probe:
        try:
            _, writer = await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            return Probe(Status.CRITICAL, f"cannot connect to {self.host}:{self.port} ({exc.strerror or exc})")
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass  # the connection was made; how the peer hangs up does not matter to the check
        return Probe(Status.OK, f"{self.host}:{self.port} accepts connections")
