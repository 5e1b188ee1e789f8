"""Cron schedules with a time zone: the next occurrences as UTC instants, with daylight-saving handled.

Five fields (minute hour day month weekday), or six with seconds first. Not responsible for running anything.
croniter (with dateutil, about 3 MB) is imported when a schedule is first checked or evaluated (`bot.adapters.module`):
a catalog that sets none never loads it (the default digests are built unchecked, bot/scheduling/settings.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, field_validator, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from bot import adapters


class CronSchedule(BaseModel):
    """`cron: "0 9 * * 1"` with `timezone: Europe/Berlin`; in the catalog a bare string means UTC."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    cron: str = Field(description='five fields "minute hour day month weekday", or six with seconds first')
    timezone: str = Field(default="UTC", description="IANA name, e.g. Europe/Berlin")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"cron": value} if isinstance(value, str) else value

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # The schema says what `_shorthand` accepts too, so editors take `schedule: "0 2 * * *"`.
        shorthand = {"type": "string", "description": "a cron expression in UTC, short for {cron: …}"}
        return {"anyOf": [shorthand, handler(schema)]}

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        fields = value.split()
        if len(fields) not in (5, 6):
            raise ValueError(f"{value!r} has {len(fields)} fields; a cron expression has 5 (minute hour day month weekday), "
                             "or 6 with seconds first")
        cron = adapters.module("croniter")
        if not cron.croniter.is_valid(value, second_at_beginning=True):
            raise ValueError(f"{value!r} is not a valid cron expression (e.g. \"0 9 * * *\" is 09:00 every day, "
                             "\"0 2 * * 1\" 02:00 on Mondays)")
        try:  # valid syntax can still name a day that never comes (30 February)
            cron.croniter(value, datetime(2026, 1, 1, tzinfo=UTC), second_at_beginning=True).get_next(datetime)
        except cron.CroniterError:
            raise ValueError(f"{value!r} never happens (no such date): check the day and month fields") from None
        return " ".join(fields)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone name (IANA, e.g. UTC, Europe/Berlin, America/New_York)") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def describe(self) -> str:
        return f"`{self.cron}` ({self.timezone})"

    def after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after `moment`, in UTC."""
        return next(self.occurrences(moment))

    def occurrences(self, after: datetime) -> Iterator[datetime]:
        """Occurrences strictly after `after`, in UTC, forever.

        Daylight saving follows cron's custom: a wall-clock time skipped by the spring change runs at the
        change; a fixed time repeated by the autumn change runs once, while an hourly-or-finer schedule runs
        in each of the repeated hours (it means "every hour", not "at 02:00").
        """
        zone = self.zone
        fields = self.cron.split()
        hour_field = fields[2] if len(fields) == 6 else fields[1]
        fixed_hour = not hour_field.startswith("*")
        times = adapters.module("croniter").croniter(self.cron, after.astimezone(zone), second_at_beginning=True)
        while True:
            local: datetime = times.get_next(datetime)
            local = local.astimezone(zone)
            if fixed_hour and local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset():
                continue  # the second pass through a repeated wall-clock hour
            yield local.astimezone(UTC)

    def between(self, start: datetime, end: datetime, limit: int | None = None) -> list[datetime]:
        """Occurrences in (start, end], oldest first; at most `limit` of the newest when given."""
        found: list[datetime] = []
        for at in self.occurrences(start):
            if at > end:
                break
            found.append(at)
            if limit is not None and len(found) > limit:
                found.pop(0)
        return found
