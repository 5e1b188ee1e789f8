"""Whether a silence's end is one opsbot takes: in the future (at least a minute away) and no later than
`alerts.silence_max` from now. The refusal is data — what is wrong and the window that is valid — and the form's
view words it in the person's time zone. Not responsible for asking Alertmanager (silences.py)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

SOONEST = timedelta(minutes=1)  # a silence ending sooner would be over before Alertmanager's next notification


class TimeProblem(enum.Enum):
    MISSING = "missing"  # no date or no time picked
    PAST = "past"  # before now (plus a minute)
    TOO_LATE = "too_late"  # past alerts.silence_max from now


@dataclass(frozen=True)
class UntilRefused:
    problem: TimeProblem
    earliest: datetime
    latest: datetime
    longest: timedelta  # alerts.silence_max


def check_until(until: datetime | None, now: datetime, longest: timedelta) -> UntilRefused | None:
    """None when `until` is a silence's valid end; else why not, with the valid window."""
    earliest, latest = now + SOONEST, now + longest
    if until is None:
        return UntilRefused(TimeProblem.MISSING, earliest, latest, longest)
    if until < earliest:
        return UntilRefused(TimeProblem.PAST, earliest, latest, longest)
    if until > latest:
        return UntilRefused(TimeProblem.TOO_LATE, earliest, latest, longest)
    return None
