"""Prometheus check: an instant PromQL query through the HTTP API, its value against limits; no data is its own
configurable outcome. Requesting is `bot.checks._http`; writing good queries is the catalog author's part."""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import Field, model_validator

from bot.checks._http import HttpSource, Unreachable, fetch
from bot.checks.base import (
    CheckDeps,
    CheckSpec,
    Floor,
    Probe,
    Status,
    Thresholds,
    limit_note,
)

_OUTCOMES = {"ok": Status.OK, "warning": Status.WARNING, "critical": Status.CRITICAL}


class PrometheusCheck(HttpSource, CheckSpec):
    type: Literal["prometheus"]
    query: str = Field(min_length=1, description="PromQL, evaluated now (an instant query)")
    unit: str = Field(default="", max_length=40, description="words after the number in the reason")
    above: Thresholds | None = Field(default=None, description="high is bad")
    below: Floor | None = Field(default=None, description="low is bad")
    empty: Literal["ok", "warning", "critical"] = Field(default="warning", description="outcome when there is no sample")

    @model_validator(mode="after")
    def _one_direction(self) -> PrometheusCheck:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of `above` (high is bad) and `below` (low is bad)")
        return self

    def default_label(self) -> str:
        return "prometheus " + (self.query if len(self.query) <= 40 else self.query[:39] + "…")

    async def probe(self, deps: CheckDeps) -> Probe:
        endpoint = str(self.url).rstrip("/") + "/api/v1/query"
        # Prometheus's own timeout stops the evaluation on its side too when we give up waiting.
        params = {"query": self.query, "timeout": f"{self.timeout:g}"}  # seconds
        try:
            answer = await fetch(deps, self, url=endpoint, params=params)
        except Unreachable as exc:
            return Probe(Status.CRITICAL, exc.reason)
        try:
            document = json.loads(answer.body)
        except ValueError:
            document = None
        if not isinstance(document, dict) or "status" not in document:
            return Probe(Status.CRITICAL, f"HTTP {answer.status} from {self.host_port()}, not a Prometheus API answer")
        if document["status"] != "success":
            kind = document.get("errorType") or "error"
            return Probe(Status.CRITICAL, f"Prometheus error ({kind}): {str(document.get('error', ''))[:300]}")
        return self.judge(document.get("data") or {})

    def judge(self, data: dict[str, Any]) -> Probe:
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar":
            samples = [({}, _value(result))]
        elif kind == "vector":
            samples = [(series.get("metric") or {}, _value(series.get("value"))) for series in result or []]
        else:
            return Probe(Status.ERROR, f"the query returns a {kind}, not a number; use an instant vector or scalar "
                                       "(a range like [5m] needs rate() or similar around it)")
        # NaN is what 0/0 gives: an error rate with no requests at all. That is no data, not a failure.
        numbers = [(labels, value) for labels, value in samples if not math.isnan(value)]
        if not numbers:
            what = "no data" if not samples else "no defined value (NaN)"
            return Probe(_OUTCOMES[self.empty], f"{what} for {_short(self.query)}")
        limits: Thresholds | Floor = self.above or self.below  # type: ignore[assignment]
        graded = [(limits.grade(value), value, labels) for labels, value in numbers]
        # Worst status first; within it the furthest out of line (highest for `above`, lowest for `below`).
        sign = 1 if self.above is not None else -1
        status, value, labels = max(graded, key=lambda g: (g[0].rank, sign * g[1]))
        unit = f" {self.unit}" if self.unit else ""
        reason = f"{_number(value)}{unit}{_labels(labels)}{limit_note(status, limits, unit)}"
        if len(numbers) > 1:
            reason += f" (worst of {len(numbers)} series)"
        return Probe(status, reason)


def _value(sample: Any) -> float:
    # A sample is [timestamp, "value"]; the value is a string so that NaN and ±Inf survive JSON.
    try:
        return float(sample[1])
    except (TypeError, ValueError, IndexError):
        return math.nan


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if abs(value) >= 10_000:
        return f"{value:,.0f}".replace(",", " ")
    return f"{value:.4g}"


def _labels(labels: dict[str, str]) -> str:
    shown = ", ".join(f'{name}="{value}"' for name, value in sorted(labels.items()))
    return f" for {{{shown}}}" if shown else ""


def _short(query: str) -> str:
    return query if len(query) <= 120 else query[:119] + "…"
