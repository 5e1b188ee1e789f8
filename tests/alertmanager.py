"""Real Alertmanagers (Debian's prometheus-alertmanager) on free ports with a temporary config whose webhook
receiver points at opsbot with the bearer token.

`alertmanager`, the module fixture, is one node whose receiver lists one bot port (chosen up front) twice, so every
notification reaches opsbot as two identical deliveries at once, as from two clustered Alertmanagers: the tests see
that they make one message. `start_alertmanagers(n, urls, token)` starts `n` of them — clustered when n > 1, each
with the same receiver listing every URL (several opsbot replicas) — for tests that need the real HA case.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port

CONFIG = """
route:
  receiver: opsbot
  group_by: [alertname]
  group_wait: 100ms
  group_interval: 500ms
  repeat_interval: {repeat_interval}
{routes}receivers:
  - name: opsbot
    webhook_configs:
{hooks}
"""
HOOK = """      - url: {url}
        send_resolved: true
        http_config:
          authorization:
            credentials: {token}
"""
# A cluster settles (its peers stop changing) before it sends anything: gossip every 50 ms and settle within 1 s,
# where production waits up to a minute. `peer-timeout` is how long the second peer waits for the first's
# notification log before it sends too: both sending is the duplicate opsbot must absorb.
CLUSTER_FLAGS = ["--cluster.gossip-interval=50ms", "--cluster.settle-timeout=1s", "--cluster.peer-timeout=1s",
                 "--cluster.pushpull-interval=1s"]


@dataclass(frozen=True)
class RunningAlertmanager:
    url: str
    bot_port: int = 0  # the `alertmanager` fixture's: where its webhook sends (start the bot there)

    def api(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}/api/v2/{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a metric's series with these labels, from its /metrics (0 when it has none yet)."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            text = response.read().decode()
        total = 0.0
        for line in text.splitlines():
            found = re.fullmatch(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)", line)
            if found and all(f'{key}="{value}"' in (found.group(1) or "") for key, value in labels.items()):
                total += float(found.group(2))
        return total


async def eventually(check: Callable[[], Any], what: str, timeout: float = 20.0, every: float = 0.1) -> Any:
    """What `check` returns (awaited when it is a coroutine) once it is truthy: an alert travels through
    Alertmanager's group wait and the bot's background work, so the tests wait for what they look for."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = check()
        if asyncio.iscoroutine(found):
            found = await found
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


@contextmanager
def start_alertmanagers(count: int, urls: Sequence[str], token: str, *, repeat_interval: str = "1h",
                        repeat_for: Mapping[str, str] | None = None) -> Iterator[list[RunningAlertmanager]]:
    """`count` Alertmanagers (a cluster when more than one), each sending every notification to every URL.
    `repeat_for`: a matcher (`service="queue"`) → the repeat_interval of the groups it matches (a child route)."""
    binary = shutil.which("prometheus-alertmanager")
    if binary is None:
        pytest.fail("prometheus-alertmanager is not installed; scripts/test installs it")
    hooks = "".join(HOOK.format(url=url, token=token) for url in urls)
    ports, peers = [free_port() for _ in range(count)], [free_port() for _ in range(count)]
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="alertmanager-") as folder:
        config = Path(folder) / "alertmanager.yml"
        children = "".join(f"    - matchers: ['{matcher}']\n      repeat_interval: {every}\n"
                           for matcher, every in (repeat_for or {}).items())
        routes = f"  routes:\n{children}" if children else ""
        config.write_text(CONFIG.format(hooks=hooks, repeat_interval=repeat_interval, routes=routes))
        try:
            for index, port in enumerate(ports):
                cluster = ([f"--cluster.listen-address=127.0.0.1:{peers[index]}", *CLUSTER_FLAGS,
                            *(f"--cluster.peer=127.0.0.1:{peer}" for peer in peers if peer != peers[index])]
                           if count > 1 else ["--cluster.listen-address="])
                argv = [binary, f"--config.file={config}", f"--storage.path={folder}/data{index}",
                        f"--web.listen-address=127.0.0.1:{port}", *cluster]
                log = (Path(folder) / f"alertmanager{index}.log").open("wb")
                procs.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log))
            running = [RunningAlertmanager(f"http://127.0.0.1:{port}") for port in ports]
            for index, node in enumerate(running):
                _until_ready(node, procs[index], Path(folder) / f"alertmanager{index}.log")
            yield running
        finally:
            # One at a time: a peer leaving waits for the cluster to hear it, which takes 10 s when all leave at once.
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _until_ready(node: RunningAlertmanager, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            with urllib.request.urlopen(f"{node.url}/-/ready", timeout=1):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"alertmanager did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)


@pytest.fixture(scope="module")
def alertmanager(request: pytest.FixtureRequest) -> Iterator[RunningAlertmanager]:
    bot_port = free_port()
    url = f"http://127.0.0.1:{bot_port}/alerts/alertmanager"
    with start_alertmanagers(1, [url, url], request.module.TOKEN) as [node]:
        yield RunningAlertmanager(node.url, bot_port)
