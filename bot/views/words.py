"""How counts, durations and ages read in every message: `1 file` / `2 files`, `under 0.1 s`, `3 min old`.

One place, so no message says "1 files", "1 check(s)", "0.0 s" or "0 h old". Plain text: no Slack markup here.
"""

from __future__ import annotations

import re
from datetime import timedelta

_ZERO = timedelta(0)


def plural(count: int, singular: str, many: str | None = None) -> str:
    """`1 file`, `0 files`, `3 entries` (`many` when adding an s is wrong: `plural(n, "entry", "entries")`)."""
    return f"{count} {singular if count == 1 else (many or singular + 's')}"


def seconds(value: float) -> str:
    """A step's or a run's time: `under 0.1 s`, `2.4 s`, `42 s`, then `2 min 5 s` and `1 h 3 min`."""
    if value < 0.05:
        return "under 0.1 s"
    if value < 10:
        return f"{value:.1f} s"
    if value < 120:
        return f"{value:.0f} s"
    whole = int(value)
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    return duration(timedelta(seconds=whole))


def duration(delta: timedelta | None) -> str:
    """'4 min', '1 h 12 min', '2 d 3 h'; '< 1 min' below a minute; '—' when there is nothing to measure.

    Truncated, never rounded up: a response is not reported as slower, or an outage as longer, than it was.
    """
    if delta is None:
        return "—"
    if delta < timedelta(minutes=1):
        return "< 1 min"
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def age(delta: timedelta) -> str:
    """How old something is: `under a minute old`, `3 min old`, `2 d 4 h old` (never `0 h old`)."""
    if delta < timedelta(minutes=1):
        return "under a minute old"
    return f"{duration(max(delta, _ZERO))} old"


def try_of(attempt: int, attempts: int) -> str:
    """`try 2 of 3`: a step's retry, or a health gate's next look."""
    return f"try {attempt} of {attempts}"


_CHANNEL_REF = re.compile(r"(?<![\w<&;])#([CG][A-Z0-9]{2,})\b")


def channel_ref(channel_id: str) -> str:
    """A channel named in plain text (a step's result, an error): `#C0OPS`. Views turn it into a link."""
    return f"#{channel_id}"


def link_channels(escaped: str) -> str:
    """In text already escaped for mrkdwn, `#C…` channel references (see `channel_ref`) become Slack channel
    links: the markup is the view's, added after the escaping, so text from data can never bring its own."""
    return _CHANNEL_REF.sub(lambda m: f"<#{m.group(1)}>", escaped)
