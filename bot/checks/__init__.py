"""The check kinds, keyed by the `type:` a catalog entry gives.

To add a kind: one module here with a `CheckSpec` subclass, then add it to `Check` below.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from bot.checks.base import CheckDeps, CheckSpec, Probe, Status, Thresholds
from bot.checks.disk import DiskCheck
from bot.checks.http import HttpCheck
from bot.checks.postgres import PostgresCheck
from bot.checks.redis import RedisCheck
from bot.checks.tcp import TcpCheck

Check = Annotated[
    Union[HttpCheck, TcpCheck, PostgresCheck, RedisCheck, DiskCheck],
    Field(discriminator="type"),
]

__all__ = ["Check", "CheckDeps", "CheckSpec", "Probe", "Status", "Thresholds"]
