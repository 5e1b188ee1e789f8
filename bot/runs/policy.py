"""Approval policy: how many approvals an action needs, from whom, and who may ask at all.

Resolved per service and action from the catalog (service override → environment policy → safe default).
Slack user groups are expanded through `usergroups.users.list`, cached for a few minutes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.errors import OpsbotError
from bot.runs.models import ActionKind

SLACK_ID_HELP = "Slack user IDs (U…/W…) or user-group IDs (S…)"


def _slack_ids(ids: list[str]) -> list[str]:
    import re

    for value in ids:
        if not re.match(r"^[UWS][A-Z0-9]{2,}$", value):
            raise ValueError(f"{value!r} is not a Slack user ID (U…/W…) or user-group ID (S…)")
    return ids


class ApprovalPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    approvals: int = Field(default=1, ge=0, le=5, description="distinct approvers needed; 0 runs at once")
    approvers: list[str] = Field(default_factory=list,
                                 description=f"who may approve ({SLACK_ID_HELP}); empty: anyone but the requester")
    requesters: list[str] = Field(default_factory=list, description=f"who may request ({SLACK_ID_HELP}); empty: anyone")

    _ids = field_validator("approvers", "requesters")(_slack_ids)


class ActionPolicies(BaseModel):
    """Policies per action kind, with `default` for the kinds not named."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    default: ApprovalPolicy | None = None
    restart: ApprovalPolicy | None = None
    backup: ApprovalPolicy | None = None
    restore: ApprovalPolicy | None = None
    rollback: ApprovalPolicy | None = None
    runbook: ApprovalPolicy | None = None

    def for_kind(self, kind: ActionKind) -> ApprovalPolicy | None:
        return getattr(self, kind.value) or self.default


class ApprovalSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    expire_after_minutes: float = Field(default=30, gt=0, le=24 * 60)
    environments: dict[str, ActionPolicies] = Field(default_factory=dict)


@dataclass(frozen=True)
class ResolvedPolicy:
    approvals: int
    approvers: tuple[str, ...]
    requesters: tuple[str, ...]
    source: str  # where it came from, for the plan: "services.api.approvals.restart"


def resolve_policy(
    service_name: str,
    environment: str,
    owners: Sequence[str],
    service_policies: ActionPolicies | None,
    settings: ApprovalSettings,
    kind: ActionKind,
) -> ResolvedPolicy:
    candidates = [
        (service_policies.for_kind(kind) if service_policies else None, f"services.{service_name}.approvals"),
        (settings.environments[environment].for_kind(kind) if environment in settings.environments else None,
         f"approvals.environments.{environment}"),
    ]
    for policy, source in candidates:
        if policy is not None:
            return ResolvedPolicy(policy.approvals, tuple(policy.approvers), tuple(policy.requesters), source)
    # Nothing configured: the safe default is one approval, by the service's owners when it has any.
    return ResolvedPolicy(1, tuple(owners), (), "default (no policy configured)")


class NotAllowed(OpsbotError):
    """The user may not request or approve this."""


GroupMembers = Callable[[str], Awaitable[set[str]]]


class Membership:
    """Answers "is this user one of these IDs?", expanding user groups with a short-lived cache."""

    def __init__(self, members: GroupMembers, ttl: float = 300.0) -> None:
        self._members, self._ttl = members, ttl
        self._cache: dict[str, tuple[float, set[str]]] = {}

    async def contains(self, ids: Sequence[str], user: str) -> bool:
        if user in ids:
            return True
        for group in (i for i in ids if i.startswith("S")):
            if user in await self._group(group):
                return True
        return False

    async def _group(self, group: str) -> set[str]:
        cached = self._cache.get(group)
        if cached and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        members = await self._members(group)
        self._cache[group] = (time.monotonic(), members)
        return members


def mention(ids: Sequence[str]) -> str:
    """How Slack shows a list of users and groups."""
    return ", ".join(f"<!subteam^{i}>" if i.startswith("S") else f"<@{i}>" for i in ids)
