"""Counters judged between runs (restarts, evictions), and the words for counts and intervals.

A counter a check reads is cumulative (since the container or memcached started); what matters is how much it grew
since an earlier run. That earlier run is a *baseline* kept in `CheckDeps.observations`, and it only moves once it is
at least `SETTLE` old: a manual `/ops health` half a minute before the scheduled one must not swallow the growth the
scheduled one would have seen. A reason then names the real interval: "3 restarts in the last 12 min".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.checks.base import CheckDeps

SETTLE = timedelta(minutes=5)  # a baseline younger than this is kept rather than moved to the current run


@dataclass(frozen=True)
class Baseline:
    """What an earlier run saw, and when."""

    value: Any
    at: datetime

    def since(self, now: datetime) -> str:
        """ "the last 12 min": the interval this baseline's growth covers."""
        return f"the last {ago(now - self.at)}"


def baseline(deps: CheckDeps, key: tuple[str, ...], value: Any) -> Baseline | None:
    """The baseline to compare `value` with (None on the first run), recording `value` as the next baseline unless
    the current one is younger than `SETTLE`."""
    now = deps.clock.now()
    previous = deps.observations.swap(key, value, now)
    if previous is None:
        return None
    kept = Baseline(previous[0], previous[1])
    if now - kept.at < SETTLE:
        deps.observations.swap(key, kept.value, kept.at)  # put it back: too young to move
    return kept


def times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def ago(delta: timedelta) -> str:
    """A duration as a person reads it: "45 s", "12 min", "3 h", "2 d"."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 120 * 60:
        return f"{seconds // 60} min"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"
