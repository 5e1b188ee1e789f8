"""Disk usage of configured paths, graded like the runbooks' `df` lines (80 % warns, 90 % is critical)."""

from __future__ import annotations

import asyncio
import shutil
from typing import Literal

from pydantic import Field

from bot.checks.base import CheckDeps, CheckSpec, Probe, Status, Thresholds, percent


class DiskCheck(CheckSpec):
    """Used space of each path's filesystem, like `df` (as opsbot sees it: mount a host path into its container to
    watch it); the fullest wins."""

    type: Literal["disk"]
    paths: list[str] = Field(min_length=1)
    usage_percent: Thresholds = Thresholds(warning=80, critical=90)

    def default_label(self) -> str:
        return "disk " + ", ".join(self.paths)

    async def probe(self, deps: CheckDeps) -> Probe:
        findings: list[tuple[Status, str]] = []
        # The report's line shows the label beside the reason: one path its default label names is not said again.
        named = len(self.paths) > 1 or bool(self.name)
        for path in self.paths:
            where = f"{path}: " if named else ""
            try:
                # statvfs can hang on a dead network mount: keep it off the event loop so the timeout holds.
                usage = await asyncio.to_thread(shutil.disk_usage, path)
            except OSError as exc:
                findings.append((Status.ERROR, f"{where}{exc.strerror or exc}"))
                continue
            used = percent(usage.used, usage.used + usage.free)
            status = self.usage_percent.grade(used)
            limit = ""
            if status is Status.CRITICAL:
                limit = f" (critical at {self.usage_percent.critical:g} %)"
            elif status is Status.WARNING:
                limit = f" (warning at {self.usage_percent.warning:g} %)"
            findings.append((status, f"{where}{used:.0f} % used{limit}"))
        worst = Status.worst([status for status, _ in findings])
        return Probe(worst, "; ".join(text for _, text in findings))
