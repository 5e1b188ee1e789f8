"""Thresholds over a percentage: the same models as `Thresholds` and `Floor`, refusing limits above 100 at load
(a `cpu_percent: {critical: 150}` could never be reached and would silently never alert)."""

from __future__ import annotations

from typing import Annotated, TypeVar

from pydantic import AfterValidator

from bot.checks.base import Floor, Thresholds

L = TypeVar("L", Thresholds, Floor)


def _at_most_100(limits: L) -> L:
    for name in ("warning", "critical"):
        value = getattr(limits, name)
        if value is not None and value > 100:
            raise ValueError(f"{name} ({value:g}) is a percentage: it must not be above 100")
    return limits


PercentThresholds = Annotated[Thresholds, AfterValidator(_at_most_100)]
PercentFloor = Annotated[Floor, AfterValidator(_at_most_100)]
