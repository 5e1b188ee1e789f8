"""A check finding and the runbook step that gates on it: what every check family returns for one command.

Not responsible for finding checks (`checks`, `http_checks`).
"""

from __future__ import annotations

from bot.importing.model import CheckFinding, Found
from bot.importing.pipeline import Pipeline


def check_step(finding: CheckFinding) -> dict[str, object]:
    return {"kind": "check", "service": finding.service, "checks": [finding.check["name"]]}


def as_found(p: Pipeline, finding: CheckFinding, *decisions: str) -> Found:
    """A check of the service and the runbook step that gates on it; an incomplete one stays a manual step."""
    if not finding.complete:
        return Found(manual=f"a {finding.check['type']} check needs {finding.missing}: proposed in the draft, "
                            "commented out", decisions=decisions, checks=(finding,), targets=p.target_hints())
    return Found(steps=(check_step(finding),), checks=(finding,), decisions=decisions, targets=p.target_hints(),
                 sure=finding.sure)


def short(text: str, size: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[:size - 1] + "…"
