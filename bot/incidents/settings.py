"""The catalog's `incidents:` section: severities with response targets, channels, who is paged, templates.

Defaults follow the runbooks' table: P1 critical 15 min, P2 high 1 h, P3 medium 4 h, P4 low 24 h.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.incidents.templates import check_template, render
from bot.runs.policy import _slack_ids


class Severity(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[A-Za-z0-9]{1,8}$", description="what people type: P1, SEV2, …")
    label: str = Field(min_length=1, max_length=40)
    response_minutes: float = Field(gt=0, description="time to acknowledge before the escalation group is pinged")


DEFAULT_SEVERITIES = [
    Severity(name="P1", label="Critical", response_minutes=15),
    Severity(name="P2", label="High", response_minutes=60),
    Severity(name="P3", label="Medium", response_minutes=240),
    Severity(name="P4", label="Low", response_minutes=1440),
]


class IncidentSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    announce_channel: str | None = Field(default=None, description="channel ID where incidents are announced (#incidents)")
    channel_name: str = Field(default="inc-{{ date }}-{{ slug }}", min_length=1, max_length=200,
                              description="Jinja template; id, key, severity, date, slug, title are available")
    private_channels: bool = False
    responders: list[str] = Field(default_factory=list, description="invited to every incident channel")
    escalation: list[str] = Field(default_factory=list, description="pinged when an incident is not acknowledged in time")
    update_interval_minutes: float = Field(default=30, gt=0)
    nudge_severities: list[str] = Field(
        default_factory=lambda: ["P1", "P2"],
        description="severity names whose open incidents nudge their commander when no status update was "
                    "posted for `update_interval_minutes`; each must be one of `severities`")
    pin_reaction: str = Field(default="pushpin", pattern=r"^[a-z0-9_+-]+$")
    severities: list[Severity] = Field(default_factory=lambda: list(DEFAULT_SEVERITIES), min_length=1)
    postmortem_template: str | None = Field(default=None,
                                            description="Jinja2 (sandboxed) Markdown; none: the built-in one. It gets "
                                                        "`incident` (key, title, severity, severity_label, status, "
                                                        "description, summary, services, declared_at, declared_by, "
                                                        "commander, roles), `timeline` (at_utc, kind, text, author, "
                                                        "permalink), `metrics` (time_to_acknowledge, time_to_mitigate, "
                                                        "time_to_resolve, impact_window, impact_start, impact_end), "
                                                        "`action_items` (text, owner, due, done), `date`, `duration`, "
                                                        "`generated_at`; an undefined name is an error")

    _ids = field_validator("responders", "escalation")(_slack_ids)

    @field_validator("announce_channel")
    @classmethod
    def _channel_id(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[CG][A-Z0-9]{2,}$", value):
            raise ValueError(f"{value!r} is not a channel ID (C… or G…; in Slack: channel details → About → Channel ID)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> IncidentSettings:
        names = [s.name.upper() for s in self.severities]
        if len(set(names)) != len(names):
            raise ValueError("two severities share a name")
        unknown = [n for n in self.nudge_severities if n.upper() not in names]
        if unknown:
            raise ValueError(f"nudge_severities names {unknown[0]!r}, which is not a severity ({', '.join(names)})")
        # Only a catalog's own template is tried here: the default is ours (and tested), and leaving it alone keeps
        # Jinja2 unloaded until an incident is declared (bot/incidents/templates.py).
        if "channel_name" in self.model_fields_set:
            check_template(self.channel_name, "channel_name")
            try:  # parse errors are not the only ones: an unknown name fails only when rendered
                render(self.channel_name, {"id": 1, "key": "inc-1", "severity": "p1", "date": "20261123",
                                           "slug": "api-is-down", "title": "API is down"})
            except Exception as exc:  # noqa: BLE001 - any rendering failure is this setting's error
                raise ValueError(f"channel_name cannot be rendered: {exc} (available: id, key, severity, date, slug, "
                                 "title)") from None
        if self.postmortem_template is not None:
            check_template(self.postmortem_template, "postmortem_template")
        return self

    def severity(self, name: str) -> Severity | None:
        return next((s for s in self.severities if s.name.upper() == name.upper()), None)
