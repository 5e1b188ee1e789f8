"""Memory check: the host's memory use (psutil) and, when opsbot runs in a container whose cgroup limit is below
the host's memory, the container's use of that limit; optionally the 1-minute load per CPU.

Reading is split from judging (`read_memory` takes the cgroup root) so tests lay out cgroup files themselves.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field

from bot import adapters
from bot.checks.base import (
    CheckDeps,
    CheckSpec,
    Probe,
    Status,
    Thresholds,
    limit_note,
    percent,
)

CGROUP_ROOT = Path("/sys/fs/cgroup")
MEMBERSHIP = Path("/proc/self/cgroup")


@dataclass(frozen=True)
class HostMemory:
    total: int
    used_percent: float  # psutil's: memory not available to new processes, as a share of the total


@dataclass(frozen=True)
class CgroupMemory:
    version: Literal[1, 2]
    limit: int
    used: int


@dataclass(frozen=True)
class MemoryReading:
    host: HostMemory
    cgroup: CgroupMemory | None = None  # None: no limit applies (or none below the host's memory)
    cgroup_problem: str | None = None  # the limit files exist but could not be read
    load_per_cpu: float | None = None


def host_memory() -> HostMemory:
    memory = adapters.module("psutil").virtual_memory()  # psutil only for a catalog with a memory check
    return HostMemory(total=memory.total, used_percent=memory.percent)


def load_per_cpu() -> float:
    return os.getloadavg()[0] / (os.cpu_count() or 1)


def read_memory(root: Path, host: HostMemory, load: float | None = None, membership: str = "") -> MemoryReading:
    """What to judge: the host, plus the cgroup under `root` (v2 first, then v1's `memory/`) when its limit is below
    the host's. `membership` is /proc/self/cgroup's text: which cgroup this process is in, below `root`."""
    try:
        cgroup = _cgroup_v2(_own_dir(root, membership, None)) or _cgroup_v1(_own_dir(root / "memory", membership, "memory"))
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return MemoryReading(host, cgroup_problem=f"cannot read the cgroup memory limit ({reason})", load_per_cpu=load)
    if cgroup is not None and cgroup.limit >= host.total:
        cgroup = None  # "unlimited" (v1 writes a huge number) or a limit the host cannot reach anyway
    return MemoryReading(host, cgroup, load_per_cpu=load)


def _own_dir(root: Path, membership: str, controller: str | None) -> Path:
    # In a container the mount is the container's own cgroup, and the path /proc/self/cgroup gives (the host's
    # view) does not exist under it: then `root` itself is ours. On a host (a systemd unit with MemoryMax) it does.
    for line in membership.splitlines():
        _, controllers, path = [*line.split(":", 2), "", ""][:3]
        wanted = controllers == "" if controller is None else controller in controllers.split(",")
        if wanted and path.strip("/"):
            candidate = root / path.strip("/")
            return candidate if candidate.is_dir() else root
    return root


def _cgroup_v2(root: Path) -> CgroupMemory | None:
    limit_file = root / "memory.max"
    if not limit_file.exists():
        return None
    limit = limit_file.read_text().strip()
    if limit == "max":
        return None
    used = _int(root / "memory.current") - _stat(root / "memory.stat", "inactive_file")
    return CgroupMemory(2, _parse_int(limit, limit_file), max(used, 0))


def _cgroup_v1(root: Path) -> CgroupMemory | None:
    limit_file = root / "memory.limit_in_bytes"
    if not limit_file.exists():
        return None
    used = _int(root / "memory.usage_in_bytes") - _stat(root / "memory.stat", "total_inactive_file")
    return CgroupMemory(1, _int(limit_file), max(used, 0))


def _int(path: Path) -> int:
    return _parse_int(path.read_text().strip(), path)


def _parse_int(text: str, path: Path) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{path.name} holds {text[:20]!r}, not a number") from None


def _stat(path: Path, key: str) -> int:
    # Page cache the kernel can drop at once is counted in the usage; `docker stats` and the kubelet subtract
    # inactive file pages too, so the number matches what people see there.
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        name, _, value = line.partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return 0


class MemoryCheck(CheckSpec):
    """The host's memory in use (psutil) and, when opsbot runs under a cgroup memory limit below the host's memory
    (a container: cgroup v2 `memory.max` or v1 `memory.limit_in_bytes`), that limit's use too, page cache the
    kernel can drop left out as `docker stats` does; optionally the 1-minute load per CPU. The worst wins."""

    type: Literal["memory"]
    memory_percent: Thresholds = Thresholds(warning=80, critical=95)
    load_per_cpu: Thresholds | None = Field(
        default=None, description="the 1-minute load average divided by the CPU count (1.0: every CPU busy); no CPU % "
                                  "check exists, so `0.8` stands in for 80 % (load also counts tasks waiting for I/O)")

    def default_label(self) -> str:
        return "memory"

    async def probe(self, deps: CheckDeps) -> Probe:
        def read() -> MemoryReading:
            try:
                membership = MEMBERSHIP.read_text()
            except OSError:
                membership = ""  # not Linux, or /proc not mounted: the cgroup root is all there is to go on
            return read_memory(CGROUP_ROOT, host_memory(), load_per_cpu() if self.load_per_cpu else None, membership)

        # /sys and /proc reads are quick, but keep them off the event loop so a stuck one cannot stall the others.
        return self.judge(await asyncio.to_thread(read))

    def judge(self, reading: MemoryReading) -> Probe:
        findings: list[tuple[Status, str]] = []
        host = reading.host
        status = self.memory_percent.grade(host.used_percent)
        note = limit_note(status, self.memory_percent, " %")
        findings.append((status, f"host memory {host.used_percent:.0f} % used of {_gib(host.total)}{note}"))
        if reading.cgroup is not None:
            cgroup = reading.cgroup
            share = percent(cgroup.used, cgroup.limit)
            status = self.memory_percent.grade(share)
            note = limit_note(status, self.memory_percent, " %")
            findings.append((status, (f"container (cgroup v{cgroup.version}) {share:.0f} % of its {_gib(cgroup.limit)} "
                                      f"limit ({_gib(cgroup.used)} used){note}")))
        if reading.cgroup_problem:
            findings.append((Status.OK, f"{reading.cgroup_problem}, judged by the host only"))
        if self.load_per_cpu is not None and reading.load_per_cpu is not None:
            status = self.load_per_cpu.grade(reading.load_per_cpu)
            findings.append((status, f"load {reading.load_per_cpu:.2f} per CPU{limit_note(status, self.load_per_cpu)}"))
        # The failing part first: a chat line may be cut short.
        findings.sort(key=lambda finding: -finding[0].rank)
        return Probe(Status.worst([s for s, _ in findings]), "; ".join(text for _, text in findings))


def _gib(size: int) -> str:
    return f"{size / (1 << 30):.1f} GiB"
