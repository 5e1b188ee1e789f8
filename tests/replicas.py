"""`opsbot serve` as separate processes, for the tests that kill, stop and restart replicas: each on a port of its
own (given, when a test must name it before the process starts, e.g. in an Alertmanager config), its output in a
log file beside the test's catalog.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from tests.conftest import free_port


class Replica:
    def __init__(self, env: dict[str, str], folder: Path, name: str, port: int | None = None) -> None:
        self.port = port if port is not None else free_port()
        self.log_path = folder / f"{name}.log"
        with self.log_path.open("w") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=folder,
                                         env={**env, "PORT": str(self.port)}, stdout=log, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text()

    async def healthy(self, http: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"replica exited: {self.log()}"
            try:
                async with http.get(f"{self.url}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError(f"replica did not become healthy: {self.log()[-2000:]}")

    def terminate(self) -> None:
        """SIGTERM: a graceful stop begins (several replicas told at once stop side by side)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, grace: float = 20) -> None:
        """SIGTERM if not yet told, then wait for the graceful stop; SIGKILL past `grace` seconds."""
        self.terminate()
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
