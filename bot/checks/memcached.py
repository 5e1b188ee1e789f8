"""Memcached check: `stats` over aiomcache; hit ratio, evictions since an earlier run, connections.

memcached's counters are cumulative since it started; growth (and the hit ratio, when enough gets happened) is
judged against a baseline an earlier run recorded (`bot.checks._counts`), keyed by service, check and address so
two services sharing one memcached each keep their own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator

from bot import adapters
from bot.checks._counts import Baseline, baseline, plural
from bot.checks._percent import PercentFloor
from bot.checks.base import (
    CheckDeps,
    CheckSpec,
    Floor,
    Probe,
    Status,
    Thresholds,
    limit_note,
    percent,
)

COUNTERS = ("evictions", "get_hits", "cmd_get", "uptime")


class MemcachedCheck(CheckSpec):
    """`stats`: the hit ratio over the gets since an earlier run when at least `min_gets` happened in between, else
    since memcached started (the reason says which); evictions grown since an earlier run ("12 evictions in the last
    4 min"); `curr_connections`. A port that is not memcached is critical."""

    type: Literal["memcached"]
    address: str = Field(description="host:port of the memcached server")
    hit_ratio_percent: PercentFloor = Field(default=Floor(warning=80, critical=50),
                                            description="hits as a % of gets (low is bad)")
    min_gets: int = Field(default=100, ge=0, description="gets seen before the hit ratio is judged")
    evictions: Thresholds | None = Field(default=None, description="evictions since an earlier run")
    connections: Thresholds | None = Field(default=None, description="curr_connections")

    @field_validator("address")
    @classmethod
    def _host_port(cls, address: str) -> str:
        split_address(address)
        return address

    def default_label(self) -> str:
        return "memcached"

    async def probe(self, deps: CheckDeps) -> Probe:
        # aiomcache is imported only for a catalog with a memcached check (`bot.adapters`).
        stats: dict[bytes, bytes | None] | Probe = await adapters.module("bot.checks.memcached_probe").stats(self.address)
        if isinstance(stats, Probe):
            return stats
        try:
            text = {key.decode(errors="replace"): (value or b"").decode(errors="replace") for key, value in stats.items()}
            counters = {name: int(text.get(name) or 0) for name in COUNTERS}
            current = int(text.get("curr_connections") or 0)
        except ValueError as exc:
            return Probe(Status.CRITICAL, f"{self.address} answered `stats` with a value that is not a number: {exc}")
        earlier = baseline(deps, ("memcached", deps.service or "", self.label, self.address), counters)
        if earlier is not None and _restarted(earlier.value, counters):
            earlier = None  # memcached restarted since: its counters started again from zero
        now = deps.clock.now()
        judged = [self._hit_ratio(counters, earlier, now)]
        if self.evictions is not None:
            judged.append(self._evictions(counters, earlier, now))
        if self.connections is not None:
            status = self.connections.grade(current)
            judged.append(Probe(status, f"{plural(current, 'connection')}{limit_note(status, self.connections)}"))
        return Probe.combine(judged)

    def _hit_ratio(self, counters: dict[str, int], earlier: Baseline | None, now: datetime) -> Probe:
        hits, gets = counters["get_hits"], counters["cmd_get"]
        if earlier is not None:
            new_gets, new_hits = gets - earlier.value["cmd_get"], hits - earlier.value["get_hits"]
            if new_gets >= max(self.min_gets, 1):
                return self._grade(new_hits, new_gets, f"in {earlier.since(now)}")
        if gets < self.min_gets:
            return Probe(Status.OK, f"{gets} gets so far: too few to judge the hit ratio (needs {self.min_gets})")
        return self._grade(hits, gets, "since memcached started")

    def _grade(self, hits: int, gets: int, when: str) -> Probe:
        ratio = percent(hits, gets)
        status = self.hit_ratio_percent.grade(ratio)
        note = limit_note(status, self.hit_ratio_percent, " %")
        return Probe(status, f"hit ratio {ratio:.0f} % {when} ({hits} of {gets} gets){note}")

    def _evictions(self, counters: dict[str, int], earlier: Baseline | None, now: datetime) -> Probe:
        assert self.evictions is not None
        total = counters["evictions"]
        if earlier is None:
            return Probe(Status.OK, f"{plural(total, 'eviction')} since memcached started (growth is judged from the "
                                    "next run)")
        grown = total - earlier.value["evictions"]
        status = self.evictions.grade(grown)
        return Probe(status, f"{plural(grown, 'eviction')} in {earlier.since(now)}"
                             f"{limit_note(status, self.evictions)}")


def _restarted(before: dict[str, int], now: dict[str, int]) -> bool:
    return now["uptime"] < before["uptime"] or any(now[name] < before[name] for name in COUNTERS)


def split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("`address` must be host:port, e.g. 127.0.0.1:11211")
    return host.strip("[]"), int(port)
