"""Running one check the way the health runner does, from the dict a catalog entry would give."""

from __future__ import annotations

from typing import Any

from bot import checks
from bot.checks import CheckDeps, CheckSpec, Status
from bot.health import _probe


class _Checks:
    """A catalog entry's check, validated as the catalog does: by the model its `type` names."""

    def validate_python(self, spec: dict[str, Any]) -> CheckSpec:
        return checks.model(spec["type"]).model_validate(spec)


CHECK = _Checks()


async def run(spec: dict, deps: CheckDeps) -> tuple[Status, str]:
    """The status and reason of `spec` (with the runner's timeout and error handling)."""
    return await _probe(CHECK.validate_python(spec), deps)
