"""Memcached check: `stats` over aiomcache; hit ratio, evictions since the previous run, connections.

The counters are memcached's own, cumulative since it started; this module only reads and grades them.
"""

from __future__ import annotations

from typing import Literal

import aiomcache
from pydantic import Field, field_validator

from bot.checks._net import socket_error
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


class MemcachedCheck(CheckSpec):
    type: Literal["memcached"]
    address: str = Field(description="host:port of the memcached server")
    hit_ratio_percent: Floor = Floor(warning=80, critical=50)
    min_gets: int = Field(default=100, ge=0, description="gets seen before the hit ratio is judged")
    evictions: Thresholds | None = Field(default=None, description="evictions since the previous run")
    connections: Thresholds | None = Field(default=None, description="curr_connections")

    @field_validator("address")
    @classmethod
    def _host_port(cls, address: str) -> str:
        split_address(address)
        return address

    def default_label(self) -> str:
        return "memcached"

    async def probe(self, deps: CheckDeps) -> Probe:
        host, port = split_address(self.address)
        # One connection: a check needs no pool, and memcached counts each one in curr_connections.
        client = aiomcache.Client(host, port, pool_size=1)
        try:
            stats = await client.stats()
        except OSError as exc:
            return Probe(Status.CRITICAL, f"cannot connect to {self.address}: {socket_error(exc)}")
        except aiomcache.exceptions.ClientException as exc:
            return Probe(Status.CRITICAL, f"{self.address} did not answer `stats` as memcached does: {exc.msg}")
        finally:
            await client.close()
        counters = {key.decode(): (value or b"").decode() for key, value in stats.items()}
        judged = [self._hit_ratio(counters)]
        if self.evictions is not None:
            judged.append(self._evictions(counters, deps))
        if self.connections is not None:
            current = int(counters.get("curr_connections", 0))
            status = self.connections.grade(current)
            judged.append((status, f"{current} connections{limit_note(status, self.connections)}"))
        return Probe(Status.worst([status for status, _ in judged]), "; ".join(text for _, text in judged))

    def _hit_ratio(self, counters: dict[str, str]) -> tuple[Status, str]:
        hits, gets = int(counters.get("get_hits", 0)), int(counters.get("cmd_get", 0))
        if gets < self.min_gets:
            return Status.OK, f"{gets} gets so far: too few to judge the hit ratio (needs {self.min_gets})"
        ratio = percent(hits, gets)
        status = self.hit_ratio_percent.grade(ratio)
        note = limit_note(status, self.hit_ratio_percent, " %")
        return status, f"hit ratio {ratio:.0f} % ({hits} of {gets} gets){note}"

    def _evictions(self, counters: dict[str, str], deps: CheckDeps) -> tuple[Status, str]:
        assert self.evictions is not None
        total = int(counters.get("evictions", 0))
        previous = deps.observations.swap(("memcached", "evictions", self.address), total, deps.clock.now())
        if previous is None:
            return Status.OK, f"{total} evictions since memcached started (growth is judged from the next run)"
        # A smaller count than last time means memcached restarted; everything it counts now is new.
        grown = total - previous[0] if total >= previous[0] else total
        status = self.evictions.grade(grown)
        return status, f"{grown} evictions since the previous run{limit_note(status, self.evictions)}"


def split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("`address` must be host:port, e.g. 127.0.0.1:11211")
    return host.strip("[]"), int(port)
