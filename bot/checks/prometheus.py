"""Prometheus check: an instant PromQL query through the HTTP API, its value against limits; no data is its own
configurable outcome. Requesting is `bot.checks._http`; writing good queries is the catalog author's part."""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import Field

from bot.checks._http import HttpSource, Unreachable, fetch
from bot.checks._limits import SERVER_MARGIN, NumberLimits, Outcome, number
from bot.checks.base import CheckDeps, CheckSpec, Probe, Status, limit_note


class PrometheusCheck(HttpSource, NumberLimits, CheckSpec):
    """An instant query through Prometheus's `/api/v1/query`: a scalar, or every series of a vector, is graded and
    the worst is reported with its labels. A query Prometheus refuses is critical, with Prometheus's error."""

    type: Literal["prometheus"]
    query: str = Field(min_length=1, description="PromQL, evaluated now (an instant query)")
    unit: str = Field(default="", max_length=40, description="words after the number in the reason")
    empty: Outcome = Field(default="warning", description="outcome when there is no sample, or only NaN")

    def default_label(self) -> str:
        return "prometheus " + (self.query if len(self.query) <= 40 else self.query[:39] + "…")

    async def probe(self, deps: CheckDeps) -> Probe:
        endpoint = str(self.url).rstrip("/") + "/api/v1/query"
        # Prometheus gives up a little before the health runner does: its answer then says why (and the evaluation
        # stops on its side too) rather than the runner's bare "timed out".
        server_ms = max(1, round(self.timeout * (1 - SERVER_MARGIN) * 1000))
        params = {"query": self.query, "timeout": f"{server_ms}ms"}  # a Prometheus duration: "4.5s" is not one
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
        samples: list[tuple[dict[str, Any], float]]
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
            return self.no_number(f"{what} for {_short(self.query)}")
        limits = self.limits
        graded = [(limits.grade(value), value, labels) for labels, value in numbers]
        # Worst status first; within it the furthest out of line (highest for `above`, lowest for `below`).
        sign = 1 if self.above is not None else -1
        status, value, labels = max(graded, key=lambda g: (g[0].rank, sign * g[1]))
        unit = f" {self.unit}" if self.unit else ""
        reason = f"{number(value)}{unit}{_labels(labels)}{limit_note(status, limits, unit)}"
        if len(numbers) > 1:
            reason += f" (worst of {len(numbers)} series)"
        return Probe(status, reason)


def _value(sample: Any) -> float:
    # A sample is [timestamp, "value"]; the value is a string so that NaN and ±Inf survive JSON.
    try:
        return float(sample[1])
    except (TypeError, ValueError, IndexError):
        return math.nan


def _labels(labels: dict[str, str]) -> str:
    shown = ", ".join(f'{name}="{value}"' for name, value in sorted(labels.items()))
    return f" for {{{shown}}}" if shown else ""


def _short(query: str) -> str:
    return query if len(query) <= 120 else query[:119] + "…"
