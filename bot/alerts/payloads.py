"""The webhook payloads opsbot reads: Alertmanager's (version 4) and Grafana unified alerting's, as pydantic models,
and `parse`, which turns raw bytes into one `Delivery` or a `PayloadInvalid` naming the problem.

Not responsible for authenticating the request (bot/alerts/auth.py) nor for what is stored or posted (service.py).
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Source(enum.Enum):
    ALERTMANAGER = "alertmanager"
    GRAFANA = "grafana"


class AlertStatus(enum.Enum):
    FIRING = "firing"
    RESOLVED = "resolved"


class PayloadInvalid(Exception):
    """The body is not JSON, or not the sender's format; the message names what is wrong (for a 400)."""


class _Alert(BaseModel):
    # Field names are the senders' own (camelCase), so a payload validates as it comes.
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)  # built at the first alert, not at start-up
    status: AlertStatus
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: str = Field(min_length=1, max_length=200)


class AlertmanagerAlert(_Alert):
    pass


class GrafanaAlert(_Alert):
    silenceURL: str = ""
    dashboardURL: str = ""
    panelURL: str = ""
    values: dict[str, float | None] | None = None


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)  # built at the first alert, not at start-up
    receiver: str = ""
    status: AlertStatus
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    truncatedAlerts: int = 0


class AlertmanagerPayload(_Payload):
    version: Literal["4"]
    groupKey: str = Field(min_length=1)
    alerts: list[AlertmanagerAlert] = Field(max_length=10_000)


class GrafanaPayload(_Payload):
    orgId: int | None = None
    groupKey: str = ""
    alerts: list[GrafanaAlert] = Field(max_length=10_000)


@dataclass(frozen=True)
class Alert:
    """One alert as opsbot keeps it, whichever sender it came from."""

    fingerprint: str
    status: AlertStatus
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None  # None while it fires (Alertmanager sends year 1 for "not yet")
    links: tuple[tuple[str, str], ...]  # (label, url): the source, runbook, dashboard, panel

    @property
    def name(self) -> str:
        return self.labels.get("alertname", self.fingerprint)

    @property
    def summary(self) -> str:
        return self.annotations.get("summary") or self.annotations.get("description") or self.name


@dataclass(frozen=True)
class Delivery:
    """One webhook call: a group of alerts with its key and the labels it is grouped by."""

    source: Source
    group_key: str
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    external_url: str
    truncated: int
    alerts: tuple[Alert, ...]

    @property
    def key_hash(self) -> str:
        """The group's identity in the store: the key may be long (Alertmanager's are label sets), its hash is not."""
        return hashlib.sha256(f"{self.source.value}\0{self.group_key}".encode()).hexdigest()


def parse(source: Source, body: bytes) -> Delivery:
    """The delivery in `body`; raises PayloadInvalid naming the first problems (a JSON error, a missing field)."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadInvalid(f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadInvalid("the body is JSON but not an object")
    model: type[AlertmanagerPayload] | type[GrafanaPayload]
    model = AlertmanagerPayload if source is Source.ALERTMANAGER else GrafanaPayload
    try:
        payload = model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{_where(error['loc'])}: {error['msg']}" for error in exc.errors()[:5])
        what = "an Alertmanager webhook (version 4)" if source is Source.ALERTMANAGER else "a Grafana alerting webhook"
        raise PayloadInvalid(f"not {what}: {problems}") from None
    group_key = payload.groupKey or _grafana_key(payload.groupLabels)
    return Delivery(source, group_key, dict(payload.groupLabels), dict(payload.commonLabels), payload.externalURL,
                    payload.truncatedAlerts, tuple(_alert(alert) for alert in payload.alerts))


def _alert(alert: AlertmanagerAlert | GrafanaAlert) -> Alert:
    links = [("Source", alert.generatorURL), ("Runbook", alert.annotations.get("runbook_url", ""))]
    if isinstance(alert, GrafanaAlert):
        links += [("Dashboard", alert.dashboardURL), ("Panel", alert.panelURL)]
    ends = alert.endsAt if alert.endsAt is not None and alert.endsAt.year > 1 else None
    return Alert(alert.fingerprint, alert.status, dict(alert.labels), dict(alert.annotations), _utc(alert.startsAt),
                 _utc(ends) if ends else None, tuple((label, url) for label, url in links if _is_link(url)))


def _grafana_key(labels: dict[str, str]) -> str:
    # An older Grafana sends no groupKey: its group labels are what its notification policy grouped by.
    return "{" + ",".join(f"{name}={json.dumps(value)}" for name, value in sorted(labels.items())) + "}"


def _is_link(url: str) -> bool:
    # Only web links become Slack links: a `javascript:` or a bare word in an annotation stays out of the message.
    return url.startswith(("http://", "https://")) and len(url) < 2000 and not any(c in url for c in "<>|")


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the body"
