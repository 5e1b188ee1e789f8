"""Running one check the way the health runner does, from the dict a catalog entry would give."""

from __future__ import annotations

from pydantic import TypeAdapter

from bot.checks import Check, CheckDeps, Status
from bot.health import _probe

CHECK = TypeAdapter(Check)


async def run(spec: dict, deps: CheckDeps) -> tuple[Status, str]:
    """The status and reason of `spec` (with the runner's timeout and error handling)."""
    return await _probe(CHECK.validate_python(spec), deps)
