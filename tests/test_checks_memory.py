"""The memory check: judged from cgroup files laid out in a temporary directory (as the kernel lays out
/sys/fs/cgroup for v2 and v1) and given host readings, plus one run on this machine's real psutil and /sys."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from bot.catalog_loading import CatalogInvalid, parse_catalog
from bot.checks import CheckDeps, Status
from bot.checks.memory import HostMemory, MemoryCheck, read_memory
from bot.health import _probe
from tests.checks import CHECK

GIB = 1 << 30
HOST = HostMemory(total=16 * GIB, used_percent=40.0)


def check(**extra: object) -> MemoryCheck:
    spec = CHECK.validate_python({"type": "memory", **extra})
    assert isinstance(spec, MemoryCheck)
    return spec


def cgroup_v2(root: Path, limit: str, current: int, inactive_file: int = 0, path: str = "") -> Path:
    where = root / path
    where.mkdir(parents=True, exist_ok=True)
    (where / "memory.max").write_text(f"{limit}\n")
    (where / "memory.current").write_text(f"{current}\n")
    (where / "memory.stat").write_text(f"anon {current - inactive_file}\ninactive_file {inactive_file}\nactive_file 0\n")
    return root


def cgroup_v1(root: Path, limit: int, usage: int, inactive_file: int = 0) -> Path:
    memory = root / "memory"
    memory.mkdir(parents=True)
    (memory / "memory.limit_in_bytes").write_text(f"{limit}\n")
    (memory / "memory.usage_in_bytes").write_text(f"{usage}\n")
    (memory / "memory.stat").write_text(f"cache 0\ntotal_inactive_file {inactive_file}\n")
    return root


# --- host only ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("used", "status", "limit"), [(40.0, Status.OK, ""), (85.0, Status.WARNING, " (limit 80 %)"),
                                               (97.0, Status.CRITICAL, " (limit 95 %)")])
def test_host_memory_is_graded_against_the_defaults(tmp_path: Path, used: float, status: Status, limit: str) -> None:
    reading = read_memory(tmp_path, HostMemory(total=16 * GIB, used_percent=used))
    assert check().judge(reading).status is status
    assert check().judge(reading).reason == f"host memory {used:.0f} % used of 16.0 GiB{limit}"


# --- cgroup v2 ---------------------------------------------------------------------------------------------


def test_a_container_near_its_v2_limit_is_critical_though_the_host_is_fine(tmp_path: Path) -> None:
    root = cgroup_v2(tmp_path, str(2 * GIB), int(1.98 * GIB))
    probe = check().judge(read_memory(root, HOST))
    assert probe.status is Status.CRITICAL
    assert probe.reason == ("container (cgroup v2) 99 % of its 2.0 GiB limit (2.0 GiB used) (limit 95 %); "
                            "host memory 40 % used of 16.0 GiB")


def test_v2_usage_leaves_out_the_page_cache_the_kernel_can_drop(tmp_path: Path) -> None:
    root = cgroup_v2(tmp_path, str(2 * GIB), int(1.9 * GIB), inactive_file=int(0.9 * GIB))
    probe = check().judge(read_memory(root, HOST))
    assert probe.status is Status.OK and "container (cgroup v2) 50 % of its 2.0 GiB limit" in probe.reason


def test_v2_warning(tmp_path: Path) -> None:
    root = cgroup_v2(tmp_path, str(4 * GIB), int(3.4 * GIB))
    probe = check().judge(read_memory(root, HOST))
    assert probe.status is Status.WARNING and probe.reason.startswith("container (cgroup v2) 85 % of its 4.0 GiB limit")


def test_v2_without_a_limit_judges_the_host_only(tmp_path: Path) -> None:
    root = cgroup_v2(tmp_path, "max", 15 * GIB)
    assert check().judge(read_memory(root, HOST)).reason == "host memory 40 % used of 16.0 GiB"


def test_a_limit_above_the_host_memory_is_ignored(tmp_path: Path) -> None:
    root = cgroup_v2(tmp_path, str(64 * GIB), 15 * GIB)
    assert check().judge(read_memory(root, HOST)).status is Status.OK


def test_the_process_own_cgroup_is_found_from_proc_self_cgroup(tmp_path: Path) -> None:
    # A host where opsbot runs as a systemd unit with MemoryMax: the limit sits in the unit's cgroup, not the root.
    cgroup_v2(tmp_path, str(1 * GIB), int(0.9 * GIB), path="system.slice/opsbot.service")
    probe = check().judge(read_memory(tmp_path, HOST, membership="0::/system.slice/opsbot.service\n"))
    assert probe.status is Status.WARNING and "90 % of its 1.0 GiB limit" in probe.reason
    # In a container, the host's path does not exist under the mount: the mount itself is the container's cgroup.
    cgroup_v2(tmp_path, str(2 * GIB), int(1.98 * GIB))
    assert check().judge(read_memory(tmp_path, HOST, membership="0::/docker/abc123\n")).status is Status.CRITICAL


# --- cgroup v1 ---------------------------------------------------------------------------------------------


def test_v1_limit_is_judged_too(tmp_path: Path) -> None:
    root = cgroup_v1(tmp_path, 2 * GIB, int(1.7 * GIB))
    probe = check().judge(read_memory(root, HOST))
    assert probe.status is Status.WARNING
    assert probe.reason.startswith("container (cgroup v1) 85 % of its 2.0 GiB limit (1.7 GiB used) (limit 80 %)")


def test_v1_unlimited_is_the_huge_number_and_ignored(tmp_path: Path) -> None:
    root = cgroup_v1(tmp_path, 9223372036854771712, 15 * GIB)
    assert check().judge(read_memory(root, HOST)).reason == "host memory 40 % used of 16.0 GiB"


def test_v1_own_cgroup_from_proc_self_cgroup(tmp_path: Path) -> None:
    cgroup_v1(tmp_path, 9223372036854771712, GIB)
    own = tmp_path / "memory" / "process_api" / "x"
    own.mkdir(parents=True)
    (own / "memory.limit_in_bytes").write_text(str(GIB))
    (own / "memory.usage_in_bytes").write_text(str(int(0.97 * GIB)))
    membership = "9:name=systemd:/\n4:memory:/process_api/x\n0::/\n"
    assert check().judge(read_memory(tmp_path, HOST, membership=membership)).status is Status.CRITICAL


# --- unreadable ("unreachable" for this kind): fall back to the host and say so ---------------------------


def test_unreadable_cgroup_files_fall_back_to_the_host_and_say_so(tmp_path: Path) -> None:
    (tmp_path / "memory.max").mkdir()  # exists, but reading it fails as an unreadable file would
    probe = check().judge(read_memory(tmp_path, HOST))
    assert probe.status is Status.OK
    assert probe.reason == ("host memory 40 % used of 16.0 GiB; cannot read the cgroup memory limit (Is a directory), "
                            "judged by the host only")


def test_garbage_in_a_cgroup_file_falls_back_to_the_host(tmp_path: Path) -> None:
    root = cgroup_v2(tmp_path, str(2 * GIB), 0)
    (root / "memory.current").write_text("lots\n")
    probe = check().judge(read_memory(root, HostMemory(total=16 * GIB, used_percent=96.0)))
    assert probe.status is Status.CRITICAL
    assert "cannot read the cgroup memory limit (memory.current holds 'lots', not a number)" in probe.reason


# --- load per CPU ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("load", "status"), [(0.5, Status.OK), (2.5, Status.WARNING), (6.0, Status.CRITICAL)])
def test_load_per_cpu_is_optional_and_graded(tmp_path: Path, load: float, status: Status) -> None:
    spec = check(load_per_cpu={"warning": 2, "critical": 4})
    probe = spec.judge(read_memory(tmp_path, HOST, load=load))
    assert probe.status is status and f"load {load:.2f} per CPU" in probe.reason
    assert "load" not in check().judge(read_memory(tmp_path, HOST, load=load)).reason


# --- the real thing, and the runner's timeout ----------------------------------------------------------------


async def test_the_probe_reads_this_machine(http: aiohttp.ClientSession) -> None:
    status, reason = await _probe(check(load_per_cpu={"warning": 1000, "critical": 2000}), CheckDeps(http=http))
    assert status in (Status.OK, Status.WARNING, Status.CRITICAL) and reason.startswith(("host memory", "container"))
    assert "per CPU" in reason


async def test_a_reading_that_does_not_finish_in_time_is_a_timeout(http: aiohttp.ClientSession) -> None:
    # Reading /proc and /sys takes microseconds, so no real server can be made to hang here; the reading does run in
    # a worker thread, though (a stuck procfs read must not stall the loop), so a timeout far below one scheduler
    # round trip expires while the probe waits on that thread, and the runner's timeout path is the one taken.
    assert await _probe(check(timeout=1e-9), CheckDeps(http=http)) == (Status.ERROR, "timed out after 1e-09 s")


# --- load-time validation ------------------------------------------------------------------------------------


def test_thresholds_are_validated_at_load() -> None:
    with pytest.raises(CatalogInvalid) as caught:
        parse_catalog("services:\n  h:\n    environment: prod\n    checks:\n"
                      "      - {type: memory, memory_percent: {warning: 95, critical: 80}, load_per_cpu: {}}\n")
    assert [f"{p.path}: {p.message}" for p in caught.value.problems] == [
        "services.h.checks[0].memory_percent: warning (95) must not be above critical (80)",
        "services.h.checks[0].load_per_cpu: give `warning`, `critical` or both",  # one level alone is enough
    ]
