"""Cron schedules: time zones, daylight-saving changes, seconds, and catalog errors a person can act on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.catalog_loading import CatalogInvalid, parse_catalog
from bot.scheduling.cron import CronSchedule


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def times(schedule: CronSchedule, start: datetime, end: datetime) -> list[str]:
    return [f"{at:%m-%d %H:%M:%S}" for at in schedule.between(start, end)]


def test_a_schedule_runs_at_its_own_zones_wall_clock_time_across_the_year() -> None:
    nine_in_berlin = CronSchedule(cron="0 9 * * 1", timezone="Europe/Berlin")
    assert nine_in_berlin.after(utc(2026, 11, 20)) == utc(2026, 11, 23, 8)  # winter: UTC+1
    assert nine_in_berlin.after(utc(2026, 6, 1, 12)) == utc(2026, 6, 8, 7)  # summer: UTC+2
    assert CronSchedule.model_validate("0 9 * * *").after(utc(2026, 11, 23, 9)) == utc(2026, 11, 24, 9)  # strictly after


def test_a_time_skipped_by_the_spring_change_runs_at_the_change() -> None:
    # 2026-03-29 in Berlin: 02:00 jumps to 03:00, so 02:30 never happens that night.
    nightly = CronSchedule(cron="30 2 * * *", timezone="Europe/Berlin")
    assert times(nightly, utc(2026, 3, 27, 12), utc(2026, 3, 30, 12)) == ["03-28 01:30:00", "03-29 01:00:00", "03-30 00:30:00"]


def test_a_fixed_time_repeated_by_the_autumn_change_runs_once() -> None:
    # 2026-10-25 in Berlin: 03:00 goes back to 02:00, so 02:30 happens twice; a nightly backup must not.
    nightly = CronSchedule(cron="30 2 * * *", timezone="Europe/Berlin")
    assert times(nightly, utc(2026, 10, 24, 12), utc(2026, 10, 26, 12)) == ["10-25 00:30:00", "10-26 01:30:00"]


def test_an_hourly_schedule_runs_in_both_repeated_hours() -> None:
    hourly = CronSchedule(cron="0 * * * *", timezone="Europe/Berlin")
    assert times(hourly, utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 2, 30)) == ["10-25 00:00:00", "10-25 01:00:00",
                                                                                  "10-25 02:00:00"]


def test_six_fields_put_seconds_first() -> None:
    assert times(CronSchedule(cron="*/20 * * * * *"), utc(2026, 1, 1), utc(2026, 1, 1, 0, 1)) == [
        "01-01 00:00:20", "01-01 00:00:40", "01-01 00:01:00"]


def test_a_long_outage_records_only_the_newest_occurrences() -> None:
    every_minute = CronSchedule(cron="* * * * *")
    kept = every_minute.between(utc(2026, 1, 1), utc(2026, 1, 2), limit=3)
    assert kept == [utc(2026, 1, 1, 23, 58), utc(2026, 1, 1, 23, 59), utc(2026, 1, 2)]


@pytest.mark.parametrize(("yaml", "expected"), [
    ('schedules:\n  digests:\n    daily: "0 9 * *"\n', 'schedules.digests.daily.cron: \'0 9 * *\' has 4 fields'),
    ('schedules:\n  digests:\n    daily: {cron: "0 25 * * *"}\n', "is not a valid cron expression"),
    ('schedules:\n  digests:\n    daily: "0 9 30 2 *"\n',
     "schedules.digests.daily.cron: '0 9 30 2 *' never happens (no such date)"),
    ('schedules:\n  grace_minutes: 0\n', "schedules.grace_minutes: must be >= 1"),
    ('schedules:\n  digests:\n    daily: {cron: "0 9 * * *", timezone: Berlin}\n',
     "schedules.digests.daily.timezone: 'Berlin' is not a time zone name"),
    ('schedules:\n  digests:\n    evening: "0 18 * * *"\n', "digest 'evening' needs a `kind`: daily or weekly"),
    ('schedules:\n  channel: "#ops"\n', "schedules.channel: '#ops' is not a channel ID"),
    ('schedules:\n  grace: 10\n', "schedules.grace: unknown key; did you mean `grace_minutes`?"),
    (('services:\n  db:\n    environment: prod\n    backup: {type: directory, paths: [/srv], directory: /b, schedule: '
      '"nightly"}\n'),
     "services.db.backup.schedule.cron: 'nightly' has 1 fields"),
])
def test_schedule_mistakes_are_named_with_their_yaml_path(yaml: str, expected: str) -> None:
    with pytest.raises(CatalogInvalid) as caught:
        parse_catalog(yaml, "opsbot.yml")
    assert expected in str(caught.value)


def test_digests_default_to_daily_and_weekly_and_can_be_added_to_or_turned_off() -> None:
    assert list(parse_catalog("").schedules.digests) == ["daily", "weekly"]
    catalog = parse_catalog('schedules:\n  digests:\n    weekly: off\n    evening: {kind: daily, cron: "0 18 * * *", channels: '
                            '[C0LEADS]}\n')
    assert list(catalog.schedules.digests) == ["daily", "evening"]
    assert catalog.schedules.channels_of("evening") == ["C0LEADS"] and catalog.schedules.channels_of("daily") == []
