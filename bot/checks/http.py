"""HTTP check: expected status, optional body substring, latency thresholds.

The runbooks' `curl -f http://…/health` lines, without a shell.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bot.checks._http import BODY_LIMIT, ExpectStatus, HttpSource, Unreachable, fetch
from bot.checks.base import CheckDeps, CheckSpec, Probe, Status, Thresholds


class HttpCheck(HttpSource, ExpectStatus, CheckSpec):
    """One request (the runbooks' `curl -f`, without a shell): a status outside `expect_status`, a body without
    `body_contains`, no answer or a timeout is critical; the answer's time is graded by `latency_ms`."""

    type: Literal["http"]
    method: Literal["GET", "HEAD", "POST"] = "GET"
    body_contains: str | None = Field(default=None, min_length=1,
                                      description="text the body must hold (case-sensitive; at most 1 MiB is read)")
    latency_ms: Thresholds | None = Field(default=None, description="the answer's time in milliseconds")

    def default_label(self) -> str:
        return f"http {self.url.path or '/'}"

    async def probe(self, deps: CheckDeps) -> Probe:
        try:
            answer = await fetch(deps, self, method=self.method, read_body=self.body_contains is not None, limit=BODY_LIMIT)
        except Unreachable as exc:
            return Probe(Status.CRITICAL, exc.reason)
        status_code = answer.status
        if status_code not in self.expect_status:
            return Probe(Status.CRITICAL, f"HTTP {status_code} (expected {self.expected()})")
        if self.body_contains and self.body_contains.encode() not in answer.body:
            return Probe(Status.CRITICAL, f"HTTP {status_code} but the body lacks {self.body_contains!r}")
        if self.latency_ms is not None:
            graded = self.latency_ms.grade(answer.elapsed_ms)
            if graded is not Status.OK:
                limit = self.latency_ms.critical if graded is Status.CRITICAL else self.latency_ms.warning
                return Probe(graded, f"HTTP {status_code}, slow: {answer.elapsed_ms:.0f} ms (limit {limit:g} ms)")
        return Probe(Status.OK, f"HTTP {status_code}")
