"""One number judged against `above` or `below` limits, with a chosen outcome when there is no number at all: what
the `sql` and `prometheus` checks share. How each gets its number is its own module's business."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from bot.checks.base import Floor, Probe, Status, Thresholds

Outcome = Literal["ok", "warning", "critical"]
OUTCOMES: dict[str, Status] = {"ok": Status.OK, "warning": Status.WARNING, "critical": Status.CRITICAL}

# A server that can stop by itself (PostgreSQL's statement_timeout, Prometheus's query timeout) is given this share
# of the check's timeout less, so it gives up first and says why, and stops working on it even when nobody waits.
SERVER_MARGIN = 0.2


class NumberLimits(BaseModel):
    """Mixin: exactly one of `above` (high is bad) and `below` (low is bad), and `empty` for no number."""

    above: Thresholds | None = Field(default=None, description="high is bad: a level is reached at its value "
                                                               "(`strict: true`: only above it)")
    below: Floor | None = Field(default=None, description="low is bad: a level is reached below its value "
                                                          "(`strict: false`: at it too)")
    empty: Outcome = Field(default="critical", description="outcome when there is no number")

    @model_validator(mode="after")
    def _one_direction(self) -> NumberLimits:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of `above` (high is bad) and `below` (low is bad)")
        return self

    @property
    def limits(self) -> Thresholds | Floor:
        if self.above is not None:
            return self.above
        assert self.below is not None  # the validator lets exactly one through
        return self.below

    def no_number(self, reason: str) -> Probe:
        return Probe(OUTCOMES[self.empty], reason)


def number(value: float) -> str:
    """12, 28.57, 0.4975, 12 345, +Inf: as many digits as a person reads, no more."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if abs(value) >= 10_000:
        return f"{value:,.0f}".replace(",", " ")
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4g}"
