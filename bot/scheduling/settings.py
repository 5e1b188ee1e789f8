"""The catalog's `schedules:` section: the ops channel, digests with their cron and channels, the grace period.

Defaults follow the runbooks' rhythm: a daily digest at 09:00 UTC and a weekly one on Monday 09:00 UTC.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.scheduling.cron import CronSchedule

CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")
DIGEST_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def channel_id(value: str) -> str:
    if not CHANNEL_ID.match(value):
        raise ValueError(f"{value!r} is not a channel ID (C… or G…; in Slack: channel details → About → Channel ID)")
    return value


class DigestSchedule(CronSchedule):
    """A digest's schedule (`cron`, `timezone`), what it covers and where it goes."""

    kind: Literal["daily", "weekly"] | None = Field(
        default=None, description="daily: the last 24 hours; weekly: trends over 7 days (default: the digest's name)")
    channels: list[str] = Field(default_factory=list, description="channel IDs; default: schedules.channel")

    @field_validator("channels")
    @classmethod
    def _channels(cls, values: list[str]) -> list[str]:
        return [channel_id(value) for value in values]


# Built unchecked (known good, and tested), so importing this does not load croniter (bot/scheduling/cron.py).
DEFAULT_DIGESTS = {
    "daily": DigestSchedule.model_construct(kind="daily", cron="0 9 * * *"),
    "weekly": DigestSchedule.model_construct(kind="weekly", cron="0 9 * * 1"),
}


class ScheduleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    channel: str | None = Field(default=None, description="the ops channel: digests and failure alerts of scheduled work")
    grace_minutes: float = Field(default=60, ge=1,
                                 description="an occurrence missed while opsbot was down still runs at start-up if it is this "
                                             "recent; older ones are recorded as skipped")
    backup_max_age_days: float = Field(default=7, gt=0, description="the digests warn when a service's latest verified "
                                                                    "backup is older than this")
    digests: dict[str, DigestSchedule] = Field(default_factory=lambda: dict(DEFAULT_DIGESTS),
                                               description="added to the default daily and weekly digests; `daily: off` drops "
                                                           "one")

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        return channel_id(value) if value is not None else None

    @field_validator("digests", mode="before", json_schema_input_type=dict[str, DigestSchedule | Literal["off", False] | None])
    @classmethod
    def _over_defaults(cls, given: Any) -> Any:
        # Naming an extra digest keeps the daily and weekly ones; `daily: off` (or null) turns one off.
        if not isinstance(given, dict):
            return given
        merged: dict[str, Any] = {**DEFAULT_DIGESTS, **given}
        return {name: value for name, value in merged.items() if value not in (None, False, "off")}

    @field_validator("digests")
    @classmethod
    def _names(cls, digests: dict[str, DigestSchedule]) -> dict[str, DigestSchedule]:
        named = {}
        for name, digest in digests.items():
            if not DIGEST_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid digest name (lowercase letters, digits, - and _)")
            if digest.kind is None:
                if name not in ("daily", "weekly"):
                    raise ValueError(f"digest {name!r} needs a `kind`: daily or weekly")
                digest = digest.model_copy(update={"kind": name})
            named[name] = digest
        return named

    def channels_of(self, digest: str) -> list[str]:
        """Where a digest is posted: its own channels, else the ops channel, else nowhere."""
        entry = self.digests[digest]
        return entry.channels or ([self.channel] if self.channel else [])
