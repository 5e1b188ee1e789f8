"""Who may ask for a runbook and who approves it: its own `approvals:`, else each of its services' policies.

Pure, on the catalog: `validation` refuses a catalog whose services name different approvers, and the run's
policy is built from the same reading. Not responsible for checking a person (`bot.runs.runbook_plans`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.runbooks.definitions import Runbook
from bot.runs.models import ActionKind
from bot.runs.policy import ResolvedPolicy, resolve_policy

if TYPE_CHECKING:
    from bot.catalog import Catalog


def policies(catalog: Catalog, name: str, runbook: Runbook) -> list[tuple[str | None, ResolvedPolicy]]:
    """(service, its runbook policy) for each service, or (None, the runbook's own) when it has one."""
    if runbook.approvals is not None:
        p = runbook.approvals
        return [(None, ResolvedPolicy(p.approvals, tuple(p.approvers), tuple(p.requesters), f"runbooks.{name}.approvals"))]
    found: list[tuple[str | None, ResolvedPolicy]] = []
    for service in runbook.services:
        entry = catalog.services.get(service)
        if entry is not None:
            found.append((service, resolve_policy(service, entry.environment, entry.owners, entry.approvals,
                                                  catalog.approvals, ActionKind.RUNBOOK)))
    return found


def configured_approvers(found: list[tuple[str | None, ResolvedPolicy]]) -> dict[tuple[str, ...], str | None]:
    """The approver lists configured policies name (not the owners a default falls back to), each with the first
    service naming it: more than one means the services disagree."""
    configured: dict[tuple[str, ...], str | None] = {}
    for service, policy in found:
        if policy.approvers and not policy.source.startswith("default"):
            configured.setdefault(policy.approvers, service)
    return configured
