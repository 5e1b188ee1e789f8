"""A real Alertmanager (Debian's prometheus-alertmanager) on free ports with a temporary config whose webhook
receiver points at a bot port chosen up front, with the bearer token; one per test module.

Its webhook receiver lists the bot twice, so every notification reaches opsbot as two identical deliveries at
once, as from two clustered Alertmanagers: the tests see that they make one message.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
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
  repeat_interval: 1h
receivers:
  - name: opsbot
    webhook_configs:
{hooks}
"""
HOOK = """      - url: http://127.0.0.1:{port}/alerts/alertmanager
        send_resolved: true
        http_config:
          authorization:
            credentials: {token}
"""


@dataclass(frozen=True)
class RunningAlertmanager:
    url: str
    bot_port: int  # where its webhook sends: start the bot there

    def api(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}/api/v2/{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            raw = response.read()
        return json.loads(raw) if raw else None


@pytest.fixture(scope="module")
def alertmanager(request: pytest.FixtureRequest) -> Iterator[RunningAlertmanager]:
    binary = shutil.which("prometheus-alertmanager")
    if binary is None:
        pytest.fail("prometheus-alertmanager is not installed; scripts/test installs it")
    token = request.module.TOKEN
    port, bot_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="alertmanager-") as folder:
        config = Path(folder) / "alertmanager.yml"
        config.write_text(CONFIG.format(hooks=HOOK.format(port=bot_port, token=token) * 2))
        argv = [binary, f"--config.file={config}", f"--storage.path={folder}/data",
                f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            running = RunningAlertmanager(f"http://127.0.0.1:{port}", bot_port)
            deadline = time.monotonic() + 15
            while True:
                try:
                    with urllib.request.urlopen(f"{running.url}/-/ready", timeout=1):
                        break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        proc.kill()
                        _, err = proc.communicate()
                        pytest.fail(f"alertmanager did not start: {err.decode(errors='replace')[-2000:]}")
                    time.sleep(0.05)
            yield running
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.communicate(timeout=10)
